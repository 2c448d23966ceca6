#!/usr/bin/env bash
#===- tests/cross/aarch64-qemu.sh - e2e models for aarch64, under qemu ----===#
#
#   aarch64-qemu.sh BUILD_DIR ATTN_RUN_AARCH64 MODEL.attn ...
#
# For each model and each size set of its '# e2e-sizes:' line (symbols
# only): attnc compiles it for the host (to generate inputs and weights with
# attn-randn) and for arm-64-linux (Debian's aarch64-linux-gnu-gcc links
# it); the aarch64 build of attn-run runs it under qemu-aarch64 (Debian's
# qemu-user, with the cross libc as its sysroot), and attn-ref checks its
# outputs against the double-precision reference at attn-ref's tolerances.
# Exit 77 (skipped) when qemu-aarch64 or the cross runner is missing.
#
#===----------------------------------------------------------------------===#
set -euo pipefail
BUILD=$1 RUNNER=$2
shift 2
QEMU=$(command -v qemu-aarch64 || true)
SYSROOT=/usr/aarch64-linux-gnu
if [ -z "$QEMU" ] || [ ! -x "$RUNNER" ] || [ ! -d "$SYSROOT" ]; then
  echo "SKIP: qemu-aarch64, $SYSROOT or $RUNNER missing (scripts/install-deps.sh installs them)"
  exit 77
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
fail=0 runs=0
for model in "$@"; do
  name=$(basename "$model" .attn)
  "$BUILD/bin/attnc" "$model" -o "$WORK/$name.host.so"
  "$BUILD/bin/attnc" "$model" --target=arm-64-linux -o "$WORK/$name.arm.so"
  sizes=$(sed -n 's/^# e2e-sizes: *//p' "$model" | head -1)
  IFS='|' read -r -a groups <<<"$sizes"
  g=0
  for group in "${groups[@]}"; do
    g=$((g + 1))
    args=()
    for tok in $group; do
      [[ $tok =~ ^[A-Z][A-Za-z0-9_]*=[0-9]+$ ]] && args+=(--size "$tok")
    done
    d="$WORK/$name.$g"
    mkdir -p "$d/in"
    "$BUILD/bin/attn-randn" "$WORK/$name.host.so" --seed "$g" "${args[@]}" \
      --weights "$d/w.safetensors" --inputs-dir "$d/in" >/dev/null
    inputs=()
    for f in "$d"/in/*.npy; do
      inputs+=(--input "$(basename "$f" .npy)=$f")
    done
    outs=() checks=()
    n=$("$BUILD/bin/attn-run" --info "$WORK/$name.host.so" | grep -c '^ *output ' || true)
    for ((o = 0; o < n; ++o)); do
      outs+=(--output "$d/out$o.npy")
      checks+=(--check "$d/out$o.npy")
    done
    runs=$((runs + 1))
    if ! "$QEMU" -L "$SYSROOT" "$RUNNER" "$WORK/$name.arm.so" \
        --weights "$d/w.safetensors" "${inputs[@]}" "${outs[@]}" ||
       ! "$BUILD/bin/attn-ref" "$model" --weights "$d/w.safetensors" \
        "${inputs[@]}" "${checks[@]}"; then
      echo "FAIL: $name ($group)"
      fail=1
    else
      echo "ok: $name ($group)"
    fi
  done
done
echo "$runs runs under qemu-aarch64"
exit $fail
