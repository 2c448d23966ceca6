#!/usr/bin/env bash
#===- scripts/install-deps.sh - install the Debian packages attnc needs ---===#
#
# Idempotent: checks each package with dpkg first, and only calls apt-get when
# something is missing. Quick (well under a second) when all are present.
#
#===----------------------------------------------------------------------===#
set -euo pipefail

PACKAGES=(
  cmake ninja-build g++ python3
  llvm-22-dev libmlir-22-dev mlir-22-tools llvm-22-tools
  libhalide14-0-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libopenblas-dev libdnnl-dev
  pocl-opencl-icd ocl-icd-opencl-dev
  nlohmann-json3-dev
  python3-matplotlib
  gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
  zlib1g-dev libzstd-dev libedit-dev libxml2-dev libffi-dev
  clang-22 libclang-rt-22-dev  # make fuzz: libFuzzer (libclang_rt.fuzzer)
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
