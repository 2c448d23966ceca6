//===- Layout.cpp - Index maps -------------------------------------------===//
//
// transpose, split_heads, merge_heads, split, concat and slice: Funcs that
// only re-index their operand; attn-fold-layout marks them #attn.inline, so
// each consumer reads through them.
//
//===----------------------------------------------------------------------===//
#include "../Lowering.h"

using namespace mlir;
using Halide::TailStrategy;

namespace attn::detail {

/// The pure index maps: each result element reads one input element.
Tensor PipelineBuilder::lowerLayout(Operation *op) {
  const Tensor &x = get(op->getOperand(0));
  std::vector<Expr> shape;
  std::function<std::vector<Expr>(const std::vector<Expr> &)> source;
  if (isa<attn::TransposeOp>(op)) {
    // [..., M, N] -> [..., N, M]
    shape = x.shape;
    std::swap(shape[shape.size() - 1], shape[shape.size() - 2]);
    source = [](std::vector<Expr> i) {
      std::swap(i[i.size() - 1], i[i.size() - 2]);
      return i;
    };
  } else if (auto split = dyn_cast<attn::SplitHeadsOp>(op)) {
    // [B, S, H*D] -> [B, H, S, D]: (b, h, s, d) reads (b, s, h*D + d)
    Expr heads = (int)split.getHeads();
    Expr d = simplified(x.shape[2] / heads);
    shape = {x.shape[0], heads, x.shape[1], d};
    source = [d](const std::vector<Expr> &i) {
      return std::vector<Expr>{i[0], i[2], i[1] * d + i[3]};
    };
  } else {
    // merge_heads [B, H, S, D] -> [B, S, H*D]: (b, s, c) reads
    // (b, c / D, s, c % D)
    Expr d = x.shape[3];
    shape = {x.shape[0], x.shape[2], simplified(x.shape[1] * d)};
    source = [d](const std::vector<Expr> &i) {
      return std::vector<Expr>{i[0], i[2] / d, i[1], i[2] % d};
    };
  }
  Func f = newFunc(op, opName(op));
  std::vector<Var> vs = makeVars(shape.size());
  def(f, vs, x.at(source(asExprs(vs))));
  return {f, shape};
}


/// part p of [..., n*E] reads columns p*E .. p*E + E-1.
LogicalResult PipelineBuilder::lowerSplit(attn::SplitOp op) {
  const Tensor &x = get(op.getX());
  Expr e = simplified(x.shape.back() / (int)op.getParts());
  std::string base = opName(op);
  for (unsigned p = 0; p < op.getNumResults(); ++p) {
    Func f = newFunc(op, base + "_" + std::to_string(p));
    std::vector<Var> vs = makeVars(x.rank());
    std::vector<Expr> idx = asExprs(vs);
    idx.back() = idx.back() + e * (int)p;
    def(f, vs, x.at(idx));
    std::vector<Expr> shape = x.shape;
    shape.back() = e;
    tensors[op.getResult(p)] = {f, shape};
  }
  return success();
}


Tensor PipelineBuilder::lowerConcat(attn::ConcatOp op) {
  const Tensor &a = get(op.getLhs());
  const Tensor &b = get(op.getRhs());
  size_t axis = op.getAxis();
  std::vector<Expr> shape = a.shape;
  shape[axis] = simplified(a.shape[axis] + b.shape[axis]);

  Func f = newFunc(op, opName(op));
  std::vector<Var> vs = makeVars(shape.size());
  std::vector<Expr> ai = asExprs(vs), bi = asExprs(vs);
  Expr c = vs[axis];
  // Clamped so that bounds inference stays inside each operand.
  ai[axis] = Halide::clamp(c, 0, a.shape[axis] - 1);
  bi[axis] = Halide::clamp(c - a.shape[axis], 0, b.shape[axis] - 1);
  def(f, vs, Halide::select(c < a.shape[axis], a.at(ai), b.at(bi)));
  return {f, shape};
}


/// x[..., start:stop, ...] on `dim`, or x[..., start, ...] with the dim
/// dropped; a negative position counts from the end.
Tensor PipelineBuilder::lowerSlice(attn::SliceOp op) {
  const Tensor &x = get(op.getX());
  int64_t dim = op.getDim();
  Expr n = x.shape[dim];
  // I64Attr reads back as uint64_t: take the signed value.
  auto position = [&](uint64_t attr) {
    int64_t v = static_cast<int64_t>(attr);
    return v < 0 ? simplified(n + (int)v) : Expr((int)v);
  };
  Expr start = position(op.getStart());
  std::vector<Expr> shape = x.shape;
  if (op.getDrop())
    shape.erase(shape.begin() + dim);
  else if (op.getStopSym())
    shape[dim] = symbolExtent(*op.getStopSym());
  else
    shape[dim] =
        simplified((op.getStop() ? position(*op.getStop()) : n) - start);
  std::vector<Var> vs = makeVars(shape.size());
  std::vector<Expr> xi = asExprs(vs);
  if (op.getDrop())
    xi.insert(xi.begin() + dim, start);
  else
    xi[dim] = xi[dim] + start;
  Func f = newFunc(op, opName(op));
  def(f, vs, x.at(xi));
  return {f, shape};
}

} // namespace attn::detail
