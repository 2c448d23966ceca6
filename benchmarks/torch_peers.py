#!/usr/bin/env python3
# ===- benchmarks/torch_peers.py - attnc vs PyTorch's fused CPU kernels ----=== #
#
#   build/venv/bin/python benchmarks/torch_peers.py [--isa host,avx2]
#       [--threads 1,2] [--rounds 5] [--sizes 512,2048,4096,8192]
#       [--bert-sizes 1x128,1x512,8x128] [--build build] [--outdir benchmarks/results]
#
# Issue 13, items 6 and 7: attnc against PyTorch's own fused CPU paths, on
# the same inputs, in the same process, interleaved:
#
# 1. sdpa, sdpa_causal: torch.nn.functional.scaled_dot_product_attention
#    (is_causal=False/True; on CPU with float32 it takes the flash kernel,
#    recorded per case) vs benchmarks/models/attention.attn and
#    attention_causal.attn: q, k, v f32[1, 12, S, 64], contiguous, the same
#    NumPy memory for both (torch.from_numpy). attnc writes into an output
#    allocated once; SDPA allocates its own (a cost of its API).
# 2. bert_layer: nn.TransformerEncoderLayer(768, 12, 3072, gelu,
#    batch_first=True, norm_first=False, layer_norm_eps=1e-12) in eval mode
#    under torch.inference_mode(), which takes its fast path
#    (torch._transformer_encoder_layer_fwd: the check counts the calls and
#    fails if it was not taken) vs examples/bert_layer.attn (post-norm BERT,
#    exact-erf GELU, eps 1e-12) with lengths = S (no padding; torch gets
#    src_key_padding_mask=None). Weights: the torch layer's (default init,
#    biases and layer-norm affines randomised so that a mis-bound tensor
#    shows), split for attnc (in_proj_weight = [wq; wk; wv], in_proj_bias
#    = [bq; bk; bv]) and written to a temporary safetensors file that the
#    runtime maps.
# 3. ISAs: every library is compiled twice, --target=host and
#    --target=x86-64-linux-avx2-fma-f16c, cached in BUILD/bench-torch/
#    (<model>.<isa>-<hash>.so, the hash of the source, the flags and the attnc
#    binary). Each ISA runs in its own subprocess ("worker"): the avx2 one with
#    ATEN_CPU_CAPABILITY=avx2 (ATen's vectorised kernels: softmax, exp, GELU,
#    layer norm, the flash kernel's own loops) and MKL_ENABLE_INSTRUCTIONS=AVX2
#    plus ONEDNN_MAX_CPU_ISA=AVX2 (the GEMMs, which ATEN_CPU_CAPABILITY does not
#    reach: MKL sgemm runs SDPA's blocks and the layer's linears), the host one
#    with none of the three set. torch.backends.cpu.get_cpu_capability() is
#    recorded.
# 4. Threads, per worker, each --threads count in turn: attnc's
#    attn_library_set_num_threads(n) and torch.set_num_threads(n);
#    OMP_WAIT_POLICY=passive (PyTorch's idle OpenMP workers must not spin on
#    the cores attnc's workers need). The process is not pinned.
# 5. Per case and thread count: one call of each (warm-up) whose outputs are
#    compared: max|attnc - torch| <= TOL x max|torch| (TOL below), else the
#    case is reported as FAILED, not timed, and the script exits 1 at the end.
#    The warm-up also sizes the calls per round: about --budget seconds per
#    side (1 to 25 calls). Then --rounds rounds (--long-rounds, 3, when the
#    slower warm-up call took over --long-call, 1.5 s: S=8192 attention, one
#    call per side per round, keeps the full run at about 5 minutes); in each,
#    attnc's calls and torch's calls, the order alternating every round. A round's time per
#    side is the median of its calls; the paired ratio torch/attnc is per
#    round, and its median over rounds is reported (>1: attnc faster). This
#    machine's speed drifts by tens of percent over minutes; the paired
#    ratio cancels what the medians of all calls carry.
#
# 6. % FMA peak (issue 13's "share of the FMA peak ... for that ISA"): at the
#    start of every round, the FMA loop of the worker's ISA (8 lanes for avx2,
#    the widest the CPU runs for host; build/lib/libattn_fma_peak.so, from
#    benchmarks/baselines/fma_peak.c) on every thread, the best of 5 runs;
#    each side's GFLOP/s in that round over it, median over rounds.
#
# FLOPs (for GFLOP/s; the same count for both sides, whatever work each does):
#   attention  4 * B * H * S^2 * D, halved for causal (Q K^T and P V)
#   bert_layer 2 * B * S * (4 * d^2 + 2 * d * ff) + 4 * B * H * S^2 * Dh
#              (q, k, v, o projections, the two FFN linears, attention)
#
# Writes OUTDIR/torch_peers.json and OUTDIR/TORCH.md. Exit 77 (skip) when
# this python lacks torch/numpy/safetensors or attnc/the runtime is missing,
# 1 when a check failed or a worker died.
#
# ===----------------------------------------------------------------------=== #
import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# libgomp reads it when torch loads it (the workers inherit it too).
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import attnc_build  # benchmarks/attnc_build.py, next to this script

