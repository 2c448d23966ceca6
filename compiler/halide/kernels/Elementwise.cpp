//===- Elementwise.cpp - Element-wise ops --------------------------------===//
//
// Constants, casts, unary and binary arithmetic, where, RoPE, reductions,
// embedding gathers and arange: one Func per op, scheduled by the rows
// schedule in Schedule.cpp (scheduleRoot).
//
//===----------------------------------------------------------------------===//
#include "../Lowering.h"

using namespace mlir;
using Halide::TailStrategy;

namespace attn::detail {

Tensor PipelineBuilder::lowerConstant(attn::ConstantOp op) {
  Func f = newFunc(op, opName(op), /*inlined=*/true);
  double v = op.getValue().convertToDouble();
  f() = op.getType().getElementType().isInteger(32) ? Expr((int32_t)v)
                                                    : Expr((float)v);
  return {f, {}};
}


Tensor PipelineBuilder::lowerCast(attn::CastOp op) {
  const Tensor &x = get(op.getInput());
  Halide::Type to = halideType(op.getType().getElementType());
  Func f = newFunc(op, opName(op));
  std::vector<Var> vs = makeVars(x.rank());
  def(f, vs, Halide::cast(to, x.at(asExprs(vs))));
  return {f, x.shape};
}


Tensor PipelineBuilder::lowerBinary(Operation *op, std::function<Expr(Expr, Expr)> fn) {
  const Tensor &a = get(op->getOperand(0));
  const Tensor &b = get(op->getOperand(1));
  std::vector<Expr> shape = broadcastShape(a.shape, b.shape);
  Func f = newFunc(op, opName(op));
  std::vector<Var> vs = makeVars(shape.size());
  std::vector<Expr> idx = asExprs(vs);
  def(f, vs,
      fn(a.at(broadcastIndex(a.shape, idx)), b.at(broadcastIndex(b.shape, idx))));
  return {f, shape};
}


Tensor PipelineBuilder::lowerUnary(Operation *op, std::function<Expr(Expr)> fn) {
  const Tensor &x = get(op->getOperand(0));
  Func f = newFunc(op, opName(op));
  std::vector<Var> vs = makeVars(x.rank());
  def(f, vs, fn(x.at(asExprs(vs))));
  return {f, x.shape};
}


/// where(c, a, b): select(c != 0, a, b), the three shapes broadcast.
Tensor PipelineBuilder::lowerSelect(attn::SelectOp op) {
  const Tensor &c = get(op.getCond());
  const Tensor &a = get(op.getLhs());
  const Tensor &b = get(op.getRhs());
  std::vector<Expr> shape = broadcastShape(c.shape, broadcastShape(a.shape, b.shape));
  Func f = newFunc(op, opName(op));
  std::vector<Var> vs = makeVars(shape.size());
  std::vector<Expr> idx = asExprs(vs);
  def(f, vs,
      Halide::select(c.at(broadcastIndex(c.shape, idx)) != 0,
                     a.at(broadcastIndex(a.shape, idx)),
                     b.at(broadcastIndex(b.shape, idx))));
  return {f, shape};
}


/// Rotates pairs (i, i + D/2) (or (2i, 2i+1) when interleaved) by the angle
/// pos * theta^(-2i/D). The cos/sin tables are computed in double.
Tensor PipelineBuilder::lowerRope(attn::RopeOp op) {
  const Tensor &x = get(op.getX());
  const Tensor &pos = get(op.getPositions());
  std::string name = opName(op);
  Expr dim = x.shape[3];
  Expr half = simplified(dim / 2);
  double theta = op.getTheta().convertToDouble();

  // Tables over (pos dims..., i), i < D/2.
  std::vector<Var> ts = makeVars(pos.rank() + 1);
  std::vector<Expr> posIdx(ts.begin(), ts.end() - 1);
  Expr ti = ts.back();
  Expr angle = Halide::cast<double>(pos.at(posIdx)) *
               Halide::pow(Expr(theta), Expr(-2.0) * Halide::cast<double>(ti) /
                                            Halide::cast<double>(dim));
  Func cosT = newFunc(op, name + "_cos");
  Func sinT = newFunc(op, name + "_sin");
  def(cosT, ts, Halide::cast<float>(Halide::cos(angle)));
  def(sinT, ts, Halide::cast<float>(Halide::sin(angle)));

  std::vector<Var> vs = makeVars(4);
  Expr b = vs[0], s = vs[2], d = vs[3];
  Expr i, partner, sign;
  if (op.getInterleaved()) {
    Expr even = d % 2 == 0;
    i = d / 2;
    partner = Halide::select(even, d + 1, d - 1);
    sign = Halide::select(even, -1.0f, 1.0f);
  } else {
    Expr low = d < half;
    i = Halide::select(low, d, d - half);
    partner = Halide::select(low, d + half, d - half);
    sign = Halide::select(low, -1.0f, 1.0f);
  }
  i = Halide::clamp(i, 0, half - 1);
  partner = Halide::clamp(partner, 0, dim - 1);
  std::vector<Expr> tableIdx =
      pos.rank() == 1 ? std::vector<Expr>{s} : std::vector<Expr>{b, s};
  tableIdx.push_back(i);
  std::vector<Expr> idx = asExprs(vs), pidx = asExprs(vs);
  pidx[3] = partner;

  Func f = newFunc(op, name);
  def(f, vs,
      x.at(idx) * cosT(reversed(tableIdx)) +
          sign * x.at(pidx) * sinT(reversed(tableIdx)));
  return {f, x.shape};
}


/// result[rest] = reduce_{r < n} x[rest with r at dim]; mean = sum / n.
Tensor PipelineBuilder::lowerReduce(attn::ReduceOp op) {
  const Tensor &x = get(op.getX());
  int64_t dim = op.getDim();
  bool keep = op.getKeepdim();
  std::string name = opName(op);
  std::vector<Expr> shape = x.shape;
  Expr n = shape[dim];
  if (keep)
    shape[dim] = 1;
  else
    shape.erase(shape.begin() + dim);
  std::vector<Var> vs = makeVars(shape.size());
  RDom r(0, n, "k");
  std::vector<Expr> xi = asExprs(vs);
  if (keep)
    xi[dim] = r;
  else
    xi.insert(xi.begin() + dim, r);
  Halide::Type t = x.func.output_types()[0];
  attn::ReduceKind kind = op.getKind();
  bool isSum = kind == attn::ReduceKind::sum || kind == attn::ReduceKind::mean;
  Func acc = newFunc(op, isSum ? name + "_sum" : name);
  if (isSum) {
    def(acc, vs, Halide::cast(t, 0));
    defAdd(acc, vs, x.at(xi));
  } else {
    bool isMax = kind == attn::ReduceKind::max;
    def(acc, vs, isMax ? t.min() : t.max());
    std::vector<Expr> at = reversed(asExprs(vs));
    acc(at) = isMax ? Halide::max(acc(at), x.at(xi))
                    : Halide::min(acc(at), x.at(xi));
  }
  if (!isSum || kind == attn::ReduceKind::sum)
    return {acc, shape};
  Func mean = newFunc(op, name);
  def(mean, vs, acc(reversed(asExprs(vs))) / Halide::cast<float>(n));
  return {mean, shape};
}


/// result[..., d] = table[ids[...], d]. The ids' smallest and largest
/// values are checked against [0, V) once (a require that fails the call
/// with a message naming the ids); the gather clamps, so it never reads out
/// of bounds. The check's value (0) is added to the result, not to the row:
/// added to an index, the call and its require vanished from the lowered
/// stmt and bad ids ran unchecked. On GPU targets the check runs on the host (role Role::Host),
/// since kernels cannot fail a require.
Tensor PipelineBuilder::lowerEmbedding(attn::EmbeddingOp op) {
  const Tensor &table = get(op.getTable());
  const Tensor &ids = get(op.getIds());
  std::string name = opName(op);
  Expr V = table.shape[0];

  Var c("c");
  Func range = newFunc(op, name + "_idrange", false, Role::Host);
  range(c) = Halide::select(c == 0, Halide::Int(32).max(),
                            Halide::Int(32).min());
  if (ids.rank()) {
    std::vector<Halide::Range> ranges; // innermost first
    for (size_t k = ids.rank(); k-- > 0;)
      ranges.push_back({0, ids.shape[k]});
    RDom every(ranges, "id");
    std::vector<Expr> all;
    for (size_t k = 0; k < ids.rank(); ++k)
      all.push_back(every[ids.rank() - 1 - k]);
    Expr id = ids.at(all);
    range(0) = Halide::min(range(0), id);
    range(1) = Halide::max(range(1), id);
  } else {
    range(0) = ids.at({});
    range(1) = ids.at({});
  }
  Func check = newFunc(op, name + "_idcheck", false, Role::Host);
  check(c) = Halide::require(
      range(0) >= 0 && range(1) < V, 0, "embedding:",
      op.getIdsName().str(), "holds ids outside [0,", V, "): smallest",
      range(0), "largest", range(1));

  std::vector<Expr> shape = ids.shape;
  shape.push_back(table.shape[1]);
  std::vector<Var> vs = makeVars(shape.size());
  std::vector<Expr> lead(vs.begin(), vs.end() - 1);
  Expr row = Halide::clamp(ids.at(lead), 0, V - 1);
  Func f = newFunc(op, name);
  def(f, vs,
      Halide::cast<float>(table.at({row, vs.back()})) +
          Halide::cast<float>(check(0)));
  return {f, shape};
}


Tensor PipelineBuilder::lowerArange(attn::ArangeOp op) {
  Expr n = op.getSym() ? symbolExtent(*op.getSym())
                       : Expr((int)op.getSize().value_or(0));
  Func f = newFunc(op, opName(op));
  Var i("d0");
  f(i) = i;
  return {f, {n}};
}

} // namespace attn::detail
