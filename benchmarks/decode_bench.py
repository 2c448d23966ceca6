#!/usr/bin/env python3
# ===- benchmarks/decode_bench.py - one decode step: attnc vs PyTorch eager -=== #
#
#   build/venv/bin/python benchmarks/decode_bench.py [--threads 1,2]
#       [--rounds 5] [--steps 5] [--build build] [--outdir benchmarks/results]
#
# Issue 12: a decode step at cache length T=4096 should cost about the same
# as reading the weights once plus the attention's read of the cache. This
# times ONE decode step (B=1, S=1, start=4095: the step's token is the
# 4096th) of benchmarks/decode/llama_decode.attn (a Llama-3-8B-shaped decoder,
# 2 layers, vocab 32000: 2.8 GB of f32 weights) compiled by attnc, against
# transformers' LlamaForCausalLM (PyTorch eager, float32, eager attention) on
# the same weights, in the same process, interleaved:
#
# 1. Weights: random, written once straight into a safetensors file with
#    LlamaForCausalLM's names (BUILD/bench-decode/weights/, with its
#    config.json; remade only when the config or seed changes). Both sides
#    use that one file: attnc's runtime maps it, and transformers 5 maps it
#    too, its float32 params being views of the mapping: one copy of the
#    weights in memory (the page cache), read by both.
# 2. attnc compiles the .attn once (BUILD/bench-decode/llama_decode.<variant>-
#    <hash>.so, the hash of the source, the flags and the attnc binary):
#    variant "attnc", the default pipeline (the row).
# 3. Caches: seeded random keys/values (std 1) for positions 0..4094 (4095 is
#    NaN: the step must write it before reading it). attnc's k_cache/v_cache
#    are f32[2, 1, 8, 4096, 128] NumPy arrays the library writes in place
#    (row 4095, the same row at every step); transformers' DynamicCache gets
#    a copy of the same 4095 rows through its update(), and is cropped back
#    to 4095 (crop(-1)) after every step, so every step of both sees the same
#    cache length.
# 4. Check (once, before timing): attnc's logits within 1e-4 x max|logit| of
#    transformers' for the same step (the pass/fail), plus the key/value
#    rows written at 4095, plus both against transformers with its RoPE
#    angles computed in float64 (stock transformers rounds them to float32,
#    ~1e-4 of the rotated vectors at position 4095; attnc uses double).
# 5. Timing, per thread count (attnc: attn_library_set_num_threads; PyTorch:
#    torch.set_num_threads; OMP_WAIT_POLICY=passive so that PyTorch's idle
#    OpenMP workers do not spin on attnc's cores): a warm-up step of each,
#    then --rounds rounds. Each round measures the streaming read bandwidth
#    (below), then runs --steps steps of attnc and of PyTorch, the order
#    alternating every round, then of attnc with an empty cache (T=1,
#    start=0: no cache read; the paired difference is what the cache
#    costs). Reported: median step time, tokens/s, GB/s
#    over the bytes one step must read, the per-round paired ratio
#    torch/attnc and its median, and the bound: those bytes at the measured
#    bandwidth, with attnc/bound paired per round.
#
# Bytes one step must read: every param of both layers, the final norm and
# the LM head, plus one row of the embedding table (a gather), plus the
# caches read by attention: 2 (k, v) x L x B x Hkv x (start+1) x D x 4.
# (PyTorch eager moves more: DynamicCache.update concatenates a new cache
# every step and eager attention's repeat_kv copies it 4x; those are its
# costs, not bytes the step needs.)
#
# Streaming read bandwidth, every round, over a 1 GiB float32 array (far
# more than any cache level), with the phase's thread count n: numpy's sum
# (single-threaded; with n > 1 also n Python threads each summing 1/n of the
# array: numpy releases the GIL in the reduction), torch.sum, and torch.mv
# of the array as a [262144, 4096] matrix (a GEMV: the read pattern of the
# step's projections). A round's reading is the fastest of them; the bound
# uses the median reading over rounds. It estimates what the hardware
# does, not a hard limit (another kernel may read a little faster).
#
# Writes OUTDIR/decode.json and OUTDIR/DECODE.md. Exit 77 when the venv lacks
# torch/transformers or the runtime library/attnc are missing.
#
# ===----------------------------------------------------------------------=== #
import argparse
import gc
import json
import os
import platform
import resource
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

# libgomp reads these when torch loads it: idle OpenMP workers must not spin
# on the cores the next competitor (attnc's Halide workers) needs.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import attnc_build  # benchmarks/attnc_build.py, next to this script

