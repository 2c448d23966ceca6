#!/usr/bin/env bash
# Compile time and peak memory of attnc against the op count (issue 14
# item 4): compiles chains of N element-wise and linear ops
# (scripts/gen-chain.py) to a shared library and prints, per N, the wall
# time, the CPU time (user + system, less noisy on a shared machine) and
# the peak resident memory, then the ratios to the first N.
#
#   scripts/compile-scaling.sh [BUILD_DIR] [N ...]     (default: build 50 100 200 400)
#   ATTNC_FLAGS="--segment-ops=0" scripts/compile-scaling.sh build 50 100
#
# A measurement, not a test: the machine's load moves the times.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
shift || true
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(50 100 200 400)
attnc=$(cd "$build" && pwd)/bin/attnc
[ -x "$attnc" ] || { echo "compile-scaling.sh: no $attnc (build first)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "compile-scaling.sh: needs /usr/bin/time (GNU time)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

printf "%6s %10s %10s %10s   %s\n" ops "wall s" "cpu s" "peak MiB" "(attnc ${ATTNC_FLAGS:-})"
first_cpu=""
first_mem=""
for n in "${sizes[@]}"; do
  python3 "$here/gen-chain.py" "$n" > "$tmp/chain$n.attn"
  # shellcheck disable=SC2086
  /usr/bin/time -f "%e %U %S %M" -o "$tmp/time$n" \
    "$attnc" "$tmp/chain$n.attn" ${ATTNC_FLAGS:-} -o "$tmp/libchain$n.so"
  read -r wall user sys kb < "$tmp/time$n"
  cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.1f", u + s }')
  mib=$(awk -v k="$kb" 'BEGIN { printf "%.0f", k / 1024 }')
  [ -n "$first_cpu" ] || { first_cpu=$cpu; first_mem=$mib; first_n=$n; }
  ratio=$(awk -v c="$cpu" -v f="$first_cpu" -v m="$mib" -v g="$first_mem" \
    'BEGIN { printf "cpu x%.2f, memory x%.2f", c / f, m / g }')
  printf "%6s %10s %10s %10s   %s vs %s ops\n" "$n" "$wall" "$cpu" "$mib" "$ratio" "$first_n"
done