ROOT = Path(__file__).resolve().parent.parent
SKIP = 77
TOL = {"attention": 1e-4, "bert_layer": 1e-4}  # max abs error / max |torch output|
AVX2_TARGET = "x86-64-linux-avx2-fma-f16c"
ISA_TARGETS = {"host": "host", "avx2": AVX2_TARGET}
# The avx2 worker's environment (the host worker runs with none of these).
AVX2_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
            "ONEDNN_MAX_CPU_ISA": "AVX2"}
MODELS = {"attention": ROOT / "benchmarks/models/attention.attn",
          "attention_causal": ROOT / "benchmarks/models/attention_causal.attn",
          "bert_layer": ROOT / "examples/bert_layer.attn"}
H, D = 12, 64                      # attention.attn's heads and head size
DM, NH, FF, EPS = 768, 12, 3072, 1e-12  # bert_layer.attn


def log(msg):
    print(msg, flush=True)


def skip(reason):
    log(f"torch_peers: SKIP: {reason}")
    sys.exit(SKIP)


def fail(reason):
    log(f"torch_peers: FAIL: {reason}")
    sys.exit(1)


def load_average():
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    if not n:
        return float("nan")
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def attention_flops(S, causal, B=1):
    f = 4.0 * B * H * S * S * D
    return f / 2 if causal else f


