#!/usr/bin/env python3
"""Writes a model that is a chain of N element-wise and linear ops.

    python3 scripts/gen-chain.py N [--width W] > chain.attn

The chain cycles through linear(h, w_i, b_i), gelu, a residual add and
silu, so that ops of both kinds alternate and fusion still leaves about
N/2 Funcs. The model is `chain<S>(x: f32[S, W]) -> f32[S, W]`. Used by
scripts/compile-scaling.sh and the lit tests of compile time limits.
"""
import argparse
import sys


def chain(n, width):
    lines = [f"# A chain of {n} element-wise and linear ops (scripts/gen-chain.py).",
             f"model chain<S>(x: f32[S, {width}]) -> f32[S, {width}] {{"]
    body = []
    h, prev = "x", "x"
    for i in range(n):
        kind = i % 4
        out = f"h{i}"
        if kind == 0:
            lines.append(f"  param w{i}: f32[{width}, {width}]")
            lines.append(f"  param b{i}: f32[{width}]")
            body.append(f"  {out} = linear({h}, w{i}, b{i})")
            prev = h
        elif kind == 1:
            body.append(f"  {out} = gelu({h})")
        elif kind == 2:
            body.append(f"  {out} = {h} + {prev}")
        else:
            body.append(f"  {out} = silu({h})")
        h = out
    return "\n".join(lines + body + [f"  return {h}", "}"]) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int, help="ops in the chain (>= 1)")
    ap.add_argument("--width", type=int, default=64)
    a = ap.parse_args()
    if a.n < 1:
        sys.exit("gen-chain.py: N must be at least 1")
    sys.stdout.write(chain(a.n, a.width))


if __name__ == "__main__":
    main()
