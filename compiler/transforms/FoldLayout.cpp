//===- FoldLayout.cpp - layout ops become index maps ----------------------===//
#include "attn/Dialect/AttnOps.h"
#include "attn/Transforms/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace attn {
#define GEN_PASS_DEF_ATTNFOLDLAYOUT
#include "attn/Transforms/Passes.h.inc"
} // namespace attn

using namespace mlir;
using namespace attn;

namespace {

/// split_heads(merge_heads(x)) -> x when the head count matches (the other
/// inverse pairs are folders of the ops themselves).
struct FoldSplitOfMerge : OpRewritePattern<SplitHeadsOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(SplitHeadsOp split,
                                PatternRewriter &rewriter) const override {
    auto merge = split.getX().getDefiningOp<MergeHeadsOp>();
    if (!merge || merge.getX().getType() != split.getType())
      return failure();
    rewriter.replaceOp(split, merge.getX());
    return success();
  }
};

} // namespace

bool attn::isIndexMap(Operation *op) {
  return isa<SplitHeadsOp, MergeHeadsOp, TransposeOp, SplitOp, CastOp,
             ConstantOp, CausalOp, SlidingWindowOp, PaddingOp, TensorMaskOp,
             MaskAndOp, SliceOp, ArangeOp, UnsqueezeOp>(op);
}

namespace {

struct FoldLayoutPass : attn::impl::AttnFoldLayoutBase<FoldLayoutPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateFoldLayoutPatterns(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();
    auto inlined = InlineAttr::get(&getContext());
    getOperation()->walk([&](Operation *op) {
      if (isIndexMap(op))
        op->setAttr("attn.schedule", inlined);
    });
  }
};

} // namespace

void attn::populateFoldLayoutPatterns(RewritePatternSet &patterns) {
  // merge_heads(split_heads(x)) and transpose(transpose(x)) are folders of
  // the ops, which the greedy driver applies as well.
  patterns.add<FoldSplitOfMerge>(patterns.getContext());
}
