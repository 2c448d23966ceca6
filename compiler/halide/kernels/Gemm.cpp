//===- Gemm.cpp - Projections and matmul ---------------------------------===//
//
// linear, fused_linear (bias, activation, residual epilogues), multi_linear
// and matmul: the algorithm (GemmKernel: packed weights, accumulator,
// epilogue, and the dot products for few rows) and its schedule
// (#attn.gemm_schedule).
//
//===----------------------------------------------------------------------===//
#include "../Lowering.h"

using namespace mlir;
using Halide::TailStrategy;

namespace attn::detail {

namespace {

/// The operands of a projection (linear, fused_linear, multi_linear) as
/// one GEMM: its weights, their widths N_p and offsets o_p in the fused
/// output, biases, residual and activation.
struct Projection {
  SmallVector<Value> weights, biases;
  Value residual;
  attn::Activation act = attn::Activation::none;
  std::vector<Expr> widths, offsets = {Expr(0)};

  explicit Projection(Operation *op, PipelineBuilder &pb) {
    if (auto l = dyn_cast<attn::LinearOp>(op)) {
      weights.push_back(l.getWeight());
      if (l.getBias())
        biases.push_back(l.getBias());
    } else if (auto f = dyn_cast<attn::FusedLinearOp>(op)) {
      weights.push_back(f.getWeight());
      if (f.getBias())
        biases.push_back(f.getBias());
      residual = f.getResidual();
      act = f.getActivation();
    } else {
      auto m = cast<attn::MultiLinearOp>(op);
      weights.append(m.getWeights().begin(), m.getWeights().end());
      biases.append(m.getBiases().begin(), m.getBiases().end());
    }
    for (Value w : weights) {
      widths.push_back(pb.get(w).shape[0]);
      offsets.push_back(simplified(offsets.back() + widths.back()));
    }
  }
  int count() const { return (int)weights.size(); }