def bert_flops(B, S):
    return 2.0 * B * S * (4 * DM * DM + 2 * DM * FF) + 4.0 * B * NH * S * S * (DM // NH)


def make_cases(sizes, bert_sizes, pattern):
    cases = []
    for S in sizes:
        for causal in (False, True):
            name = "sdpa_causal" if causal else "sdpa"
            cases.append({"label": f"{name}/S={S}", "kind": "attention", "causal": causal,
                          "B": 1, "S": S, "model": "attention_causal" if causal else "attention",
                          "flops": attention_flops(S, causal)})
    for B, S in bert_sizes:
        cases.append({"label": f"bert_layer/B={B},S={S}", "kind": "bert_layer", "causal": False,
                      "B": B, "S": S, "model": "bert_layer", "flops": bert_flops(B, S)})
    if pattern:
        cases = [c for c in cases if re.search(pattern, c["label"])]
    return cases


# --- compiling (parent) ----------------------------------------------------

# --- the worker: one ISA, one process --------------------------------------

class Worker:
    def __init__(self, plan):
        import numpy as np
        import torch
        sys.path.insert(0, str(ROOT / "python"))
        from attnc import _runtime as attnrt
        self.np, self.torch, self.attnrt = np, torch, attnrt
        self.plan = plan
        self.rt = attnrt.Runtime(plan["runtime_lib"])
        self.libs = {}  # model -> (library, model)
        self.tmp = tempfile.TemporaryDirectory(prefix="torch_peers.")
        self.bert = {}  # (B, S) independent: one torch layer, one bound attnc model
        self.fma, self.lanes = None, 0
        if Path(plan.get("fma_lib", "")).is_file():
            import ctypes
            self.fma = ctypes.CDLL(plan["fma_lib"])
            self.fma.attn_fma_peak.restype = ctypes.c_float
            self.fma.attn_fma_peak.argtypes = [ctypes.c_int, ctypes.c_long]
            # The FMA loop of the ISA this worker's attnc library targets.
            self.lanes = 8 if plan["isa"] == "avx2" else self.fma.attn_fma_widest()
            if not self.fma.attn_fma_supported(self.lanes):
                self.lanes = 0

    def peak(self, n, iters=1000000, runs=5):
        """GFLOP/s of the FMA loop of this worker's ISA on n threads at once
        (ctypes releases the GIL), the best of `runs` of a few ms (a run
        that was descheduled reads low; none reads high); None without it."""
        if not self.lanes:
            return None
        import threading
        g = []
        for _ in range(runs):
            ts = [threading.Thread(target=self.fma.attn_fma_peak, args=(self.lanes, iters))
                  for _ in range(n)]
            t0 = time.perf_counter()
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            g.append(iters * 16 * self.lanes * 2 * n / (time.perf_counter() - t0) / 1e9)
        return max(g)

    def library(self, model):
        if model not in self.libs:
            lib = self.rt.open_library(self.plan["libraries"][model])
            self.libs[model] = (lib, lib.model(model))
        return self.libs[model]

    def set_threads(self, n):
        for lib, _ in self.libs.values():
            lib.set_num_threads(n)
        self.torch.set_num_threads(n)

    # Each case gives two callables (attnc, torch) returning their output as
    # a NumPy array (attnc's in its preallocated buffer).
    def attention_case(self, c):
        np, torch = self.np, self.torch
        S, causal = c["S"], c["causal"]
        g = np.random.default_rng(1000 + S)
        q, k, v = (g.standard_normal((1, H, S, D), dtype=np.float32) for _ in range(3))
        out = np.empty((1, H, S, D), np.float32)
        _, m = self.library(c["model"])
        tq, tk, tv = (torch.from_numpy(a) for a in (q, k, v))
        F = torch.nn.functional

        def attnc():
            return m.run(q=q, k=k, v=v, outputs=[out])[0]

        def peer():
            return F.scaled_dot_product_attention(tq, tk, tv, is_causal=causal).numpy()
        info = {}
        try:
            from torch.nn.attention import SDPBackend
            info["torch_sdpa_backend"] = SDPBackend(
                torch._fused_sdp_choice(tq, tk, tv, None, 0.0, causal)).name
        except Exception as e:  # a private API: report, do not fail
            info["torch_sdpa_backend"] = f"unknown ({type(e).__name__})"
        return attnc, peer, info

    def bert_setup(self):
        """One torch layer and its weights bound into attnc's bert_layer."""
        if self.bert:
            return self.bert
        np, torch = self.np, self.torch
        from safetensors.numpy import save_file
        torch.manual_seed(0)
        layer = torch.nn.TransformerEncoderLayer(
            d_model=DM, nhead=NH, dim_feedforward=FF, dropout=0.1, activation="gelu",
            layer_norm_eps=EPS, batch_first=True, norm_first=False)
        with torch.no_grad():
            # Default init leaves the biases 0 and the norms (1, 0): randomise
            # them so that a bias or norm bound to the wrong tensor shows.
            for p in (layer.self_attn.in_proj_bias, layer.self_attn.out_proj.bias,
                      layer.linear1.bias, layer.linear2.bias, layer.norm1.bias, layer.norm2.bias):
                p.normal_(0.0, 0.1)
            for p in (layer.norm1.weight, layer.norm2.weight):
                p.normal_(1.0, 0.1)
        layer.eval()
        sa = layer.self_attn

        def a(t):
            return np.ascontiguousarray(t.detach().numpy(), dtype=np.float32)
        w, b = a(sa.in_proj_weight), a(sa.in_proj_bias)
        tensors = {"wq": w[:DM], "wk": w[DM:2 * DM], "wv": w[2 * DM:],
                   "bq": b[:DM], "bk": b[DM:2 * DM], "bv": b[2 * DM:],
                   "wo": a(sa.out_proj.weight), "bo": a(sa.out_proj.bias),
                   "ln1_g": a(layer.norm1.weight), "ln1_b": a(layer.norm1.bias),
                   "w1": a(layer.linear1.weight), "b1": a(layer.linear1.bias),
                   "w2": a(layer.linear2.weight), "b2": a(layer.linear2.bias),
                   "ln2_g": a(layer.norm2.weight), "ln2_b": a(layer.norm2.bias)}
        lib, m = self.library("bert_layer")
        named = {}
        for p in m.params:  # the file's names are the params' weight names
            wn = p.weight_name or p.name
            if p.name not in tensors:
                fail(f"bert_layer.attn has a param '{p.name}' this script does not map")
            t = np.ascontiguousarray(tensors[p.name])
            if list(t.shape) != list(p.dims):
                fail(f"param {p.name}: torch gives {t.shape}, bert_layer.attn wants {p.dims}")
            named[wn] = t
        path = Path(self.tmp.name) / "bert_layer.safetensors"
        save_file(named, str(path))
        m.bind_weights(self.rt.open_weights(path))
        self.bert = {"layer": layer, "model": m}
        return self.bert

    def bert_case(self, c):
        np, torch = self.np, self.torch
        B, S = c["B"], c["S"]
        st = self.bert_setup()
        layer, m = st["layer"], st["model"]
        g = np.random.default_rng(2000 + 10 * B + S)
        x = g.standard_normal((B, S, DM), dtype=np.float32)
        lengths = np.full((B,), S, np.int32)
        out = np.empty((B, S, DM), np.float32)
        tx = torch.from_numpy(x)

        def attnc():
            return m.run(x=x, lengths=lengths, outputs=[out])[0]

        def peer():
            return layer(tx, src_key_padding_mask=None).numpy()
        return attnc, peer, {}

    def fast_path_calls(self, peer):
        """How many times one peer() call entered the fused encoder-layer op."""
        torch = self.torch
        orig, n = torch._transformer_encoder_layer_fwd, [0]

        def counting(*a, **k):
            n[0] += 1
            return orig(*a, **k)
        torch._transformer_encoder_layer_fwd = counting
        try:
            peer()
        finally:
            torch._transformer_encoder_layer_fwd = orig
        return n[0]

    def run(self):
        np, torch = self.np, self.torch
        plan = self.plan
        res = {"isa": plan["isa"], "cases": [], "check_failed": [],
               "fma_lanes": self.lanes,
               "env": {"torch": torch.__version__, "numpy": np.__version__,
                       "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                       **{k: os.environ.get(k) for k in
                          ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS",
                           "ONEDNN_MAX_CPU_ISA", "OMP_WAIT_POLICY")},
                       "load_average_start": load_average()}}
        for model, so in plan["libraries"].items():
            lib, _ = self.library(model)
            res.setdefault("library_targets", {})[model] = lib.target()
        log(f"[{plan['isa']}] torch {torch.__version__}, cpu capability "
            f"{res['env']['cpu_capability']}; attnc targets "
            f"{sorted(set(res['library_targets'].values()))}; load {load_average()}")
        budget = plan["budget"]
        with torch.inference_mode():
            for n in plan["threads"]:
                self.set_threads(n)
                for c in plan["cases"]:
                    make = self.attention_case if c["kind"] == "attention" else self.bert_case
                    attnc, peer, info = make(c)
                    row = {**c, **info, "threads": n}
                    # Warm-up and check: one call of each, outputs compared.
                    t0 = time.perf_counter()
                    got = attnc().astype(np.float64)
                    ta = time.perf_counter() - t0
                    t0 = time.perf_counter()
                    ref = peer().astype(np.float64)
                    tt = time.perf_counter() - t0
                    tol = TOL[c["kind"]]
                    scale = float(np.abs(ref).max())
                    err = float(np.abs(got - ref).max())
                    row["check"] = {"max_abs_err": err, "max_abs_torch": scale,
                                    "rel_err": err / scale, "tolerance": tol,
                                    "pass": bool(np.isfinite(err) and err <= tol * scale)}
                    if c["kind"] == "bert_layer":
                        k = self.fast_path_calls(peer)
                        row["torch_fast_path_calls"] = k
                        if k != 1:
                            row["check"]["pass"] = False
                            row["check"]["why"] = (f"torch's fast path "
                                                   f"(_transformer_encoder_layer_fwd) ran {k} times")
                    del got, ref
                    ck = row["check"]
                    log(f"[{plan['isa']} t{n}] {c['label']}: check max|attnc - torch| "
                        f"{ck['max_abs_err']:.2e} = {ck['rel_err']:.2e} x max|torch| "
                        f"({ck['max_abs_torch']:.3g}): {'PASS' if ck['pass'] else 'FAIL'} at {tol:g}"
                        + (f" ({ck['why']})" if "why" in ck else "")
                        + (f"; SDPA backend {info['torch_sdpa_backend']}"
                           if "torch_sdpa_backend" in info else ""))
                    if not ck["pass"]:
                        res["check_failed"].append(f"{c['label']} t{n}")
                        res["cases"].append(row)
                        continue
                    calls = {s: max(1, min(25, int(budget / max(t, 1e-6))))
                             for s, t in (("attnc", ta), ("torch", tt))}
                    # Long calls (S=8192 attention): fewer rounds, one call each.
                    rounds = (min(plan["rounds"], plan["long_rounds"])
                              if max(ta, tt) > plan["long_call"] else plan["rounds"])
                    fns = {"attnc": attnc, "torch": peer}
                    times = {"attnc": [], "torch": []}
                    rds = []
                    cpu0, wall0 = time.process_time(), time.perf_counter()
                    for r in range(rounds):
                        order = ["attnc", "torch"] if r % 2 == 0 else ["torch", "attnc"]
                        rt_ = {}
                        round_peak = self.peak(n)
                        for s in order:
                            fn, ts = fns[s], []
                            for _ in range(calls[s]):
                                t0 = time.perf_counter()
                                fn()
                                ts.append(time.perf_counter() - t0)
                            times[s] += ts
                            rt_[s] = median(ts)
                        rds.append({"order": order, "median_s": rt_,
                                    "torch_over_attnc": rt_["torch"] / rt_["attnc"],
                                    "fma_peak_gflops": round_peak})
                    cpu_share = (time.process_time() - cpu0) / ((time.perf_counter() - wall0) * n)
                    row["calls_per_round"] = calls
                    row["rounds"] = rds
                    row["cpu_share"] = cpu_share
                    for s in ("attnc", "torch"):
                        m_ = median(times[s])
                        row[s] = {"median_ms": m_ * 1e3, "min_ms": min(times[s]) * 1e3,
                                  "max_ms": max(times[s]) * 1e3, "samples": len(times[s]),
                                  "gflops": c["flops"] / m_ / 1e9}
                        # Share of the FMA loop of this ISA measured at the
                        # start of the same round, median over rounds.
                        shares = [c["flops"] / x["median_s"][s] / 1e9 / x["fma_peak_gflops"]
                                  for x in rds if x["fma_peak_gflops"]]
                        row[s]["pct_fma_peak"] = 100 * median(shares) if shares else None
                    ratios = [x["torch_over_attnc"] for x in rds]
                    row["paired_torch_over_attnc"] = ratios
                    row["paired_torch_over_attnc_median"] = median(ratios)
                    res["cases"].append(row)
                    log(f"[{plan['isa']} t{n}] {c['label']}: attnc {row['attnc']['median_ms']:.2f} ms "
                        f"({row['attnc']['gflops']:.1f} GFLOP/s), torch {row['torch']['median_ms']:.2f} "
                        f"ms ({row['torch']['gflops']:.1f} GFLOP/s); torch/attnc paired median "
                        f"{row['paired_torch_over_attnc_median']:.2f} "
                        + (f"[% of the {self.lanes}-lane FMA loop: attnc "
                           f"{row['attnc']['pct_fma_peak']:.0f}, torch "
                           f"{row['torch']['pct_fma_peak']:.0f}] "
                           if row["attnc"]["pct_fma_peak"] is not None else "")
                        + f"({', '.join(f'{x:.2f}' for x in ratios)}); calls/round "
                        f"{calls['attnc']}+{calls['torch']}; cpu share {cpu_share:.2f}")
                    del attnc, peer
        res["env"]["load_average_end"] = load_average()
        return res


