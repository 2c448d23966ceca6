//===- Emit.h - attn IR -> Halide -> stmt, LLVM, objects, libraries -*- C++ -*-===//
//
// The entry point of the Halide back end. It needs no Halide header, so the
// driver (built without exceptions) can include it.
//
// Every model `@m` becomes one Halide pipeline whose function is `attn_m`
// (with `attn_m_argv` taking `void **` in table order). Libraries also hold
// one Halide runtime and the `attn_library_v1` table of runtime/include/attn/abi.h.
//
//===----------------------------------------------------------------------===//
#ifndef ATTN_HALIDE_EMIT_H
#define ATTN_HALIDE_EMIT_H

#include "attn/Transforms/TargetDesc.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LLVM.h"

#include <string>

namespace attn {

enum class HalideEmitKind {
  Stmt,    ///< Halide's lowered stmt (text)
  Html,    ///< Halide's lowered stmt as HTML
  Llvm,    ///< LLVM IR (text)
  Asm,     ///< assembly (text)
  Header,  ///< a C header declaring each model's Halide function
  Object,  ///< one relocatable object: pipelines + runtime + table
  Static,  ///< a static library (.a)
  Shared,  ///< a shared library (.so)
};

/// Whether `kind` produces text (and so may go to stdout with `-o -`).
bool isTextKind(HalideEmitKind kind);

/// The default of emitHalide's `segmentOps` (attnc --segment-ops).
inline constexpr int kDefaultSegmentOps = 24;

/// Compiles every model (func.func) of `module` for `target` (`host`, a
/// Halide target string, `cuda` or `opencl`) and writes `kind` to
/// `outputPath` ('-' = stdout for text kinds). A CPU model of more than
/// `segmentOps` root ops (0: none) becomes several pipelines of about as
/// many, run one after the other by its C wrapper: compile time then grows
/// linearly with the op count. Errors, including Halide's, are reported as
/// MLIR diagnostics; nothing throws or aborts.
mlir::LogicalResult emitHalide(mlir::ModuleOp module, HalideEmitKind kind,
                               llvm::StringRef target,
                               llvm::StringRef outputPath,
                               int segmentOps = kDefaultSegmentOps);

/// The target model of --target `target` (as emitHalide takes it): its
/// family from the Halide target's arch and features, the cache sizes of
/// this machine (sysfs) for `host` and of the family's table otherwise;
/// `l1`, `l2`, `l3` > 0 replace them. An unknown target, or one of no
/// family (a GPU API other than CUDA/OpenCL), is an error at `loc`.
mlir::FailureOr<TargetDesc> describeTarget(mlir::Location loc,
                                           llvm::StringRef target,
                                           int64_t l1 = 0, int64_t l2 = 0,
                                           int64_t l3 = 0);

/// Writes `bytes` to `path` ('-' is stdout) and returns "", or an error
/// naming the path. A directory is an error. A regular file, also one that
/// a symlink names, is replaced by a temporary file renamed over it (a
/// symlink stays and names the new file); a device or FIFO is written in
/// place.
std::string writeOutputFile(llvm::StringRef path, llvm::StringRef bytes);

/// Removes the temporary files and directories of the compiles in
/// progress: for a driver that stops the process from another thread
/// (attnc --timeout, --max-memory). Thread-safe.
void removeTemporaryFiles();

/// The Halide function name of model `model`: `attn_<model>`.
std::string halideFunctionName(llvm::StringRef model);

} // namespace attn

#endif // ATTN_HALIDE_EMIT_H
