//===- Norm.cpp - layer_norm, rms_norm, pooling --------------------------===//
//
// Row norms (NormKernel: the row statistics and the normalised result) and
// their schedule (#attn.rows_schedule), mean pooling and l2_normalize.
//
//===----------------------------------------------------------------------===//
#include "../Lowering.h"

using namespace mlir;
using Halide::TailStrategy;

namespace attn::detail {

/// layer_norm: (x - mean) / sqrt(var + eps) * g + b (biased variance);
/// rms_norm: x / sqrt(mean(x^2) + eps) * g. Both over the last dim.
Tensor PipelineBuilder::lowerNorm(Operation *op) {
  auto ln = dyn_cast<attn::LayerNormOp>(op);
  auto rms = dyn_cast<attn::RmsNormOp>(op);
  const Tensor &x = get(op->getOperand(0));
  const Tensor &g = get(op->getOperand(1));
  float eps = (float)(ln ? ln.getEps() : rms.getEps()).convertToDouble();
  std::string name = opName(op);

  std::vector<Var> vs = makeVars(x.rank());
  std::vector<Var> rows(vs.begin(), vs.end() - 1);
  std::vector<Expr> rowIdx = reversed(asExprs(rows));
  RDom r(0, x.shape.back(), "e");
  std::vector<Expr> rowR(rows.begin(), rows.end());
  rowR.push_back(r);
  Expr width = Halide::cast<float>(x.shape.back());

  NormKernel k{op, Func(), {}, r};
  Expr centre = 0.0f; // mean for layer_norm, 0 for rms_norm
  if (ln) {
    Func mean = newFunc(op, name + "_mean", /*inlined=*/false, Role::NormStat);
    def(mean, rows, 0.0f);
    defAdd(mean, rows, x.at(rowR) / width);
    centre = mean(rowIdx);
    k.stats.push_back(mean);
  }
  Func sq =
      newFunc(op, name + (ln ? "_var" : "_ms"), /*inlined=*/false, Role::NormStat);
  def(sq, rows, 0.0f);
  Expr centred = x.at(rowR) - centre; // two-pass variance
  defAdd(sq, rows, centred * centred / width);
  k.stats.push_back(sq);

  Func f = newFunc(op, name, /*inlined=*/false, Role::Norm);
  std::vector<Expr> idx = asExprs(vs);
  // Times the row's 1 / sqrt (loop invariant along the row), not a division
  // per element.
  Expr y = (x.at(idx) - centre) * (1.0f / Halide::sqrt(sq(rowIdx) + eps)) *
           g.at({vs.back()});
  if (ln)
    y = y + get(ln.getBeta()).at({vs.back()});
  def(f, vs, y);
  k.out = f;
  out.norms.push_back(k);
  return {f, x.shape};
}


/// result[b, rest] = sum_{s < min(len_b, S)} x[b, s, rest] / min(len_b, S),
/// and 0 for len_b <= 0.
Tensor PipelineBuilder::lowerMeanPool(attn::MeanPoolOp op) {
  const Tensor &x = get(op.getX());
  const Tensor &len = get(op.getLengths());
  std::string name = opName(op);
  std::vector<Expr> shape = x.shape;
  Expr S = shape[1];
  shape.erase(shape.begin() + 1);
  std::vector<Var> vs = makeVars(shape.size());
  RDom r(0, S, "s");
  std::vector<Expr> xi = asExprs(vs);
  xi.insert(xi.begin() + 1, r);
  Expr n = Halide::clamp(len.at({vs[0]}), 0, S);
  Func sum = newFunc(op, name + "_sum");
  def(sum, vs, 0.0f);
  defAdd(sum, vs, Halide::select(r < n, x.at(xi), 0.0f));
  Func f = newFunc(op, name);
  def(f, vs,
      Halide::select(n > 0,
                     sum(reversed(asExprs(vs))) /
                         Halide::cast<float>(Halide::max(n, 1)),
                     0.0f));
  return {f, shape};
}


/// x / max(sqrt(sum_k x[..., k]^2), eps).
Tensor PipelineBuilder::lowerL2Normalize(attn::L2NormalizeOp op) {
  const Tensor &x = get(op.getX());
  std::string name = opName(op);
  std::vector<Var> vs = makeVars(x.rank());
  std::vector<Var> rows(vs.begin(), vs.end() - 1);
  RDom r(0, x.shape.back(), "e");
  std::vector<Expr> xr(rows.begin(), rows.end());
  xr.push_back(r);
  Func sq = newFunc(op, name + "_sq");
  def(sq, rows, 0.0f);
  defAdd(sq, rows, x.at(xr) * x.at(xr));
  float eps = (float)op.getEps().convertToDouble();
  Func f = newFunc(op, name);
  def(f, vs,
      x.at(asExprs(vs)) /
          Halide::max(Halide::sqrt(sq(reversed(asExprs(rows)))), eps));
  return {f, x.shape};
}


/// A norm (layer_norm, rms_norm) over the last dim: its rows in blocks of
/// the schedule's `rows` (parallel), and each block's statistics (mean,
/// variance) computed right before the block is normalised, so that its
/// rows are read from L1 by the second and third pass. A statistic sums
/// along the row in vectors (rfactor: V partial sums, added at the end)
/// instead of vectorising across rows, which would gather.
void scheduleNorm(NormKernel &n, attn::RowsScheduleAttr s) {
  using Halide::RVar;
  Func f = n.out;
  int V = (int)s.getVector();
  int rows = (int)s.getRows();
  bool parallel = s.getParallel();
  std::vector<Var> args = f.args(); // the row's dim, then the row dims
  f.compute_root().vectorize(args[0], V, TailStrategy::GuardWithIf);
  Halide::LoopLevel at = Halide::LoopLevel::root();
  if (args.size() > 1) {
    Var rb("rb"), ri("ri");
    f.split(args[1], rb, ri, rows, TailStrategy::GuardWithIf);
    Var outer = rb;
    for (size_t k = 2; k < args.size(); ++k) {
      Var fused(outer.name() + "_" + args[k].name());
      f.fuse(outer, args[k], fused);
      outer = fused;
    }
    if (parallel)
      f.parallel(outer);
    at = Halide::LoopLevel(f, outer);
  }
  for (Func st : n.stats) {
    st.compute_at(at);
    if (args.size() > 1) // a block's rows: a constant size, on the stack
      st.bound_storage(st.args()[0], rows);
    if (V <= 1)
      continue;
    RVar ro("ro"), rv("rv");
    Var u("u");
    Func part = st.update().split(n.r.x, ro, rv, V).rfactor(rv, u);
    // rfactor puts u outermost: store the V partial sums of a row together.
    std::vector<Var> storage = {u};
    for (const Var &v : part.args())
      if (v.name() != u.name())
        storage.push_back(v);
    part.compute_at(at).reorder_storage(storage).vectorize(u);
    part.update().vectorize(u);
    if (args.size() > 1)
      part.bound_storage(st.args()[0], rows);
  }
}

} // namespace attn::detail
