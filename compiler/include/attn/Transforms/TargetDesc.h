//===- TargetDesc.h - what schedules are derived from ------------*- C++ -*-===//
//
// A target as the schedule sees it: its family (ISA), f32 lanes per vector,
// vector registers, FMA units per core and the data cache sizes per core
// (L3: the shared last level). The Halide back end builds one from a
// Halide::Target (attn::describeTarget in attn/Halide/Emit.h: host caches
// from sysfs, named targets from the family's table, both overridable);
// `attn-schedule` takes it as pass options (the family name and the
// cache sizes) and rebuilds it with `TargetDesc::get`.
//
//===----------------------------------------------------------------------===//
#ifndef ATTN_TRANSFORMS_TARGETDESC_H
#define ATTN_TRANSFORMS_TARGETDESC_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <optional>
#include <string>

namespace attn {

struct TargetDesc {
  enum class Family { AVX512, AVX2, NEON, Generic, CUDA, OpenCL };
  Family family;
  int64_t vector;    ///< f32 lanes per vector register
  int64_t registers; ///< vector registers
  int64_t fmaUnits;  ///< vector FMAs issued per cycle (0: no FMA)
  int64_t l1Bytes;   ///< L1 data cache per core
  int64_t l2Bytes;   ///< L2 per core
  int64_t l3Bytes;   ///< last level, shared

  bool gpu() const { return family == Family::CUDA || family == Family::OpenCL; }
  llvm::StringRef name() const { return familyName(family); }

  /// The family's table entry; cache sizes > 0 replace the table's.
  static TargetDesc get(Family family, int64_t l1 = 0, int64_t l2 = 0,
                        int64_t l3 = 0);
  /// avx512, avx2, neon, generic, cuda, opencl.
  static llvm::StringRef familyName(Family family);
  static std::optional<Family> parseFamily(llvm::StringRef name);
  /// The family names, comma-separated (for error messages).
  static std::string familyList();
};

} // namespace attn

#endif // ATTN_TRANSFORMS_TARGETDESC_H