ROOT = Path(__file__).resolve().parent.parent
SKIP = 77
TOLERANCE = 1e-4  # of max |logit| (the tolerance)

# The model: benchmarks/decode/llama_decode.attn says the same sizes.
CONFIG = dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=2,
              num_attention_heads=32, num_key_value_heads=8, head_dim=128,
              vocab_size=32000, rms_norm_eps=1e-5, rope_theta=500000.0,
              max_position_embeddings=8192, tie_word_embeddings=False)
INIT_STD = 0.02  # LlamaConfig.initializer_range: HF's init of linears and embeddings


def log(msg):
    print(msg, flush=True)


def skip(reason):
    log(f"decode_bench: SKIP: {reason}")
    sys.exit(SKIP)


def fail(reason):
    log(f"decode_bench: FAIL: {reason}")
    sys.exit(1)


def load_average():
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


def mem_info():
    out = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            k, v = line.split(":", 1)
            if k in ("MemTotal", "MemAvailable", "Cached"):
                out[k] = int(v.split()[0]) * 1024
    except OSError:
        pass
    return out


def rss_bytes():
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def gib(n):
    return n / 2**30


# --- weights ---------------------------------------------------------------

def tensor_shapes(cfg):
    """LlamaForCausalLM's parameter names and shapes for `cfg`."""
    H, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    D = cfg["head_dim"]
    q, kv = cfg["num_attention_heads"] * D, cfg["num_key_value_heads"] * D
    shapes = {"model.embed_tokens.weight": (V, H)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        shapes.update({
            p + "input_layernorm.weight": (H,),
            p + "self_attn.q_proj.weight": (q, H),
            p + "self_attn.k_proj.weight": (kv, H),
            p + "self_attn.v_proj.weight": (kv, H),
            p + "self_attn.o_proj.weight": (H, q),
            p + "post_attention_layernorm.weight": (H,),
            p + "mlp.gate_proj.weight": (I, H),
            p + "mlp.up_proj.weight": (I, H),
            p + "mlp.down_proj.weight": (H, I),
        })
    shapes["model.norm.weight"] = (H,)
    shapes["lm_head.weight"] = (V, H)
    return shapes


def make_weights(wdir, seed):
    """Random float32 weights in a safetensors file with HF's names, written
    tensor by tensor (never the whole model in memory), plus config.json.
    Linears and the embedding ~ N(0, 0.02) as HF initialises them; the norms
    1 + N(0, 0.1) (not HF's ones, so that a norm weight bound to the wrong
    tensor shows in the check)."""
    import numpy as np
    import transformers

    stamp = wdir / "stamp.json"
    want = {"config": CONFIG, "seed": seed, "init_std": INIT_STD, "format": 1}
    st = wdir / "model.safetensors"
    try:
        if json.loads(stamp.read_text()) == want and st.is_file():
            return st
    except (OSError, ValueError):
        pass
    wdir.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)
    t0 = time.time()
    shapes = tensor_shapes(CONFIG)
    header, off = {}, 0
    for name, shape in shapes.items():
        n = int(np.prod(shape)) * 4
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [off, off + n]}
        off += n
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)  # the data section 8-aligned
    rng = np.random.default_rng(seed)
    chunk = np.empty(1 << 24, np.float32)  # 64 MiB at a time
    tmp = st.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name, shape in shapes.items():
            n = int(np.prod(shape))
            norm = len(shape) == 1
            for s in range(0, n, chunk.size):
                c = chunk[:min(chunk.size, n - s)]
                rng.standard_normal(c.size, dtype=np.float32, out=c)
                if norm:
                    c *= 0.1
                    c += 1.0
                else:
                    c *= INIT_STD
                f.write(memoryview(c))
    os.replace(tmp, st)
    cfg = transformers.LlamaConfig(**CONFIG)
    cfg.save_pretrained(wdir)
    stamp.write_text(json.dumps(want))
    log(f"weights: wrote {st} ({gib(st.stat().st_size):.2f} GiB, seed {seed}) "
        f"in {time.time() - t0:.1f} s")
    return st


def safetensors_header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        h = json.loads(f.read(n))
    h.pop("__metadata__", None)
    return h


def step_weight_bytes(path):
    """Bytes of params one decode step reads: all but the embedding table,
    of which one row per token is gathered."""
    total, detail = 0, {}
    for name, t in safetensors_header(path).items():
        n = t["data_offsets"][1] - t["data_offsets"][0]
        if name == "model.embed_tokens.weight":
            n = n // t["shape"][0]  # one row (B = S = 1)
        total += n
        detail[name] = n
    return total, detail