  /// Projection p's element of `values` at [n - o_p, rest...] for the p
  /// that n falls in (clamped so that bounds inference stays inside every
  /// operand).
  Expr pick(PipelineBuilder &pb, ArrayRef<Value> values, Expr n,
            std::vector<Expr> rest) const {
    auto at = [&](int p) {
      std::vector<Expr> idx = {Halide::clamp(n - offsets[p], 0, widths[p] - 1)};
      idx.insert(idx.end(), rest.begin(), rest.end());
      return pb.get(values[p]).at(idx);
    };
    Expr e = at(count() - 1);
    for (int p = count() - 2; p >= 0; --p)
      e = Halide::select(n < offsets[p + 1], at(p), e);
    return e;
  }
};

} // namespace

/// The packed weights wt(n, k) of `proj` into g.wt. Several weights whose
/// offsets are multiples of V (the schedule's vector width): the pack is
/// wt3(ni, nb, k) with n = nb * V + ni, one update per weight over the
/// vectors nb it owns, so that choosing the weight is one scalar branch per
/// vector of V outputs. (A select would gather every weight's elements and
/// keep one.) The pure step is undef. Returns the Func that reads it as
/// wt(n, k).
static Func packWeights(PipelineBuilder &pb, const Projection &proj,
                        Operation *op, const std::string &name, Expr K, int V,
                        GemmKernel &g) {
  Var n("n"), k("k");
  g.wt = pb.newFunc(op, name + "_wt", /*inlined=*/false, Role::GemmPack);
  bool perWeight = proj.count() > 1 && V > 1;
  for (const Expr &o : proj.offsets)
    perWeight = perWeight && Halide::Internal::as_const_int(o) &&
                *Halide::Internal::as_const_int(o) % V == 0;
  if (!perWeight) {
    g.wt(n, k) = proj.pick(pb, proj.weights, n, {k});
    return g.wt;
  }
  Var ni("ni"), nb("nb");
  Halide::Type wtype = halideType(
      cast<RankedTensorType>(proj.weights[0].getType()).getElementType());
  g.wt(ni, nb, k) = Halide::undef(wtype);
  for (int p = 0; p < proj.count(); ++p) {
    RDom pk(0, K, "pk" + std::to_string(p));
    g.packK.push_back(pk);
    pk.where(nb >= simplified(proj.offsets[p] / V));
    pk.where(nb < simplified(proj.offsets[p + 1] / V));
    g.wt(ni, nb, pk) = pb.get(proj.weights[p]).at(
        {Halide::clamp(nb * V + ni - proj.offsets[p], 0, proj.widths[p] - 1),
         pk});
  }
  g.packLanes = V;
  Func wt(name + "_wtn");
  wt(n, k) = g.wt(n % V, n / V, k);
  return wt;
}

/// Dot products for fewer rows in all than `dotRows` (g.useDot): per weight
/// p, V lanes of partial sums over k (g.parts[p]), then their sum and the
/// tail of K % V (g.dots[p]); the result picks weight p's for n in its
/// range (clamped, as in `pick`). One weight's dot products read it once.
/// `vs` are y's Vars (MLIR order, n last).
static Expr dotProducts(PipelineBuilder &pb, const Projection &proj,
                        Operation *op, const std::string &name,
                        const Tensor &x, const std::vector<Var> &vs,
                        int64_t dotRows, int V, GemmKernel &g) {
  Var n = vs.back();
  Expr K = x.shape.back(), rows = 1;
  for (size_t d = 0; d + 1 < x.rank(); ++d)
    rows = rows * x.shape[d];
  g.useDot = simplified(rows) < (int)dotRows;
  std::vector<Expr> hv = reversed(asExprs(vs)); // n, rows innermost first
  std::vector<Expr> rowArgs(hv.begin() + 1, hv.end());
  Var l("l");
  RDom kt(K / V * V, K % V, "kt");
  g.dotK = RDom(0, K / V, "ko");
  RDom ko = g.dotK;
  auto xAt = [&](Expr kk) {
    std::vector<Expr> i(vs.begin(), vs.end() - 1);
    i.push_back(kk);
    return x.at(i);
  };
  Expr dot;
  for (int p = 0; p < proj.count(); ++p) {
    const Tensor &w = pb.get(proj.weights[p]);
    std::string pre = name + (proj.count() > 1 ? "_" + std::to_string(p) : "");
    Func part = pb.newFunc(op, pre + "_part", /*inlined=*/false, Role::GemmDot);
    std::vector<Expr> at = {l, n};
    at.insert(at.end(), rowArgs.begin(), rowArgs.end());
    part(at) = 0.0f;
    part(at) += xAt(ko * V + l) * w.at({n, ko * V + l});
    Func sum = pb.newFunc(op, pre + "_dot", /*inlined=*/false, Role::GemmDot);
    std::vector<Expr> ni = {n};
    ni.insert(ni.end(), rowArgs.begin(), rowArgs.end());
    Expr lanes = 0.0f;
    for (int i = 0; i < V; ++i) {
      at[0] = i;
      lanes = lanes + part(at);
    }
    sum(ni) = lanes;
    if (!Halide::Internal::is_const_zero(simplified(K % V)))
      sum(ni) += xAt(kt) * w.at({n, kt});
    ni[0] = Halide::clamp(n - proj.offsets[p], 0, proj.widths[p] - 1);
    dot = p == 0 ? sum(ni) : Halide::select(n < proj.offsets[p], dot, sum(ni));
    g.parts.push_back(part);
    g.dots.push_back(sum);
  }
  return dot;
}

/// linear, fused_linear and multi_linear, as one GEMM over the rows of x:
///   wt[k, n]    = w_p[n - o_p, k]   for o_p <= n < o_p + N_p (packed
///                                   n-innermost per block)
///   acc[..., n] = sum_k x[..., k] * wt[k, n]
///   y[..., n]   = act(acc[..., n] + b_p[n - o_p]) + residual[..., n]
/// multi_linear's P projections (output widths N_p, offsets o_p) are one
/// GEMM of sum N_p outputs, so every tile of x is read once for all of them;
/// result p is the index map y[..., o_p + n]. Fewer rows than the
/// schedule's `dot` take dot products instead (dotProducts).
LogicalResult PipelineBuilder::lowerProjection(Operation *op) {
  Projection proj(op, *this);
  const Tensor &x = get(op->getOperand(0));
  std::vector<Expr> shape(x.shape.begin(), x.shape.end() - 1);
  shape.push_back(proj.offsets.back());
  std::string name = opName(op);
  auto sched = op->getAttrOfType<attn::GemmScheduleAttr>("attn.schedule");
  int V = sched ? (int)sched.getVector() : 1;
  GemmKernel g;
  g.op = op;
  Func wt = packWeights(*this, proj, op, name, x.shape.back(), V, g);

  std::vector<Var> vs = makeVars(shape.size());
  Var n("n");
  vs.back() = n;
  g.acc = newFunc(op, name + "_acc", /*inlined=*/false, Role::GemmAcc);
  def(g.acc, vs, 0.0f);
  g.k = RDom(0, x.shape.back(), "rk");
  std::vector<Expr> xi(vs.begin(), vs.end() - 1);
  if (!xi.empty()) // rows past the end are computed by rounded-up tiles
    xi.back() = Halide::min(xi.back(), x.shape[x.rank() - 2] - 1);
  xi.push_back(g.k);
  defAdd(g.acc, vs, x.at(xi) * wt(n, g.k));

  Expr e = g.acc(reversed(asExprs(vs)));
  int64_t dotRows = sched ? sched.getDot() : 0;
  if (dotRows > 1 && V > 1 && x.rank() >= 2) {
    Expr dot = dotProducts(*this, proj, op, name, x, vs, dotRows, V, g);
    e = Halide::select(g.useDot, dot, e);
  }
  int P = proj.count();
  g.y = newFunc(op, P > 1 ? name + "_all" : name, /*inlined=*/false,
                Role::GemmOut);
  if (!proj.biases.empty())
    e = e + proj.pick(*this, proj.biases, n, {});
  e = applyActivation(proj.act, e);
  if (proj.residual)
    e = e + get(proj.residual).at(asExprs(vs));
  def(g.y, vs, e);
  // A symbolic output width (a weight of a symbolic size) is not tiled:
  // n = 0 leaves the projection to the generic schedule.
  const int64_t *staticWidth =
      Halide::Internal::as_const_int(proj.offsets.back());
  g.n = staticWidth ? *staticWidth : 0;
  g.rows = x.rank() >= 2 ? x.shape[x.rank() - 2] : Expr();
  out.gemms.push_back(g);

  if (P == 1) {
    tensors[op->getResult(0)] = {g.y, shape};
    return success();
  }
  for (int p = 0; p < P; ++p) {
    Func r = newFunc(op, name + "_" + std::to_string(p), /*inlined=*/true);
    std::vector<Expr> idx = asExprs(vs);
    idx.back() = idx.back() + proj.offsets[p];
    def(r, vs, g.y(reversed(idx)));
    std::vector<Expr> partShape = shape;
    partShape.back() = proj.widths[p];
    tensors[op->getResult(p)] = {r, partShape};
  }
  return success();
}


/// c[..., m, n] = sum_k a[..., m, k] * b[..., k, n], batch dims broadcast.
Tensor PipelineBuilder::lowerMatmul(attn::MatmulOp op) {
  const Tensor &a = get(op.getLhs());
  const Tensor &b = get(op.getRhs());
  std::vector<Expr> aBatch(a.shape.begin(), a.shape.end() - 2);
  std::vector<Expr> bBatch(b.shape.begin(), b.shape.end() - 2);
  std::vector<Expr> shape = broadcastShape(aBatch, bBatch);
  size_t nb = shape.size();
  shape.push_back(a.shape[a.rank() - 2]);
  shape.push_back(b.shape.back());

  Func f = newFunc(op, opName(op));
  std::vector<Var> vs = makeVars(shape.size());
  def(f, vs, 0.0f);
  RDom k(0, a.shape.back(), "k");
  std::vector<Expr> batch(vs.begin(), vs.begin() + nb);
  std::vector<Expr> ai = broadcastIndex(aBatch, batch);
  std::vector<Expr> bi = broadcastIndex(bBatch, batch);
  ai.insert(ai.end(), {vs[nb], k});
  bi.insert(bi.end(), {k, vs[nb + 1]});
  defAdd(f, vs, a.at(ai) * b.at(bi));
  return {f, shape};
}


/// The dot-product branch of a projection (few rows): n blocks of `nc`
/// outputs (parallel), the rows inside; per block each weight's partial
/// sums for all rows, `dotRows` weight rows at a time (unrolled: that many
/// sequential streams) over k in vectors, each vector of a weight row used
/// for every row of x while in L1. The weights are read once, unpacked.
static void scheduleDots(attn::GemmKernel &g, Halide::Stage y, int nc, int V) {
  const int streams = 4;
  std::vector<Var> args = g.y.args();
  Var n = args[0], no("no"), ni("ni"), nb("nb"), nu("nu"), mb("mb"), mi("mi");
  // Halide checks the tiles' compute_at(y, mb) in this branch too (where
  // the select leaves them unused): it gets a loop mb, of single rows.
  std::vector<Halide::VarOrRVar> order = {ni, mi, mb};
  order.insert(order.end(), args.begin() + 2, args.end());
  order.push_back(no);
  y.split(n, no, ni, nc, TailStrategy::ShiftInwards)
      .split(args[1], mb, mi, 1)
      .reorder(order)
      .vectorize(ni, V)
      .parallel(no);
  for (size_t p = 0; p < g.parts.size(); ++p) {
    Func part = g.parts[p], dot = g.dots[p];
    std::vector<Var> pa = part.args(); // l, n, rows...
    Var l = pa[0], pn = pa[1];
    std::vector<Halide::VarOrRVar> porder = {l, nu};
    porder.insert(porder.end(), pa.begin() + 2, pa.end());
    porder.push_back(g.dotK.x);
    porder.push_back(nb);
    part.compute_at(g.y, no).vectorize(l);
    part.update()
        .split(pn, nb, nu, streams, TailStrategy::GuardWithIf)
        .reorder(porder)
        .vectorize(l)
        .unroll(nu);
    dot.compute_at(g.y, no);
  }
}


/// A projection (see GemmKernel), after the well-known Halide GEMM:
/// - y is tiled into n blocks of `n` outputs (parallel) and register tiles of
///   `rm` rows x `rn` outputs; the epilogue (bias, activation, residual) is
///   applied to each tile straight from the accumulators. Edge tiles shift
///   inwards (overlapping their neighbour, recomputing it), so every tile has
///   static extents; fewer rows than `rm` take a one-row specialisation.
/// - the weight block is packed n-innermost once per n block, so the tile
///   loads `rn` consecutive outputs with vector loads and broadcasts x;
/// - the accumulator holds the n block for all rows, and its update runs k
///   blocks of `k` outermost so that the panel slice and the rows of x stay
///   in L1 while a register tile accumulates.
void scheduleGemm(attn::GemmKernel &g, attn::GemmScheduleAttr s) {
  using Halide::RVar;
  using Halide::Stage;
  int V = (int)s.getVector();
  int rm = (int)s.getRm();
  int rn = std::max<int>(V, (int)std::min<int64_t>(s.getRn(), g.n / V * V));
  int nc = (int)std::max<int64_t>(rn, std::min<int64_t>(s.getN(), g.n) / rn * rn);
  int kc = (int)s.getK();
  const int kLine = 64 / 4; // f32 per cache line
  bool unrollRows = s.getUnroll(); // the register tile
  std::vector<Var> args = g.y.args(); // n, then the row dims
  Var n = args[0], m = args[1];
  // Row blocks of `mc` rows (a multiple of rm): the accumulators of one
  // block live in L1 and the block's epilogue runs right after its last k
  // block, instead of one memory-bound pass over all rows at the end.
  int mc = (int)s.getM();
  Var no("no"), ni("ni"), nio("nio"), nii("nii"), niu("niu"), niv("niv"),
      mb("mb"), mr("mr"), mo("mo"), mi("mi"), mt("mt");
  auto tile = [&](Stage st, int block, int rows) {
    st.split(n, no, ni, nc, TailStrategy::ShiftInwards);
    if (block > rows)
      st.split(m, mt, mi, rows, TailStrategy::ShiftInwards)
          .split(mt, mb, mo, block / rows, TailStrategy::GuardWithIf);
    else
      st.split(m, mb, mr, block, TailStrategy::ShiftInwards)
          .split(mr, mo, mi, rows, TailStrategy::ShiftInwards);
    st.split(ni, nio, nii, rn, TailStrategy::ShiftInwards)
        .split(nii, niu, niv, V)
        .reorder(niv, niu, mi, nio, mo, mb, no)
        .vectorize(niv)
        .unroll(niu);
    if (unrollRows)
      st.unroll(mi);
    if (s.getParallel())
      st.parallel(no);
  };
  g.y.compute_root();
  if (g.useDot.defined())
    scheduleDots(g, g.y.specialize(g.useDot), nc, V);
  if (mc > rm)
    tile(g.y.specialize(g.rows >= mc), mc, rm);
  tile(g.y.specialize(g.rows >= rm), rm, rm);
  tile(g.y, 1, 1);
  // The pack is a transpose: each vector gathers V outputs at one k. Walk
  // k in blocks of a cache line of W's rows, so that the lines a block
  // reads are used whole while they are in L1.
  Var wko("wko"), wki("wki"), wno("wno"), wni("wni");
  g.wt.compute_at(g.y, no);
  if (!g.packLanes) {
    Var wn = g.wt.args()[0], wk = g.wt.args()[1];
    g.wt.split(wk, wko, wki, kLine, TailStrategy::GuardWithIf)
        .split(wn, wno, wni, V, TailStrategy::GuardWithIf)
        .reorder(wni, wki, wno, wko)
        .vectorize(wni);
  } else {
    // wt(ni, nb, k), one update per weight (see GemmKernel): the same loop
    // order, the vectors nb of V outputs in the place of wno.
    Var ni = g.wt.args()[0], nb = g.wt.args()[1];
    for (int u = 0; u < g.wt.num_update_definitions(); ++u) {
      RVar pk = g.packK[u].x;
      RVar pko(pk.name() + "o"), pki(pk.name() + "i");
      g.wt.update(u)
          .split(pk, pko, pki, kLine, TailStrategy::GuardWithIf)
          .reorder(ni, pki, nb, pko)
          .vectorize(ni, g.packLanes);
    }
  }
  // The accumulator's own dims: y may be an output Func with other names.
  RVar rko("rko"), rki("rki");
  Var an = g.acc.args()[0], am = g.acc.args()[1];
  g.acc.compute_at(g.y, mb)
      .bound_storage(am, mc)
      .split(an, niu, niv, V)
      .vectorize(niv)
      .unroll(niu);
  g.acc.update()
      .split(g.k.x, rko, rki, kc)
      .split(an, nio, nii, rn)
      .split(nii, niu, niv, V)
      .split(am, mo, mi, rm, TailStrategy::RoundUp)
      .reorder(niv, niu, mi, rki, nio, mo, rko)
      .vectorize(niv)
      .unroll(niu);
  if (unrollRows)
    g.acc.update().unroll(mi);
}

} // namespace attn::detail
