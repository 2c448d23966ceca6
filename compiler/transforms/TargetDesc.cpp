//===- TargetDesc.cpp - the target families' table ------------------------===//
#include "attn/Transforms/TargetDesc.h"

#include "llvm/ADT/StringSwitch.h"

using namespace attn;
using Family = TargetDesc::Family;

namespace {
struct Entry {
  Family family;
  const char *name;
  int64_t vector, registers, fmaUnits, l1, l2, l3;
};
// Caches per core of a typical part of each family, for named targets
// (--target=x86-64-linux-avx2 compiles for some other machine): AVX-512 a
// Sapphire Rapids core (48 KiB L1d, 2 MiB L2), AVX2 a Zen 4 / Skylake-client
// core (32 KiB, 1 MiB), NEON a Neoverse N1 core (64 KiB, 1 MiB). GPUs: the
// shared memory a block may use (L1 here).
constexpr Entry kTable[] = {
    {Family::AVX512, "avx512", 16, 32, 2, 48 << 10, 2 << 20, 32 << 20},
    {Family::AVX2, "avx2", 8, 16, 2, 32 << 10, 1 << 20, 32 << 20},
    {Family::NEON, "neon", 4, 32, 2, 64 << 10, 1 << 20, 32 << 20},
    {Family::Generic, "generic", 4, 16, 0, 32 << 10, 256 << 10, 8 << 20},
    {Family::CUDA, "cuda", 1, 0, 0, 48 << 10, 0, 0},
    {Family::OpenCL, "opencl", 1, 0, 0, 32 << 10, 0, 0},
};

const Entry &entry(Family f) {
  for (const Entry &e : kTable)
    if (e.family == f)
      return e;
  return kTable[3];
}
} // namespace

TargetDesc TargetDesc::get(Family family, int64_t l1, int64_t l2, int64_t l3) {
  const Entry &e = entry(family);
  return {family,
          e.vector,
          e.registers,
          e.fmaUnits,
          l1 > 0 ? l1 : e.l1,
          l2 > 0 ? l2 : e.l2,
          l3 > 0 ? l3 : e.l3};
}

llvm::StringRef TargetDesc::familyName(Family family) {
  return entry(family).name;
}

std::optional<Family> TargetDesc::parseFamily(llvm::StringRef name) {
  for (const Entry &e : kTable)
    if (name == e.name)
      return e.family;
  return std::nullopt;
}

std::string TargetDesc::familyList() {
  std::string list;
  for (const Entry &e : kTable)
    list += (list.empty() ? "" : ", ") + std::string(e.name);
  return list;
}
