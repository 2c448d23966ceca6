#!/usr/bin/env python3
"""A/B of two competitors of one attn-bench run, paired per repetition.

    benchmarks/ab.py RAW_JSON [A [B]]     (defaults: attnc_fused attnc_unfused)

For every case and thread count of RAW_JSON (attn-bench's raw_t<T>.json) in
which both ran, prints the median over the repetitions both ran in of
time(B) / time(A) (> 1: A is faster), with the min and max of those ratios
and the medians of each. Competitors of a case are timed round-robin, so a
pair is two calls seconds apart: the drift of a shared machine's speed over
minutes cancels, which a ratio of medians does not guarantee.

Comparing two schedules, for example:
    ATTNC_FUSED_FLAGS="" ATTNC_UNFUSED_FLAGS="--schedule=linear:k=64" \\
    BENCH_OUT=/tmp/ab BENCH_THREADS=1 BENCH_FILTER='^gemm_3072x768/S=512$' \\
    bash benchmarks/bench.sh build --competitors attnc --no-verify
    benchmarks/ab.py /tmp/ab/raw_t1.json
(bench.sh's report then labels the two variants by those flags.)
"""
import json
import statistics
import sys


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    raw = json.load(open(sys.argv[1]))
    a = sys.argv[2] if len(sys.argv) > 2 else "attnc_fused"
    b = sys.argv[3] if len(sys.argv) > 3 else "attnc_unfused"
    rows = {}
    for r in raw["results"]:
        if r.get("status") == "ok" and "times_ms" in r:
            rows[(r["case"], r["threads"], r["competitor"])] = r
    found = False
    for (case, t, comp), ra in sorted(rows.items()):
        if comp != a or (case, t, b) not in rows:
            continue
        rb = rows[(case, t, b)]
        tb = dict(zip(rb["rounds"], rb["times_ms"]))
        q = [tb[rd] / ms for rd, ms in zip(ra["rounds"], ra["times_ms"])
             if rd in tb]
        if not q:
            continue
        found = True
        print(f"{case} T={t}: {b}/{a} = {statistics.median(q):.3f} paired "
              f"(min {min(q):.3f}, max {max(q):.3f}, {len(q)} pairs); "
              f"medians {ra['median_ms']:.3f} / {rb['median_ms']:.3f} ms")
    if not found:
        sys.exit(f"ab.py: no case in which both {a} and {b} ran")


if __name__ == "__main__":
    main()
