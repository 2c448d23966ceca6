#!/usr/bin/env bash
#===- scripts/demo.sh - what `make demo` shows ---------------------------===#
# Compiles examples/bert_layer.attn, makes seeded random weights and inputs
# (B=2, S=128), runs the library through attn-run and checks the output
# against the double-precision reference (attn-ref).
set -euo pipefail
BUILD=${1:-build}
BIN="$BUILD/bin"
cd "$(dirname "$0")/.."
OUT="$BUILD/demo"
mkdir -p "$OUT"

echo "== attn IR of examples/bert_layer.attn (attnc --emit=attn), first lines"
"$BIN/attnc" examples/bert_layer.attn --emit=attn | head -n 20
echo "   ..."

echo "== compile: attnc examples/bert_layer.attn -o $OUT/libbert_layer.so"
start=$(date +%s%N)
"$BIN/attnc" examples/bert_layer.attn -o "$OUT/libbert_layer.so"
end=$(date +%s%N)
echo "   compiled in $(( (end - start) / 1000000 )) ms"

echo "== the library describes itself (attn-run --info)"
"$BIN/attn-run" --info "$OUT/libbert_layer.so"

echo "== random weights and inputs, seed 1, B=2 S=128 (attn-randn)"
"$BIN/attn-randn" "$OUT/libbert_layer.so" --seed 1 --size B=2 --size S=128 \
  --weights "$OUT/weights.safetensors" --inputs-dir "$OUT"

echo "== run (attn-run, median of 5, 1 thread)"
"$BIN/attn-run" "$OUT/libbert_layer.so" --weights "$OUT/weights.safetensors" \
  --input x="$OUT/x.npy" --input lengths="$OUT/lengths.npy" \
  --output "$OUT/out.npy" --repeat 5 --threads 1

echo "== compare with the double-precision reference (attn-ref)"
"$BIN/attn-ref" examples/bert_layer.attn --weights "$OUT/weights.safetensors" \
  --input x="$OUT/x.npy" --input lengths="$OUT/lengths.npy" \
  --check "$OUT/out.npy" --rtol 1e-3 --atol 1e-4