def worker_main(plan_path, result_path):
    plan = json.loads(Path(plan_path).read_text())
    w = Worker(plan)
    res = w.run()
    Path(result_path).write_text(json.dumps(res, indent=1) + "\n")
    return 0


# --- the report ------------------------------------------------------------

def pct(side):
    p = side.get("pct_fma_peak")
    return f"{p:.0f}%" if p is not None else "n/a"


def markdown(o):
    env = o["env"]
    lines = [
        "## attnc vs PyTorch's fused CPU kernels (issue 13)",
        "",
        f"`{env['command']}` ({env['time']}), torch {env.get('torch', '?')}, "
        f"{env['cpus']} CPUs. Same inputs, same process, interleaved: {env['rounds']} rounds "
        "per case and thread count, attnc's calls and PyTorch's in alternating order; a "
        "round's time per side is the median of its calls (about "
        f"{env['budget']:g} s of calls per side, 1 to 25; a case whose warm-up call exceeds "
        f"{env['long_call']:g} s runs {env['long_rounds']} rounds). **torch/attnc** is the "
        "median over rounds of the per-round ratio PyTorch time / attnc time (>1: attnc "
        "faster); the ms columns are medians of all calls. cpu share: process CPU time / "
        "(wall x threads) while timing (below 1: descheduled, or a thread idle).",
        "",
        "- `sdpa`, `sdpa_causal`: `F.scaled_dot_product_attention(q, k, v, is_causal=...)` "
        "vs `benchmarks/models/attention{,_causal}.attn`, q/k/v f32[1, 12, S, 64] contiguous "
        "(the same memory).",
        "- `bert_layer`: `nn.TransformerEncoderLayer(768, 12, 3072, activation='gelu', "
        "batch_first=True, norm_first=False, layer_norm_eps=1e-12)`, eval, "
        "`torch.inference_mode()` (its fast path, `torch._transformer_encoder_layer_fwd`, "
        "checked to be taken), `src_key_padding_mask=None`, vs `examples/bert_layer.attn` "
        "with lengths = S and the same weights (in_proj split into wq/wk/wv).",
        "- FLOPs: attention 4·B·H·S²·D (halved for causal); bert_layer "
        "2·B·S·(4·d² + 2·d·ff) + 4·B·H·S²·Dh with d=768, ff=3072, H=12, Dh=64. The same "
        "count for both sides.",
        f"- ISAs: `host` = attnc `--target=host`, PyTorch unrestricted; `avx2` = attnc "
        f"`--target={AVX2_TARGET}`, PyTorch in a separate process with "
        + ", ".join(f"`{k}={v}`" for k, v in AVX2_ENV.items())
        + " (ATEN_CPU_CAPABILITY alone leaves MKL's GEMMs on AVX-512).",
        "- Check before timing, per case and thread count: max|attnc − torch| ≤ "
        + ", ".join(f"{v:g} ({k})" for k, v in TOL.items()) + " × max|torch|.",
        "",
    ]
    for w in o["workers"]:
        e = w.get("env", {})
        targets = sorted(set(w.get("library_targets", {}).values()))
        lines.append(f"### {w['isa']}: attnc {', '.join(f'`{t}`' for t in targets)}; PyTorch "
                     f"capability {e.get('cpu_capability')}"
                     + ("".join(f", {k}={e[k]}" for k in AVX2_ENV if e.get(k))))
        lines.append("")
        if w.get("fma_lanes"):
            pk = [x["fma_peak_gflops"] for c in w["cases"] for x in c.get("rounds", [])
                  if c["threads"] == 1 and x.get("fma_peak_gflops")]
            lines += [f"% FMA peak: of the {w['fma_lanes']}-lane FMA loop "
                      "(`benchmarks/baselines/fma_peak.c`, 16 independent chains, the "
                      "ISA of this worker's attnc library, on every thread) measured at the "
                      "start of each round (the best of 5 runs of a few ms); the median over "
                      "rounds of each side's share. "
                      + (f"One-thread readings: median {median(pk):.1f}, min {min(pk):.1f}, "
                         f"max {max(pk):.1f} GFLOP/s." if pk else ""), ""]
        if w.get("error"):
            lines += [f"**worker failed**: {w['error']}", ""]
            continue
        for n in o["threads"]:
            rows = [c for c in w["cases"] if c["threads"] == n]
            if not rows:
                continue
            lines += [f"{n} thread{'s' if n > 1 else ''}:", "",
                      "| case | attnc ms | torch ms | attnc GFLOP/s | torch GFLOP/s | "
                      "attnc % FMA peak | torch % FMA peak | "
                      "torch/attnc (paired) | per-round ratios | check (err/max) | "
                      "calls/round | cpu share |",
                      "|---|---|---|---|---|---|---|---|---|---|---|---|"]
            for c in rows:
                ck = c["check"]
                chk = f"{ck['rel_err']:.1e}" + ("" if ck["pass"] else " **FAILED**")
                if "attnc" not in c:
                    lines.append(f"| {c['label']} | | | | | | | not timed | | {chk} | | |")
                    continue
                a, t = c["attnc"], c["torch"]
                lines.append(
                    f"| {c['label']} | {a['median_ms']:.2f} | {t['median_ms']:.2f} | "
                    f"{a['gflops']:.1f} | {t['gflops']:.1f} | "
                    f"{pct(a)} | {pct(t)} | "
                    f"**{c['paired_torch_over_attnc_median']:.2f}** | "
                    f"{' '.join(f'{x:.2f}' for x in c['paired_torch_over_attnc'])} | {chk} | "
                    f"{c['calls_per_round']['attnc']}+{c['calls_per_round']['torch']} | "
                    f"{c['cpu_share']:.2f} |")
            lines.append("")
        be = sorted({c.get("torch_sdpa_backend") for c in w["cases"] if c.get("torch_sdpa_backend")})
        if be:
            lines += [f"SDPA backend chosen by PyTorch: {', '.join(be)}.", ""]
    lines += [f"Load average at start {env['load_average_start']}, at end "
              f"{env['load_average_end']}. The machine is shared: compare the paired ratios, "
              "not medians across runs.", ""]
    return "\n".join(lines)


