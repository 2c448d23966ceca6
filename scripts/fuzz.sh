#!/usr/bin/env bash
#===- scripts/fuzz.sh - Run each libFuzzer harness for a while ------------===#
#
# Usage: scripts/fuzz.sh BUILD_DIR SECONDS [HARNESS...]
# Runs BUILD_DIR/bin/fuzz-NAME (built with -DATTN_FUZZ=ON) for SECONDS each,
# one after the other, with its dictionary (tests/fuzz/NAME.dict), its seeds
# (BUILD_DIR/fuzz/NAME/seeds) and its past crashes (tests/fuzz/crashes/NAME).
# New inputs go to BUILD_DIR/fuzz/NAME/corpus, crashes to
# BUILD_DIR/fuzz/NAME/artifacts: copy a fixed one into tests/fuzz/crashes/NAME
# so that `make test` replays it. Fails if any harness found a crash.
#
#===----------------------------------------------------------------------===#
set -uo pipefail
build=$1
seconds=$2
shift 2
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=(dsl mlir safetensors npy runtime)
src=$(cd "$(dirname "$0")/.." && pwd)

failed=()
for name in "${harnesses[@]}"; do
  work=$build/fuzz/$name
  mkdir -p "$work/corpus" "$work/artifacts"
  dict=()
  [ -f "$src/tests/fuzz/$name.dict" ] && dict=(-dict="$src/tests/fuzz/$name.dict")
  echo "fuzz: $name for ${seconds}s"
  start=$(date +%s)
  TIMEFORMAT="fuzz: $name: CPU %U s user + %S s sys"
  time ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "$build/bin/fuzz-$name" -max_total_time="$seconds" -timeout=30 \
    -rss_limit_mb=2048 -print_final_stats=1 "${dict[@]}" \
    -artifact_prefix="$work/artifacts/" \
    "$work/corpus" "$work/seeds" "$src/tests/fuzz/crashes/$name" \
    >"$work/last.log" 2>&1
  rc=$?
  grep -E '^stat::number_of_executed_units|^Done' "$work/last.log" || true
  echo "fuzz: $name: rc $rc after $(( $(date +%s) - start ))s (log $work/last.log)"
  [ $rc -eq 0 ] || failed+=("$name")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in: ${failed[*]} (see $build/fuzz/NAME/artifacts)"
  exit 1
fi
