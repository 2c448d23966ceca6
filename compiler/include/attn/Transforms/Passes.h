//===- Passes.h - Fusion and scheduling passes over attn IR -----*- C++ -*-===//
#ifndef ATTN_TRANSFORMS_PASSES_H
#define ATTN_TRANSFORMS_PASSES_H

#include "attn/Transforms/TargetDesc.h"
#include "attn/Dialect/AttnDialect.h"

#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassRegistry.h"

#include <memory>
#include <string>

namespace mlir {
class RewritePatternSet;
} // namespace mlir

namespace attn {

#define GEN_PASS_DECL
#include "attn/Transforms/Passes.h.inc"

void populateFuseAttentionPatterns(mlir::RewritePatternSet &patterns);
void populateFuseEpiloguePatterns(mlir::RewritePatternSet &patterns);
void populateFoldLayoutPatterns(mlir::RewritePatternSet &patterns);

/// The name of an op in schedules and generated code: the DSL binding that
/// names it (if any), the op mnemonic and its DSL line, e.g.
/// `q_split_heads_L17` or `linear_L9`. Not unique by itself.
std::string opDisplayName(mlir::Operation *op);

/// True for ops that only re-index (or re-type) their operand, and for masks,
/// constants and index ranges: they never need a buffer of their own
/// (attn-fold-layout and attn-schedule mark them #attn.inline).
bool isIndexMap(mlir::Operation *op);

/// Adds the fusion passes (attn IR as written -> fused).
void buildFusionPipeline(mlir::OpPassManager &pm);
/// Adds fusion (unless `fuse` is false: GPU targets), then scheduling for
/// `target` with `overrides`.
void buildScheduledPipeline(mlir::OpPassManager &pm, const TargetDesc &target,
                            llvm::ArrayRef<std::string> overrides,
                            bool fuse = true);

#define GEN_PASS_REGISTRATION
#include "attn/Transforms/Passes.h.inc"

/// Registers the passes and the named pipelines `attn-fuse` and
/// `attn-fuse-and-schedule`.
void registerAttnPipelines();

} // namespace attn

#endif // ATTN_TRANSFORMS_PASSES_H
