//===- FuseAttention.cpp - matmul/softmax/matmul -> attn.attention --------===//
#include "attn/Dialect/AttnOps.h"
#include "attn/Transforms/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace attn {
#define GEN_PASS_DEF_ATTNFUSEATTENTION
#include "attn/Transforms/Passes.h.inc"
} // namespace attn

using namespace mlir;
using namespace attn;

namespace {

/// The scalar value of an `attn.constant`, if `v` is one.
std::optional<double> scalarConstant(Value v) {
  if (auto c = v.getDefiningOp<ConstantOp>())
    return c.getValue().convertToDouble();
  return std::nullopt;
}

/// Rooted at the `@ v` matmul: matmul(softmax(T, mask), v) with
/// T = S' (+ bias), S' = S * c | c * S | S / c | S, S = matmul(q, transpose(k)).
struct FuseAttentionPattern : OpRewritePattern<MatmulOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(MatmulOp pv,
                                PatternRewriter &rewriter) const override {
    auto softmax = pv.getLhs().getDefiningOp<SoftmaxOp>();
    if (!softmax || !softmax->hasOneUse())
      return rewriter.notifyMatchFailure(pv, "lhs is not a single-use softmax");
    Value scores = softmax.getX();

    // Optional bias: the operand of an add that is not the scaled scores.
    Value bias;
    if (auto add = scores.getDefiningOp<AddOp>(); add && add->hasOneUse()) {
      for (auto [s, b] : {std::pair(add.getLhs(), add.getRhs()),
                          std::pair(add.getRhs(), add.getLhs())}) {
        Operation *def = s.getDefiningOp();
        if (def && isa<MatmulOp, MulOp, DivOp>(def) && def->hasOneUse()) {
          scores = s;
          bias = b;
          break;
        }
      }
      if (!bias || add.getType() != scores.getType())
        return rewriter.notifyMatchFailure(pv, "add is not scores + bias");
    }

    // Optional scale by a scalar constant.
    double scale = 1.0;
    if (auto mul = scores.getDefiningOp<MulOp>()) {
      std::optional<double> c = scalarConstant(mul.getRhs());
      Value s = mul.getLhs();
      if (!c) {
        c = scalarConstant(mul.getLhs());
        s = mul.getRhs();
      }
      if (!c || !mul->hasOneUse())
        return rewriter.notifyMatchFailure(pv, "scale is not a constant");
      scale = *c;
      scores = s;
    } else if (auto div = scores.getDefiningOp<DivOp>()) {
      std::optional<double> c = scalarConstant(div.getRhs());
      if (!c || *c == 0.0 || !div->hasOneUse())
        return rewriter.notifyMatchFailure(pv, "divisor is not a constant");
      scale = 1.0 / *c;
      scores = div.getLhs();
    }

    auto qk = scores.getDefiningOp<MatmulOp>();
    if (!qk || !qk->hasOneUse())
      return rewriter.notifyMatchFailure(pv, "scores are not q @ k^T");
    auto kt = qk.getRhs().getDefiningOp<TransposeOp>();
    if (!kt)
      return rewriter.notifyMatchFailure(pv, "rhs of q @ k^T is no transpose");
    Value q = qk.getLhs(), k = kt.getX(), v = pv.getRhs();
    // q @ k^T's own type must already be [B, H, Sq, Sk] (no broadcasting of
    // batch dims beyond what attention does).
    auto qType = cast<RankedTensorType>(q.getType());
    auto kType = cast<RankedTensorType>(k.getType());
    auto vType = cast<RankedTensorType>(v.getType());
    if (qType.getRank() != 4 || kType.getRank() != 4 || vType.getRank() != 4 ||
        qType.getDimSize(1) != kType.getDimSize(1) ||
        kType.getDimSize(1) != vType.getDimSize(1))
      return rewriter.notifyMatchFailure(pv, "q, k, v are not [B, H, S, D]");

    Location loc = rewriter.getFusedLoc(
        {pv.getLoc(), softmax.getLoc(), qk.getLoc()});
    Operation *attention = rewriter.replaceOpWithNewOp<AttentionOp>(
        pv, pv.getType(), q, k, v, softmax.getMask(), bias,
        rewriter.getF64FloatAttr(scale));
    attention->setLoc(loc);
    return success();
  }
};

struct FuseAttentionPass
    : attn::impl::AttnFuseAttentionBase<FuseAttentionPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateFuseAttentionPatterns(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace

void attn::populateFuseAttentionPatterns(RewritePatternSet &patterns) {
  patterns.add<FuseAttentionPattern>(patterns.getContext());
}