# --- attnc -----------------------------------------------------------------

# --- bandwidth -------------------------------------------------------------

class Bandwidth:
    """Streaming read bandwidth over a 1 GiB float32 array: numpy sum (one
    thread; n threads over n parts), torch.sum and torch.mv (the array as a
    [262144, 4096] matrix times a vector: the read pattern of a decode
    step's projections), torch with the phase's thread count."""

    def __init__(self, nbytes, torch):
        import numpy as np
        self.np, self.torch = np, torch
        self.a = np.ones(nbytes // 4, np.float32)  # written: its pages exist
        self.t = torch.from_numpy(self.a)          # the same memory
        self.m = self.t.view(-1, 4096)             # for torch.mv: a GEMV's read
        self.x = torch.ones(4096)
        self.nbytes = self.a.nbytes

    def _numpy_threads(self, n):
        parts = self.np.array_split(self.a, n)
        out = [None] * n

        def work(i):
            out[i] = parts[i].sum()
        ths = [threading.Thread(target=work, args=(i,)) for i in range(n)]
        t0 = time.perf_counter()
        for th in ths:
            th.start()
        for th in ths:
            th.join()
        return time.perf_counter() - t0

    def reading(self, n):
        """GB/s of each method with n threads (torch's count set by the caller)."""
        res = {}
        t0 = time.perf_counter()
        self.a.sum()
        res["numpy_sum_1thread"] = self.nbytes / (time.perf_counter() - t0) / 1e9
        if n > 1:
            res[f"numpy_sum_{n}threads_halves"] = self.nbytes / self._numpy_threads(n) / 1e9
        t0 = time.perf_counter()
        self.t.sum()
        res[f"torch_sum_{n}threads"] = self.nbytes / (time.perf_counter() - t0) / 1e9
        t0 = time.perf_counter()
        torch_mv = self.torch.mv(self.m, self.x)
        res[f"torch_mv_{n}threads"] = self.nbytes / (time.perf_counter() - t0) / 1e9
        del torch_mv
        return res


# --- the benchmark ---------------------------------------------------------

def median(xs):
    import numpy as np
    return float(np.median(xs)) if len(xs) else float("nan")


def main():
    ap = argparse.ArgumentParser(description="One Llama decode step at T=4096: attnc vs PyTorch eager")
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--attnc", help="default BUILD/bin/attnc")
    ap.add_argument("--runtime-lib", help="default BUILD/lib/libattn_runtime.so")
    ap.add_argument("--source", default=str(ROOT / "benchmarks/decode/llama_decode.attn"))
    ap.add_argument("--workdir", help="weights and the compiled library (default BUILD/bench-decode)")
    ap.add_argument("--outdir", default=str(ROOT / "benchmarks/results"))
    ap.add_argument("--threads", default="1,2", help="thread counts, run in this order (default 1,2)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds per thread count (default 5)")
    ap.add_argument("--steps", type=int, default=5,
                    help="timed steps per competitor per round (default 5)")
    ap.add_argument("--cache-len", type=int, default=4096,
                    help="T: the step's token is at position T-1 (default 4096)")
    ap.add_argument("--token", type=int, default=1234, help="the step's token id")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bw-gib", type=float, default=1.0, help="bandwidth array size (GiB)")
    args = ap.parse_args()
    build = Path(args.build).resolve()
    attnc = Path(args.attnc or build / "bin/attnc")
    rtlib = Path(args.runtime_lib or build / "lib/libattn_runtime.so")
    workdir = Path(args.workdir or build / "bench-decode").resolve()
    outdir = Path(args.outdir).resolve()
    source = Path(args.source).resolve()
    try:
        threads = [int(x) for x in args.threads.split(",") if x.strip()]
    except ValueError:
        ap.error(f"--threads {args.threads}: expected comma-separated integers")
    if not threads or min(threads) < 1 or args.rounds < 1 or args.steps < 1:
        ap.error("thread counts, --rounds and --steps must be at least 1")
    if args.rounds < 3:
        log("decode_bench: note: fewer than 3 rounds; the paired ratio's median is weak")
    if not rtlib.is_file():
        skip(f"{rtlib} does not exist (build the runtime first)")
    if not (attnc.is_file() and os.access(attnc, os.X_OK)):
        skip(f"{attnc} is not an executable file")
    try:
        import numpy as np
        import torch
        import transformers
    except ImportError as e:
        skip(f"{sys.executable} lacks numpy/torch/transformers ({e}); "
             "use BUILD/venv/bin/python (make venv)")
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    sys.path.insert(0, str(ROOT / "python"))
    from attnc import _runtime as attnrt

    load_start = load_average()
    log(f"decode_bench: torch {torch.__version__}, transformers {transformers.__version__}, "
        f"numpy {np.__version__}; {os.cpu_count()} CPUs; load average {load_start}; "
        f"MemAvailable {gib(mem_info().get('MemAvailable', 0)):.1f} GiB")
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = CONFIG
    L, HKV, D = cfg["num_hidden_layers"], cfg["num_key_value_heads"], cfg["head_dim"]
    V, T = cfg["vocab_size"], args.cache_len
    start_pos = T - 1
    if not 1 <= T <= cfg["max_position_embeddings"]:
        ap.error(f"--cache-len must be in 1..{cfg['max_position_embeddings']}")

    weights = make_weights(workdir / "weights", args.seed)
    variants = {"attnc": []}
    libs, compile_s = {}, {}
    for v, flags in variants.items():
        libs[v], compile_s[v] = attnc_build.compile_library(attnc, source, workdir, v,
                                                         ["--model", "llama"] + flags, log, fail)
    w_bytes, w_detail = step_weight_bytes(weights)
    c_bytes = 2 * L * 1 * HKV * (start_pos + 1) * D * 4
    step_bytes = w_bytes + c_bytes
    nocache_bytes = w_bytes + 2 * L * 1 * HKV * 1 * D * 4
    log(f"bytes one step reads: weights {w_bytes / 1e9:.3f} GB (both layers, final norm, "
        f"LM head, one embedding row) + caches {c_bytes / 1e9:.4f} GB "
        f"(2 x {L} x 1 x {HKV} x {start_pos + 1} x {D} x 4) = {step_bytes / 1e9:.3f} GB")

    # --- attnc ------------------------------------------------------------
    rt = attnrt.Runtime(rtlib)
    models = {}
    try:
        wfile = rt.open_weights(weights)
        for v, so in libs.items():
            lib = rt.open_library(so)
            m = lib.model("llama")
            t0 = time.time()
            m.bind_weights(wfile)
            models[v] = (lib, m)
            log(f"{so.name} ({lib.target()}): {m.signature()}; bound {len(m.params)} params "
                f"in {time.time() - t0:.2f} s" + (f"; flags {' '.join(variants[v])}"
                                                   if variants[v] else ""))
    except attnrt.AttnError as e:
        fail(f"attnc library: {e}")

    # --- transformers -----------------------------------------------------
    # transformers 5 maps the safetensors file and keeps float32 params as
    # views of the mapping (no copy when the dtype matches): one physical copy
    # of the weights (the page cache) serves both competitors.
    t0 = time.time()
    rss0 = rss_bytes()
    with torch.inference_mode():
        hf = transformers.LlamaForCausalLM.from_pretrained(
            weights.parent, dtype=torch.float32, attn_implementation="eager")
    hf.eval()
    gc.collect()
    n_params = sum(p.numel() for p in hf.parameters())
    maps = sum(1 for line in Path("/proc/self/maps").read_text().splitlines()
               if line.endswith(str(weights)))
    log(f"transformers: LlamaForCausalLM, {n_params / 1e9:.3f} G params, loaded in "
        f"{time.time() - t0:.1f} s (RSS +{gib(rss_bytes() - rss0):.2f} GiB; {maps} mappings of "
        f"the weights file in the process; attn_implementation="
        f"{hf.config._attn_implementation})")

    # --- caches -----------------------------------------------------------
    g = np.random.default_rng(args.seed + 1)
    shape = (L, 1, HKV, T, D)
    kc = g.standard_normal(shape, dtype=np.float32)
    vc = g.standard_normal(shape, dtype=np.float32)
    kc[:, :, :, start_pos:] = np.nan  # the step writes row start_pos before reading it
    vc[:, :, :, start_pos:] = np.nan
    ids = np.array([[args.token]], np.int32)
    start = np.array([start_pos], np.int32)
    logits_out = np.empty((1, 1, V), np.float32)
    # No cache: T=1, start=0 (the attention reads the one row the step writes).
    kc0, vc0 = (np.zeros((L, 1, HKV, 1, D), np.float32) for _ in range(2))
    start0 = np.array([0], np.int32)

    hcache = transformers.DynamicCache(config=hf.config)
    for layer in range(L):
        hcache.update(torch.from_numpy(kc[layer, :, :, :start_pos]),
                      torch.from_numpy(vc[layer, :, :, :start_pos]), layer)
    if hcache.get_seq_length() != start_pos:
        fail(f"transformers' cache holds {hcache.get_seq_length()} positions, expected {start_pos}")
    tids = torch.from_numpy(ids.astype(np.int64))

    def attnc_step(v):
        m = models[v][1]
        return lambda: m.run(ids=ids, start=start, k_cache=kc, v_cache=vc,
                             outputs=[logits_out])[0]

    def attnc_step_nocache():
        models["attnc"][1].run(ids=ids, start=start0, k_cache=kc0, v_cache=vc0,
                               outputs=[logits_out])

    # transformers 5.x renamed forward's past_key_values to cache (the old
    # name still works, with a deprecation warning).
    import inspect
    cache_kw = ("cache" if "cache" in inspect.signature(hf.forward).parameters
                else "past_key_values")

    def torch_step():
        with torch.inference_mode():
            out = hf(input_ids=tids, use_cache=True, **{cache_kw: hcache})
        return out.logits

    def torch_after():
        hcache.crop(-1)  # back to start_pos positions

    def set_threads(n):
        for lib, _ in models.values():
            lib.set_num_threads(n)
        torch.set_num_threads(n)

    # --- check (once) -----------------------------------------------------
    # Stock transformers computes RoPE's angles pos * inv_freq in float32: at
    # position 4095 they are off by up to ~2.4e-4 rad (an f32 ulp of 4095),
    # which moves the step's rotated q and k, and so its logits, by ~1e-4 of
    # their size. attnc computes the angles in double. So the check also runs
    # transformers with the angles in float64 (its rotary embedding's forward
    # replaced for that call), to separate attnc's error from that rounding.
    def rel(a, b):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        return float(np.abs(a - b).max() / np.abs(b).max())

    def exact_rope(x, position_ids):
        inv = 1.0 / (float(cfg["rope_theta"]) ** (torch.arange(0, D, 2, dtype=torch.float64) / D))
        emb = position_ids[..., None].double() * inv
        emb = torch.cat((emb, emb), dim=-1)
        return emb.cos().to(x.dtype), emb.sin().to(x.dtype)

    set_threads(threads[-1])
    check = {"tolerance": TOLERANCE, "threads": threads[-1], "start": start_pos,
             "token": args.token}
    ref = torch_step().numpy()[0, 0].astype(np.float64)
    ref_k = [hcache.layers[i].keys[0, :, start_pos].numpy().copy() for i in range(L)]
    ref_v = [hcache.layers[i].values[0, :, start_pos].numpy().copy() for i in range(L)]
    torch_after()
    hf.model.rotary_emb.forward = exact_rope
    try:
        ref_exact = torch_step().numpy()[0, 0].astype(np.float64)
        ref_exact_k = [hcache.layers[i].keys[0, :, start_pos].numpy().copy() for i in range(L)]
    finally:
        del hf.model.rotary_emb.forward  # back to the class's forward
        torch_after()
    if hcache.get_seq_length() != start_pos:
        fail(f"crop(-1) left {hcache.get_seq_length()} positions, expected {start_pos}")
    check["max_abs_logit"] = float(np.abs(ref).max())
    check["torch_f32_rope_vs_exact_rope"] = rel(ref, ref_exact)
    check_ok = True
    for v in models:
        got = attnc_step(v)()[0, 0].astype(np.float64)
        c = {"logits_vs_torch": rel(got, ref),
             "logits_vs_torch_exact_rope": rel(got, ref_exact),
             "argmax_equal": bool(got.argmax() == ref.argmax()),
             "new_k_rows_vs_torch": max(rel(kc[i, 0, :, start_pos], ref_k[i]) for i in range(L)),
             "new_k_rows_vs_torch_exact_rope":
                 max(rel(kc[i, 0, :, start_pos], ref_exact_k[i]) for i in range(L)),
             "new_v_rows_vs_torch": max(rel(vc[i, 0, :, start_pos], ref_v[i]) for i in range(L))}
        c["pass"] = bool(np.isfinite(c["logits_vs_torch"]) and c["logits_vs_torch"] <= TOLERANCE)
        check_ok &= c["pass"]
        check[v] = c
        log(f"check {v} (start={start_pos}, token {args.token}, same weights and caches, "
            f"{threads[-1]} threads): logits within {c['logits_vs_torch']:.2e} x max|logit| "
            f"({check['max_abs_logit']:.3f}) of transformers': {'PASS' if c['pass'] else 'FAIL'} "
            f"at {TOLERANCE:g}; argmax {'equal' if c['argmax_equal'] else 'DIFFERENT'}; within "
            f"{c['logits_vs_torch_exact_rope']:.2e} of transformers with float64 RoPE angles; "
            f"new k rows {c['new_k_rows_vs_torch']:.2e} ({c['new_k_rows_vs_torch_exact_rope']:.2e} "
            f"with float64 angles), v rows {c['new_v_rows_vs_torch']:.2e}")
    check["pass"] = check_ok
    log(f"  (transformers' own float32 RoPE angles move its logits by "
        f"{check['torch_f32_rope_vs_exact_rope']:.2e} x max|logit| from float64 angles)")

    # --- timing -----------------------------------------------------------
    bw = Bandwidth(int(args.bw_gib * 2**30), torch)
    comps = {"attnc": (attnc_step("attnc"), None, step_bytes),
             "torch": (torch_step, torch_after, step_bytes),
             "attnc_nocache": (attnc_step_nocache, None, nocache_bytes)}
    phases = []
    for n in threads:
        set_threads(n)
        log(f"\n--- {n} thread{'s' if n > 1 else ''} (attn_library_set_num_threads({n}), "
            f"torch.set_num_threads({n})); load average {load_average()}")
        for name, (fn, after, _) in comps.items():  # warm-up
            fn()
            if after:
                after()
        times = {c: [] for c in comps}
        rounds = []
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for r in range(args.rounds):
            reading = bw.reading(n)
            order = ["attnc", "torch"] if r % 2 == 0 else ["torch", "attnc"]
            order += [c for c in comps if c not in order]
            rt_ = {}
            for c in order:
                fn, after, _ = comps[c]
                ts = []
                for _ in range(args.steps):
                    t0 = time.perf_counter()
                    fn()
                    ts.append(time.perf_counter() - t0)
                    if after:
                        after()
                times[c] += ts
                rt_[c] = median(ts)
            bw_best = max(reading.values())
            bound = step_bytes / (bw_best * 1e9)
            rd = {"order": order, "median_s": rt_, "bandwidth_gbs": reading,
                  "bandwidth_best_gbs": bw_best, "bound_s": bound,
                  "torch_over_attnc": rt_["torch"] / rt_["attnc"],
                  "attnc_over_bound": rt_["attnc"] / bound,
                  "torch_over_bound": rt_["torch"] / bound,
                  "cache_cost_s": rt_["attnc"] - rt_["attnc_nocache"]}
            rounds.append(rd)
            log(f"round {r}: " + ", ".join(f"{c} {rt_[c] * 1e3:.1f} ms" for c in comps)
                + f"; torch/attnc {rd['torch_over_attnc']:.2f}; read bandwidth {bw_best:.1f} GB/s "
                f"-> bound {bound * 1e3:.1f} ms, attnc/bound {rd['attnc_over_bound']:.2f}")
        cpu_share = (time.process_time() - cpu0) / ((time.perf_counter() - wall0) * n)
        bw_med = median([x["bandwidth_best_gbs"] for x in rounds])
        bw_methods = {k: median([x["bandwidth_gbs"][k] for x in rounds])
                      for k in rounds[0]["bandwidth_gbs"]}
        res = {}
        for c, (_, _, nbytes) in comps.items():
            m = median(times[c])
            res[c] = {"median_ms": m * 1e3, "min_ms": min(times[c]) * 1e3,
                      "max_ms": max(times[c]) * 1e3, "samples": len(times[c]),
                      "tokens_per_s": 1.0 / m, "bytes": nbytes, "gbs": nbytes / m / 1e9,
                      "pct_of_measured_bandwidth": 100.0 * nbytes / m / 1e9 / bw_med}
        bound = step_bytes / (bw_med * 1e9)

        def pm(key):
            vals = [x[key] for x in rounds if key in x]
            return median(vals) if vals else None
        phase = {
            "threads": n, "results": res, "rounds": rounds,
            "paired_torch_over_attnc_median": pm("torch_over_attnc"),
            "paired_torch_over_attnc": [x["torch_over_attnc"] for x in rounds],
            "paired_attnc_over_bound_median": pm("attnc_over_bound"),
            "paired_torch_over_bound_median": pm("torch_over_bound"),
            "bandwidth_gbs_median": bw_med, "bandwidth_methods_median_gbs": bw_methods,
            "bound_ms": bound * 1e3,
            "bound_weights_ms": w_bytes / (bw_med * 1e9) * 1e3,
            "bound_cache_ms": c_bytes / (bw_med * 1e9) * 1e3,
            "cache_cost_ms_paired_median": pm("cache_cost_s") * 1e3,
            "cpu_share": cpu_share, "load_average_end": load_average(),
        }
        phases.append(phase)
        a, t = res["attnc"], res["torch"]
        log(f"{n} thread(s): attnc {a['median_ms']:.1f} ms ({a['tokens_per_s']:.2f} tokens/s, "
            f"{a['gbs']:.1f} GB/s), torch {t['median_ms']:.1f} ms ({t['tokens_per_s']:.2f} "
            f"tokens/s, {t['gbs']:.1f} GB/s); torch/attnc paired median "
            f"{phase['paired_torch_over_attnc_median']:.2f} "
            f"({', '.join(f'{x:.2f}' for x in phase['paired_torch_over_attnc'])})")
        log(f"bound: {step_bytes / 1e9:.3f} GB at {bw_med:.1f} GB/s (median of the rounds' "
            f"best reading; methods {', '.join(f'{k} {v:.1f}' for k, v in bw_methods.items())}) "
            f"= {bound * 1e3:.1f} ms (weights {phase['bound_weights_ms']:.1f} + cache "
            f"{phase['bound_cache_ms']:.1f}); attnc/bound paired median "
            f"{phase['paired_attnc_over_bound_median']:.2f}, torch/bound "
            f"{phase['paired_torch_over_bound_median']:.2f}; attnc's cache cost (T={T} minus no "
            f"cache, paired) {phase['cache_cost_ms_paired_median']:.1f} ms; cpu share "
            f"{cpu_share:.2f}")

    out = {
        "what": "one decode step (B=1, S=1) at cache length T, attnc vs PyTorch eager",
        "model": {"source": str(source.relative_to(ROOT)) if source.is_relative_to(ROOT)
                  else str(source), "config": cfg, "params": n_params,
                  "libraries": {v: {"file": libs[v].name, "flags": variants[v],
                                    "compile_s": compile_s[v]} for v in libs}},
        "T": T, "start": start_pos, "token": args.token,
        "bytes": {"weights_per_step": w_bytes, "cache_per_step": c_bytes, "total": step_bytes,
                  "weights_file": weights.stat().st_size, "weights_detail": w_detail},
        "check": check, "phases": phases,
        "env": {"torch": torch.__version__, "transformers": transformers.__version__,
                "numpy": np.__version__, "python": platform.python_version(),
                "cpus": os.cpu_count(), "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
                "load_average_start": load_start, "load_average_end": load_average(),
                "meminfo_end": mem_info(),
                "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                "rounds": args.rounds, "steps": args.steps, "bandwidth_array_bytes": bw.nbytes,
                "command": " ".join([os.path.relpath(sys.executable, ROOT)
                                     if sys.executable.startswith(str(ROOT)) else sys.executable]
                                    + sys.argv),
                "time": time.strftime("%Y-%m-%d %H:%M:%S")},
    }
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "decode.json").write_text(json.dumps(out, indent=1) + "\n")
    (outdir / "DECODE.md").write_text(markdown(out))
    log(f"\nwrote {outdir / 'decode.json'} and {outdir / 'DECODE.md'}")
    return 0 if check_ok else 1


