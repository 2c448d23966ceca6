#!/usr/bin/env bash
#===- benchmarks/bench.sh - `make bench`: compile the models, run, report -===#
#
#   bash benchmarks/bench.sh [BUILD_DIR] [extra attn-bench arguments]
#
# Environment:
#   BENCH_FILTER   regex on case labels, e.g. 'attention/S=(512|2048)$' or
#                  '^gemm' (labels: attention/S=128, attention_causal/S=2048,
#                  attention_gqa/S=2048, gemm_768x768/S=512, bert_layer/S=128,
#                  gpt2_block/S=1024). The decode benchmark (step 4) runs
#                  when the filter is empty or contains 'decode', the PyTorch
#                  peers (step 5) when it is empty or contains 'torch'; the
#                  Python overhead (step 6) when it is empty or contains
#                  'python'; the top-level alternatives that mention
#                  'decode', 'torch' or 'python' are removed before
#                  attn-bench sees the filter, and
#                  attn-bench does not run when none is left
#                  (BENCH_FILTER=decode: decode only; 'decode|torch': both).
#   BENCH_THREADS  thread counts, default 1,2 (attn-bench, decode, torch peers)
#   BENCH_BUDGET   seconds of timed calls per competitor and case (default 1)
#   BENCH_MAX_CALL skip a competitor whose call, extrapolated from a smaller S
#                  of the same group, would take longer (seconds, default 15)
#   BENCH_OUT      output directory (default benchmarks/results)
#   ATTNC, ATTN_BENCH  override the binaries (default BUILD/bin/...)
#
# 1. Compiles every model (benchmarks/models/*.attn, examples/bert_layer.attn,
#    examples/gpt2_block.attn) with build/bin/attnc once per variant into
#    BUILD/benchmarks/libs/<variant>/<model>.so. A model attnc cannot compile
#    leaves <model>.err instead; attn-bench then skips that competitor and
#    prints the compiler's message.
# 2. Runs attn-bench (one process per thread count, all competitors
#    interleaved) -> BENCH_OUT/raw_t<T>.json.
# 3. report.py -> BENCH_OUT/results.json, REPORT.md, chart.png.
# 4. benchmarks/decode_bench.py with BUILD/venv/bin/python (skipped, with the
#    reason, without it): one Llama decode step at T=4096, attnc vs PyTorch
#    eager -> BENCH_OUT/decode.json, DECODE.md. Its weights and library are
#    cached in BUILD/bench-decode/.
# 5. benchmarks/torch_peers.py with BUILD/venv/bin/python (skipped, with the
#    reason, without torch): attention vs torch's scaled_dot_product_attention
#    and bert_layer vs nn.TransformerEncoderLayer's fast path, attnc built for
#    the host and for AVX2 (PyTorch restricted to AVX2 in that run) ->
#    BENCH_OUT/torch_peers.json, TORCH.md. Libraries cached in BUILD/bench-torch/.
# 6. benchmarks/python_overhead.py with BUILD/venv/bin/python (when the
#    filter is empty or contains 'python', e.g. BENCH_FILTER=python/overhead):
#    a tiny model called from C and from the attnc package (NumPy, torch),
#    median us per call -> BENCH_OUT/python_overhead.json, PYTHON.md.
# A failed check in step 4, 5 or 6 makes bench.sh exit 1 after everything ran.
#
#===----------------------------------------------------------------------===#
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
shift || true
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
ATTNC=${ATTNC:-$BUILD/bin/attnc}
BENCH=${ATTN_BENCH:-$BUILD/bin/attn-bench}
LIBDIR="$BUILD/benchmarks/libs"
OUT=${BENCH_OUT:-$ROOT/benchmarks/results}

#--- The attnc variants: their flags live here and nowhere else -------------#
# attnc_fused: the default pipeline.
ATTNC_FUSED_FLAGS=${ATTNC_FUSED_FLAGS:-}
ATTNC_FUSED_ENV=${ATTNC_FUSED_ENV:-}
# attnc_unfused: the same ops, each computed at root (`attnc --no-fusion`).
# An older attnc without the switch gets no unfused variant (it would only
# time the fused library twice): attn-bench reports it as skipped.
if [ -z "${ATTNC_UNFUSED_FLAGS+x}" ]; then
  if "$ATTNC" --help 2>/dev/null | grep -q -- '--no-fusion'; then
    ATTNC_UNFUSED_FLAGS="--no-fusion"
  else
    ATTNC_UNFUSED_FLAGS=""
  fi
fi
ATTNC_UNFUSED_ENV=${ATTNC_UNFUSED_ENV:-}
#----------------------------------------------------------------------------#

