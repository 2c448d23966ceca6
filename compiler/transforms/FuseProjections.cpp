//===- FuseProjections.cpp - linears of one input -> attn.multi_linear ----===//
#include "attn/Dialect/AttnOps.h"
#include "attn/Transforms/Passes.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/MapVector.h"

namespace attn {
#define GEN_PASS_DEF_ATTNFUSEPROJECTIONS
#include "attn/Transforms/Passes.h.inc"
} // namespace attn

using namespace mlir;
using namespace attn;

namespace {

/// True if `v` is available right before `op` (same block or an enclosing
/// region's argument/op).
bool availableBefore(Value v, Operation *op) {
  Operation *def = v.getDefiningOp();
  if (!def)
    return true; // a block argument of an enclosing block
  return def->getBlock() != op->getBlock() || def->isBeforeInBlock(op);
}

struct FuseProjectionsPass
    : attn::impl::AttnFuseProjectionsBase<FuseProjectionsPass> {
  void runOnOperation() override {
    // Group plain projections with a static output width by (input, block,
    // has bias).
    using Key = std::tuple<Value, Block *, unsigned>;
    llvm::MapVector<Key, SmallVector<LinearOp>> groups;
    getOperation()->walk([&](LinearOp op) {
      if (ShapedType::isDynamic(op.getWeight().getType().getDimSize(0)))
        return;
      Key key{op.getX(), op->getBlock(), op.getBias() ? 1u : 0u};
      groups[key].push_back(op);
    });

    for (auto &[key, ops] : groups) {
      if (ops.size() < 2)
        continue;
      LinearOp first = ops.front(); // walk order is program order
      SmallVector<Value> weights, biases;
      bool available = true;
      for (LinearOp op : ops) {
        weights.push_back(op.getWeight());
        if (op.getBias())
          biases.push_back(op.getBias());
        available &= availableBefore(op.getWeight(), first) &&
                     (!op.getBias() || availableBefore(op.getBias(), first));
      }
      if (!available)
        continue;
      OpBuilder b(first);
      SmallVector<Location> locs;
      for (LinearOp op : ops)
        locs.push_back(op.getLoc());
      auto fused = MultiLinearOp::create(b, b.getFusedLoc(locs), first.getX(),
                                         weights, biases);
      for (auto [op, result] : llvm::zip(ops, fused.getResults())) {
        op.getResult().replaceAllUsesWith(result);
        op.erase();
      }
    }
  }
};

} // namespace
