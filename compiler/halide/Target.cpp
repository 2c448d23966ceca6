//===- Target.cpp - --target -> Halide::Target -> TargetDesc --------------===//
#include "attn/Halide/Emit.h"
#include "attn/Halide/HalideGen.h"

#include "mlir/IR/Diagnostics.h"
#include "llvm/Support/MemoryBuffer.h"

using namespace mlir;
using attn::TargetDesc;
using Family = TargetDesc::Family;

static const char *const kKnownTargets =
    "host, cuda, opencl, or a Halide target string such as "
    "x86-64-linux-avx512, x86-64-linux-avx2-fma-f16c, x86-64-linux-sse41, "
    "arm-64-linux";

FailureOr<Halide::Target> attn::parseTarget(Location loc, StringRef name) {
  std::string spec = name.str();
  if (name == "cuda")
    spec = "host-cuda-cuda_capability_80";
  else if (name == "opencl")
    spec = "host-opencl-cl_doubles"; // rope's angles are computed in f64
  if (name == "host")
    return Halide::get_host_target();
  if (!Halide::Target::validate_target_string(spec))
    return emitError(loc) << "unknown target '" << name << "' (known: "
                          << kKnownTargets << ")";
  return Halide::Target(spec);
}

/// The family of a Halide target, if attnc has one for it.
static std::optional<Family> familyOf(const Halide::Target &t) {
  using T = Halide::Target;
  if (t.has_feature(T::CUDA))
    return Family::CUDA;
  if (t.has_feature(T::OpenCL))
    return Family::OpenCL;
  if (t.has_gpu_feature())
    return std::nullopt;
  if (t.arch == T::X86 && t.bits == 64) {
    for (T::Feature f : {T::AVX512, T::AVX512_KNL, T::AVX512_Skylake,
                         T::AVX512_Cannonlake, T::AVX512_SapphireRapids})
      if (t.has_feature(f))
        return Family::AVX512;
    // Halide's avx2 enables FMA and F16C with it.
    return t.has_feature(T::AVX2) ? Family::AVX2 : Family::Generic;
  }
  if (t.arch == T::ARM && t.bits == 64)
    return Family::NEON;
  return Family::Generic;
}

/// This machine's data cache sizes per level (1-3) from sysfs, 0 where
/// unknown.
static void hostCaches(int64_t sizes[4]) {
  for (int i = 0; i < 8; ++i) {
    std::string dir =
        "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
    auto read = [&](const char *name) -> std::string {
      auto buf = llvm::MemoryBuffer::getFile(dir + name, /*IsText=*/true);
      return buf ? (*buf)->getBuffer().trim().str() : std::string();
    };
    std::string level = read("level"), type = read("type"), size = read("size");
    if (level.empty() || type == "Instruction" || size.empty())
      continue;
    int lv = level[0] - '0';
    StringRef digits(size);
    int64_t scale = digits.consume_back("K")   ? 1 << 10
                    : digits.consume_back("M") ? 1 << 20
                                               : 1;
    int64_t n = 0;
    if (lv >= 1 && lv <= 3 && !digits.getAsInteger(10, n) && n > 0)
      sizes[lv] = n * scale;
  }
}

FailureOr<TargetDesc> attn::describeTarget(Location loc, StringRef target,
                                           int64_t l1, int64_t l2,
                                           int64_t l3) {
  FailureOr<Halide::Target> t = parseTarget(loc, target);
  if (failed(t))
    return failure();
  std::optional<Family> family = familyOf(*t);
  if (!family)
    return emitError(loc) << "target '" << target
                          << "' has no attnc family (known families: "
                          << TargetDesc::familyList() << ")";
  int64_t host[4] = {0, 0, 0, 0};
  if (target == "host" || target.starts_with("host-"))
    hostCaches(host);
  return TargetDesc::get(*family, l1 > 0 ? l1 : host[1],
                         l2 > 0 ? l2 : host[2], l3 > 0 ? l3 : host[3]);
}