MODELS=("$ROOT"/benchmarks/models/*.attn "$ROOT/examples/bert_layer.attn"
        "$ROOT/examples/gpt2_block.attn")

compile_variant() { # variant flags env
  local variant=$1 flags=$2 envs=$3 dir="$LIBDIR/$1"
  mkdir -p "$dir"
  for model in "${MODELS[@]}"; do
    local name
    name=$(basename "$model" .attn)
    local so="$dir/$name.so" err="$dir/$name.err" stamp="$dir/$name.flags"
    local want="$flags|$envs"
    if [ -f "$so" ] && [ "$so" -nt "$ATTNC" ] && [ "$so" -nt "$model" ] &&
       [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
      continue
    fi
    rm -f "$so" "$err"
    # shellcheck disable=SC2086
    if env $envs timeout 600 "$ATTNC" "$model" -o "$so" $flags 2>"$err.tmp"; then
      rm -f "$err.tmp"
      echo "$want" >"$stamp"
      echo "bench: compiled $variant/$name.so"
    else
      mv "$err.tmp" "$err"
      rm -f "$so"
      echo "bench: attnc cannot compile $name ($variant): $(head -n 1 "$err")"
    fi
  done
}

if [ ! -x "$BENCH" ]; then
  ninja -C "$BUILD" attn-bench attnc
fi
compile_variant fused "$ATTNC_FUSED_FLAGS" "$ATTNC_FUSED_ENV"
if [ -n "$ATTNC_UNFUSED_FLAGS$ATTNC_UNFUSED_ENV" ]; then
  compile_variant unfused "$ATTNC_UNFUSED_FLAGS" "$ATTNC_UNFUSED_ENV"
else
  mkdir -p "$LIBDIR/unfused"
  for model in "${MODELS[@]}"; do
    name=$(basename "$model" .attn)
    rm -f "$LIBDIR/unfused/$name.so"
    echo "skip: this attnc has no --no-fusion switch (ATTNC_UNFUSED_FLAGS in benchmarks/bench.sh is empty)" \
      >"$LIBDIR/unfused/$name.err"
  done
fi
cat >"$LIBDIR/variants.json" <<JSON
{"fused": {"flags": "$ATTNC_FUSED_FLAGS", "env": "$ATTNC_FUSED_ENV"},
 "unfused": {"flags": "$ATTNC_UNFUSED_FLAGS", "env": "$ATTNC_UNFUSED_ENV"}}
JSON

# BENCH_FILTER without its top-level alternatives that mention 'decode'
# (the parentheses' depth is tracked: 'attention/S=(512|2048)$' is one).
FILTER=${BENCH_FILTER:-}
FILTER_ALL=$FILTER # the Python steps match the whole filter
RUN_CASES=1
if [ -n "$FILTER" ]; then
  FILTER=$(/usr/bin/python3 - "$FILTER" <<'PY'
import sys
parts, depth, cur = [], 0, ""
for ch in sys.argv[1]:
    depth += {"(": 1, ")": -1}.get(ch, 0)
    if ch == "|" and depth == 0:
        parts.append(cur)
        cur = ""
    else:
        cur += ch
parts.append(cur)
print("|".join(p for p in parts
               if all(w not in p for w in ("decode", "torch", "python"))))
PY
)
  [ -z "$FILTER" ] && RUN_CASES=0
fi

mkdir -p "$OUT"
if [ "$RUN_CASES" = 1 ]; then
  rm -f "$OUT"/raw_t*.json
  ARGS=(--threads "${BENCH_THREADS:-1,2}" --libdir "$LIBDIR" --outdir "$OUT"
        --budget "${BENCH_BUDGET:-1}" --max-call "${BENCH_MAX_CALL:-15}")
  [ -n "$FILTER" ] && ARGS+=(--filter "$FILTER")
  "$BENCH" "${ARGS[@]}" "$@"
  /usr/bin/python3 "$ROOT/benchmarks/report.py" "$OUT"
else
  echo "bench: BENCH_FILTER='$BENCH_FILTER' selects only the decode/torch/python steps; attn-bench not run"
fi

FAILED=0
# A Python step (decode, torch peers) in the venv: NAME SCRIPT WORD MODULE.
# Skipped, saying why, when BENCH_FILTER does not mention WORD, without the
# venv, or when the venv cannot import MODULE; exit 77 is the script's own
# skip; any other failure sets FAILED.
python_step() {
  local name=$1 script=$2 word=$3 module=$4 status=0
  case "$FILTER_ALL" in
    ''|*"$word"*) ;;
    *) echo "bench: $name skipped: BENCH_FILTER='$FILTER_ALL' does not contain '$word'"; return ;;
  esac
  if [ ! -x "$BUILD/venv/bin/python" ]; then
    echo "bench: $name skipped: $BUILD/venv/bin/python does not exist (make venv makes it)"
    return
  fi
  if ! "$BUILD/venv/bin/python" -c "import $module" 2>/dev/null; then
    echo "bench: $name skipped: $BUILD/venv/bin/python cannot import $module"
    return
  fi
  "$BUILD/venv/bin/python" "$ROOT/benchmarks/$script" --build "$BUILD" \
    --attnc "$ATTNC" --outdir "$OUT" --threads "${BENCH_THREADS:-1,2}" || status=$?
  case $status in
    0) ;;
    77) echo "bench: $name skipped (see above)" ;;
    *) echo "bench: $script exited with $status"; FAILED=1 ;;
  esac
}

#--- 4. The decode step: attnc vs PyTorch eager (benchmarks/decode_bench.py) -#
python_step decode decode_bench.py decode numpy
#--- 5. attnc vs PyTorch's fused kernels (benchmarks/torch_peers.py) ---------#
python_step "torch peers" torch_peers.py torch torch
#--- 6. The Python package's per-call overhead (benchmarks/python_overhead.py)
python_step "python overhead" python_overhead.py python numpy
exit "$FAILED"