def markdown(o):
    cfg, b = o["model"]["config"], o["bytes"]
    env, ck = o["env"], o["check"]
    lines = [
        "## Decode step: attnc vs PyTorch eager (issue 12)",
        "",
        f"`{env['command']}` ({env['time']}): one decode step, B=1, S=1, the token at "
        f"position {o['start']} (cache length T={o['T']}), of `{o['model']['source']}`: "
        f"Llama-3-8B shapes (hidden {cfg['hidden_size']}, {cfg['num_attention_heads']} query "
        f"heads over {cfg['num_key_value_heads']} kv heads of {cfg['head_dim']}, intermediate "
        f"{cfg['intermediate_size']}, RoPE theta {cfg['rope_theta']:g}), "
        f"{cfg['num_hidden_layers']} layers, vocab {cfg['vocab_size']}, f32 "
        f"({o['model']['params'] / 1e9:.2f} G params, {b['weights_file'] / 2**30:.2f} GiB). "
        f"PyTorch: transformers {env['transformers']} LlamaForCausalLM, torch {env['torch']}, "
        f"float32, eager attention, its DynamicCache cropped back to {o['start']} after every "
        f"step. Same weights file, same cache contents, same process, interleaved "
        f"({env['rounds']} rounds x {env['steps']} steps per thread count, attnc/PyTorch "
        f"order alternating).",
        "",
        f"Bytes one step must read: weights {b['weights_per_step'] / 1e9:.3f} GB (both layers, "
        f"final norm, LM head, one embedding row) + k/v caches {b['cache_per_step'] / 1e9:.4f} GB "
        f"= {b['total'] / 1e9:.3f} GB. GB/s below is over these bytes (for the no-cache row: "
        f"the weights).",
        "",
    ]
    for v in (k for k in ("attnc",) if k in ck):
        c = ck[v]
        lines.append(
            f"Check, `{v}`: logits within {c['logits_vs_torch']:.2e} x max|logit| "
            f"({ck['max_abs_logit']:.2f}) of transformers' (tolerance {ck['tolerance']:g}): "
            f"**{'PASS' if c['pass'] else 'FAIL'}**; argmax "
            f"{'equal' if c['argmax_equal'] else 'different'}; "
            f"{c['logits_vs_torch_exact_rope']:.1e} from transformers with float64 RoPE angles. "
            f"New k rows {c['new_k_rows_vs_torch']:.1e} ({c['new_k_rows_vs_torch_exact_rope']:.1e} "
            f"with float64 angles), v rows {c['new_v_rows_vs_torch']:.1e}.")
        lines.append("")
    lines += [
        f"transformers computes RoPE angles in float32: at position {o['start']} that alone "
        f"moves its logits by {ck['torch_f32_rope_vs_exact_rope']:.1e} x max|logit| (attnc "
        "computes them in double).", ""]
    labels = {"attnc": "attnc", "torch": "PyTorch eager",
              "attnc_nocache": "attnc, no cache (T=1, start=0)"}
    lines += ["| threads | competitor | median ms | min ms | tokens/s | GB/s | % of read bw | "
              "PyTorch / it (paired median) |", "|---|---|---|---|---|---|---|---|"]
    for p in o["phases"]:
        for c, label in labels.items():
            if c not in p["results"]:
                continue
            r = p["results"][c]
            ratio = {"attnc": p["paired_torch_over_attnc_median"]}.get(c)
            lines.append(f"| {p['threads']} | {label} | {r['median_ms']:.1f} | {r['min_ms']:.1f} | "
                         f"{r['tokens_per_s']:.2f} | {r['gbs']:.1f} | "
                         f"{r['pct_of_measured_bandwidth']:.0f}% | "
                         f"{'' if ratio is None else f'{ratio:.2f}'} |")
    lines += ["", "Bound: the step's bytes at the streaming read bandwidth measured in the same "
              "run, every round (the fastest of numpy sum, numpy sum in n threads over n parts, "
              "torch.sum and torch.mv over a 1 GiB f32 array; median over rounds). "
              "Cache cost: paired per round, attnc at T=4096 minus attnc with no cache.", "",
              "| threads | read bw GB/s | bound ms (weights + cache) | attnc / bound | "
              "PyTorch / bound | cache cost ms | "
              "cache bytes at read bw ms | cpu share | load at end |",
              "|---|---|---|---|---|---|---|---|---|"]
    for p in o["phases"]:
        lines.append(
            f"| {p['threads']} | {p['bandwidth_gbs_median']:.1f} | {p['bound_ms']:.1f} "
            f"({p['bound_weights_ms']:.1f} + {p['bound_cache_ms']:.1f}) | "
            f"{p['paired_attnc_over_bound_median']:.2f} | {p['paired_torch_over_bound_median']:.2f} | "
            f"{p['cache_cost_ms_paired_median']:.1f} | "
            f"{p['bound_cache_ms']:.1f} | {p['cpu_share']:.2f} | {p['load_average_end']} |")
    lines += ["", "Read bandwidth by method (median GB/s): " + "; ".join(
        f"{p['threads']} thread(s): " + ", ".join(
            f"{k} {v:.1f}" for k, v in p["bandwidth_methods_median_gbs"].items())
        for p in o["phases"]), "",
        "Paired ratios PyTorch/attnc per round: " + "; ".join(
        f"{p['threads']} thread(s): " + ", ".join(f"{x:.2f}" for x in p["paired_torch_over_attnc"])
        for p in o["phases"]), ""]
    lines += [f"Load average at start {env['load_average_start']}, at end "
              f"{env['load_average_end']}; {env['cpus']} CPUs. The machine is shared: compare "
              "the paired ratios, not medians across runs.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
