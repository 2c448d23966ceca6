#!/usr/bin/env bash
#===- scripts/demo.sh - what `make demo` shows ---------------------------===#
# Compiles examples/bert_layer.attn and prints its attn IR.
set -euo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
echo "== attnc examples/bert_layer.attn --emit=attn"
"$BUILD/bin/attnc" examples/bert_layer.attn --emit=attn