# --- the parent ------------------------------------------------------------

def parse_bert_sizes(text):
    out = []
    for tok in text.split(","):
        tok = tok.strip()
        if not tok:
            continue
        b, _, s = tok.lower().partition("x")
        if not s:
            b, s = "1", b
        out.append((int(b), int(s)))
    return out


def main():
    ap = argparse.ArgumentParser(description="attnc vs PyTorch SDPA and TransformerEncoderLayer")
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--attnc", help="default BUILD/bin/attnc")
    ap.add_argument("--runtime-lib", help="default BUILD/lib/libattn_runtime.so")
    ap.add_argument("--workdir", help="compiled libraries (default BUILD/bench-torch)")
    ap.add_argument("--outdir", default=str(ROOT / "benchmarks/results"))
    ap.add_argument("--isa", default="host,avx2", help="ISAs, one worker each (host,avx2)")
    ap.add_argument("--threads", default="1,2", help="thread counts, in this order (default 1,2)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds per case (default 5)")
    ap.add_argument("--sizes", default="512,2048,4096,8192",
                    help="attention S values (non-causal and causal each)")
    ap.add_argument("--bert-sizes", default="1x128,1x512,8x128",
                    help="bert_layer BxS values (default 1x128,1x512,8x128)")
    ap.add_argument("--budget", type=float, default=0.2,
                    help="seconds of calls per side per round (1 to 25 calls; default 0.2)")
    ap.add_argument("--long-call", type=float, default=1.5,
                    help="a case whose slower warm-up call takes longer (s) runs at most "
                    "--long-rounds rounds (default 1.5)")
    ap.add_argument("--long-rounds", type=int, default=3,
                    help="rounds of such long cases (default 3)")
    ap.add_argument("--filter", default="", help="regex on case labels (sdpa/S=512, "
                    "sdpa_causal/S=2048, bert_layer/B=1,S=128)")
    ap.add_argument("--worker", nargs=2, metavar=("PLAN", "RESULT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker_main(*args.worker)

    build = Path(args.build).resolve()
    attnc = Path(args.attnc or build / "bin/attnc")
    rtlib = Path(args.runtime_lib or build / "lib/libattn_runtime.so").resolve()
    workdir = Path(args.workdir or build / "bench-torch").resolve()
    outdir = Path(args.outdir).resolve()
    try:
        threads = [int(x) for x in args.threads.split(",") if x.strip()]
        sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
        bert_sizes = parse_bert_sizes(args.bert_sizes)
    except ValueError:
        ap.error("--threads, --sizes and --bert-sizes take comma-separated integers (BxS for bert)")
    isas = [x.strip() for x in args.isa.split(",") if x.strip()]
    bad = [x for x in isas if x not in ISA_TARGETS]
    if bad or not isas:
        ap.error(f"--isa: expected a list of {', '.join(ISA_TARGETS)}, got {args.isa}")
    if not threads or min(threads) < 1 or args.rounds < 1 or args.long_rounds < 1:
        ap.error("thread counts and --rounds must be at least 1")
    if any(s < 1 for s in sizes) or any(b < 1 or s < 1 for b, s in bert_sizes):
        ap.error("sizes must be positive")
    if args.rounds < 3:
        log("torch_peers: note: fewer than 3 rounds; the paired ratio's median is weak")
    cases = make_cases(sizes, bert_sizes, args.filter)
    if not cases:
        ap.error("no case left (--sizes, --bert-sizes, --filter)")
    if not rtlib.is_file():
        skip(f"{rtlib} does not exist (build the runtime first)")
    if not (attnc.is_file() and os.access(attnc, os.X_OK)):
        skip(f"{attnc} is not an executable file")
    try:
        import numpy  # noqa: F401
        import safetensors  # noqa: F401
        import torch
    except ImportError as e:
        skip(f"{sys.executable} lacks numpy/torch/safetensors ({e}); "
             "use BUILD/venv/bin/python (make venv)")

    load_start = load_average()
    log(f"torch_peers: torch {torch.__version__}; {os.cpu_count()} CPUs; load average "
        f"{load_start}; ISAs {', '.join(isas)}; threads {threads}; {len(cases)} cases")
    workdir.mkdir(parents=True, exist_ok=True)
    models = sorted({c["model"] for c in cases})
    libs, compile_s = {}, {}
    for isa in isas:
        for m in models:
            so, dt = attnc_build.compile_library(attnc, MODELS[m], workdir, isa,
                                                 [f"--target={ISA_TARGETS[isa]}"], log, fail)
            libs.setdefault(isa, {})[m] = str(so)
            compile_s[f"{m}.{isa}"] = dt

    workers = []
    t_start = time.time()
    with tempfile.TemporaryDirectory(prefix="torch_peers.") as tmp:
        for isa in isas:
            plan = {"isa": isa, "runtime_lib": str(rtlib), "libraries": libs[isa],
                    "fma_lib": str(rtlib.parent / "libattn_fma_peak.so"),
                    "threads": threads, "rounds": args.rounds, "budget": args.budget,
                    "long_call": args.long_call, "long_rounds": args.long_rounds,
                    "cases": cases}
            pp, rp = Path(tmp) / f"plan.{isa}.json", Path(tmp) / f"result.{isa}.json"
            pp.write_text(json.dumps(plan))
            env = {k: v for k, v in os.environ.items() if k not in AVX2_ENV}
            if isa == "avx2":
                env.update(AVX2_ENV)
            env["OMP_WAIT_POLICY"] = os.environ["OMP_WAIT_POLICY"]
            log(f"\n--- {isa}: worker process"
                + (f" with {' '.join(f'{k}={v}' for k, v in AVX2_ENV.items())}"
                   if isa == "avx2" else f" without {', '.join(AVX2_ENV)}"))
            t0 = time.time()
            r = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker",
                                str(pp), str(rp)], env=env)
            if r.returncode != 0 or not rp.is_file():
                log(f"torch_peers: the {isa} worker exited with {r.returncode}")
                workers.append({"isa": isa, "error": f"exit status {r.returncode}", "cases": []})
                continue
            w = json.loads(rp.read_text())
            w["wall_s"] = time.time() - t0
            workers.append(w)

    failed = [f"{w['isa']} {x}" for w in workers for x in w.get("check_failed", [])]
    died = [w["isa"] for w in workers if w.get("error")]
    out = {
        "what": "attnc vs PyTorch: SDPA and nn.TransformerEncoderLayer's fast path, "
                "paired per round",
        "flops": {"attention": "4*B*H*S^2*D, halved for causal",
                  "bert_layer": "2*B*S*(4*d^2 + 2*d*ff) + 4*B*H*S^2*Dh"},
        "tolerance_rel_to_max_abs_torch": TOL,
        "avx2_env": AVX2_ENV, "targets": ISA_TARGETS, "threads": threads,
        "libraries": {isa: {m: Path(p).name for m, p in d.items()} for isa, d in libs.items()},
        "compile_s": compile_s,
        "workers": workers, "check_failed": failed, "workers_failed": died,
        "env": {"torch": torch.__version__, "python": platform.python_version(),
                "cpus": os.cpu_count(), "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
                "rounds": args.rounds, "budget": args.budget, "long_call": args.long_call,
                "long_rounds": args.long_rounds,
                "load_average_start": load_start, "load_average_end": load_average(),
                "wall_s": time.time() - t_start,
                "command": " ".join([os.path.relpath(sys.executable, ROOT)
                                     if sys.executable.startswith(str(ROOT)) else sys.executable]
                                    + sys.argv),
                "time": time.strftime("%Y-%m-%d %H:%M:%S")},
    }
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "torch_peers.json").write_text(json.dumps(out, indent=1) + "\n")
    (outdir / "TORCH.md").write_text(markdown(out))
    log(f"\nwrote {outdir / 'torch_peers.json'} and {outdir / 'TORCH.md'} "
        f"({time.time() - t_start:.0f} s of workers)")
    if failed:
        log(f"torch_peers: FAIL: check failed for {', '.join(failed)}")
    if died:
        log(f"torch_peers: FAIL: worker(s) {', '.join(died)} died")
    return 1 if failed or died else 0


if __name__ == "__main__":
    sys.exit(main())
