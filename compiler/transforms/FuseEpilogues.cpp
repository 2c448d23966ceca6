//===- FuseEpilogues.cpp - bias/activation/residual into the GEMM ---------===//
#include "attn/Dialect/AttnOps.h"
#include "attn/Transforms/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace attn {
#define GEN_PASS_DEF_ATTNFUSEEPILOGUES
#include "attn/Transforms/Passes.h.inc"
} // namespace attn

using namespace mlir;
using namespace attn;

namespace {

/// linear(x, w) + b -> linear(x, w, b) for a bias of shape [out].
struct FoldBiasAdd : OpRewritePattern<AddOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(AddOp add,
                                PatternRewriter &rewriter) const override {
    for (auto [l, b] : {std::pair(add.getLhs(), add.getRhs()),
                        std::pair(add.getRhs(), add.getLhs())}) {
      auto linear = l.getDefiningOp<LinearOp>();
      if (!linear || linear.getBias() || !linear->hasOneUse())
        continue;
      auto bType = cast<RankedTensorType>(b.getType());
      auto wType = linear.getWeight().getType();
      if (bType.getRank() != 1 || bType.getDimSize(0) != wType.getDimSize(0) ||
          ShapedType::isDynamic(bType.getDimSize(0)) ||
          add.getType() != linear.getType())
        continue;
      Location loc = rewriter.getFusedLoc({linear.getLoc(), add.getLoc()});
      rewriter.replaceOpWithNewOp<LinearOp>(add, linear.getX(),
                                            linear.getWeight(), b)
          ->setLoc(loc);
      return success();
    }
    return rewriter.notifyMatchFailure(add, "not linear(x, w) + bias");
  }
};

/// The activation an element-wise op computes, if it is one.
std::optional<Activation> activationOf(Operation *op) {
  if (isa<GeluOp>(op))
    return Activation::gelu;
  if (isa<GeluTanhOp>(op))
    return Activation::gelu_tanh;
  if (isa<SiluOp>(op))
    return Activation::silu;
  if (isa<ReluOp>(op))
    return Activation::relu;
  return std::nullopt;
}

/// act(linear(...)) -> fused_linear(..., activation = act).
struct FoldActivation : RewritePattern {
  FoldActivation(MLIRContext *ctx)
      : RewritePattern(MatchAnyOpTypeTag(), /*benefit=*/1, ctx) {}
  LogicalResult matchAndRewrite(Operation *op,
                                PatternRewriter &rewriter) const override {
    std::optional<Activation> act = activationOf(op);
    if (!act)
      return failure();
    Operation *producer = op->getOperand(0).getDefiningOp();
    if (!producer || !producer->hasOneUse())
      return failure();
    Location loc = rewriter.getFusedLoc({producer->getLoc(), op->getLoc()});
    if (auto linear = dyn_cast<LinearOp>(producer)) {
      rewriter
          .replaceOpWithNewOp<FusedLinearOp>(op, linear.getType(), linear.getX(),
                                             linear.getWeight(),
                                             linear.getBias(), Value(), *act)
          ->setLoc(loc);
      return success();
    }
    auto fused = dyn_cast<FusedLinearOp>(producer);
    if (!fused || fused.getResidual() ||
        fused.getActivation() != Activation::none)
      return failure();
    rewriter.modifyOpInPlace(fused, [&] {
      fused.setActivation(*act);
      fused->setLoc(loc);
    });
    rewriter.replaceOp(op, fused.getResult());
    return success();
  }
};

/// linear(...) + r / fused_linear(...) + r -> fused_linear(..., residual = r).
struct FoldResidual : OpRewritePattern<AddOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(AddOp add,
                                PatternRewriter &rewriter) const override {
    for (auto [l, r] : {std::pair(add.getLhs(), add.getRhs()),
                        std::pair(add.getRhs(), add.getLhs())}) {
      Operation *producer = l.getDefiningOp();
      if (!producer || !producer->hasOneUse() || r.getType() != add.getType() ||
          l.getType() != add.getType())
        continue;
      Location loc = rewriter.getFusedLoc({producer->getLoc(), add.getLoc()});
      if (auto linear = dyn_cast<LinearOp>(producer)) {
        rewriter
            .replaceOpWithNewOp<FusedLinearOp>(
                add, add.getType(), linear.getX(), linear.getWeight(),
                linear.getBias(), r, Activation::none)
            ->setLoc(loc);
        return success();
      }
      if (auto fused = dyn_cast<FusedLinearOp>(producer);
          fused && !fused.getResidual()) {
        rewriter
            .replaceOpWithNewOp<FusedLinearOp>(
                add, add.getType(), fused.getX(), fused.getWeight(),
                fused.getBias(), r, fused.getActivation())
            ->setLoc(loc);
        return success();
      }
    }
    return rewriter.notifyMatchFailure(add, "no projection to fold into");
  }
};

struct FuseEpiloguesPass
    : attn::impl::AttnFuseEpiloguesBase<FuseEpiloguesPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateFuseEpiloguePatterns(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace

void attn::populateFuseEpiloguePatterns(RewritePatternSet &patterns) {
  // Bias first (benefit 2), so that act(linear(x, w) + b) fuses completely.
  patterns.add<FoldBiasAdd>(patterns.getContext(), /*benefit=*/2);
  patterns.add<FoldActivation, FoldResidual>(patterns.getContext());
}
