//===- Schedule.cpp - The default schedule of an attn pipeline ------------===//
//
// Plain but sane, and kept apart from the algorithm (HalideGen.cpp) as in
// Halide's apps: every op Func is computed at root, its innermost dim is
// vectorised by the target's natural width with GuardWithIf (any size
// works, nothing is read out of bounds), its outermost dim runs in parallel,
// (fused with the next one when there are three dims or more, since the
// batch is often 1), and reduction updates get the same treatment on the
// pure dims they keep.
// Cheap point-wise helpers and scalars are inlined into their consumers.
//
// Ops that carry an `attn.schedule` attribute (attnc runs attn-schedule
// before the back end unless --no-fusion) are scheduled as it says:
// `#attn.inline` ops (layout ops, casts, masks) get no buffer and are
// folded into each consumer; without the attribute every op is computed at
// root, which is what --no-fusion compares against.
//
// GPU targets (attnc compiles them without fusion) map every op Func to GPU
// blocks and threads (scheduleGpu); f16/bf16 conversions stay on the host.
//
//===----------------------------------------------------------------------===//
#include "attn/Halide/HalideGen.h"
#include "attn/Dialect/AttnDialect.h"
#include "attn/Dialect/AttnOps.h"

#include "mlir/IR/BuiltinTypes.h"

#include <map>
#include <set>

using Role = attn::OpFunc::Role;
using Halide::Func;
using Halide::TailStrategy;
using Halide::Var;

/// Whether update `u` of `f` keeps pure dim `var` (its LHS is the Var
/// itself), so that vectorising or parallelising it is legal.
static bool updateKeeps(Func f, int u, const Var &var) {
  for (const Halide::Expr &e : f.update_args(u))
    if (const auto *v = e.as<Halide::Internal::Variable>())
      if (v->name == var.name())
        return true;
  return false;
}

/// Runs the outermost dim of `s` in parallel. With three dims or more, the
/// two outermost are fused first: the batch alone is often 1.
static void parallelOuter(Halide::Stage s, const std::vector<Var> &args,
                          bool fuse) {
  Var outer = args.back();
  if (fuse) {
    Var fused(outer.name() + "_" + args[args.size() - 2].name());
    s.fuse(args[args.size() - 2], outer, fused).parallel(fused);
  } else {
    s.parallel(outer);
  }
}

/// How a Func at root is vectorised and whether its outer dims run in
/// parallel: as the op's rows schedule says; without one (--no-fusion,
/// helpers), the target's natural width, in parallel; under another
/// family's schedule (an untiled GEMM, an inline op an output copies), its
/// vector width, serially.
struct RootSchedule {
  int vector;
  bool parallel;
};
static RootSchedule rootSchedule(Func f, const Halide::Target &target,
                                 mlir::Attribute s) {
  if (auto r = llvm::dyn_cast_or_null<attn::RowsScheduleAttr>(s))
    return {(int)r.getVector(), r.getParallel()};
  if (auto g = llvm::dyn_cast_or_null<attn::GemmScheduleAttr>(s))
    return {(int)g.getVector(), false};
  if (s)
    return {1, false};
  return {target.natural_vector_size(f.output_types()[0]), true};
}

/// compute_root; innermost dim vectorised, outermost parallel (as `s`,
/// the op's schedule, says: rootSchedule).
static void scheduleRoot(Func f, const Halide::Target &target,
                         mlir::Attribute s = {}) {
  f.compute_root();
  std::vector<Var> args = f.args(); // args[0] is the innermost dim
  RootSchedule rs = rootSchedule(f, target, s);
  int width = rs.vector;
  Var inner = args.front();
  bool parallel = args.size() > 1 && rs.parallel, fuse = args.size() > 2;
  f.vectorize(inner, width, TailStrategy::GuardWithIf);
  if (parallel)
    parallelOuter(f, args, fuse);
  for (int u = 0; u < f.num_update_definitions(); ++u) {
    Halide::Stage s = f.update(u);
    bool keepsInner = updateKeeps(f, u, inner);
    if (keepsInner)
      s.vectorize(inner, width, TailStrategy::GuardWithIf);
    bool keepsOuter = parallel && updateKeeps(f, u, args.back());
    if (keepsOuter)
      parallelOuter(s, args,
                    fuse && updateKeeps(f, u, args[args.size() - 2]));
    if (!keepsInner && !keepsOuter)
      s.unscheduled(); // serial, as written (e.g. a min/max over all ids)
  }
}

/// The largest power of two <= cap that divides n (n > 0).
static int vectorFor(int64_t n, int cap) {
  int w = 1;
  while (w * 2 <= cap && n % (w * 2) == 0)
    w *= 2;
  return w;
}

/// The q.k register tile of one of the attention variants: `scores(ii, j,
/// ...)` (already placed) is computed in groups of `cols` keys and `rows`
/// query rows (the keys' rows of K stay in L1 across the row groups), each
/// from an accumulator `sacc` of (rows / qv vectors of queries) x `cols`
/// keys that keeps the whole d loop in registers; the mask and bias are
/// added on the way out.
static void scheduleScoreTile(Func scores, Func sacc, Halide::RVar d, Var j,
                              int cols, int qv, int rows, bool unroll) {
  Var ii("ii"), jo("jo"), ji("ji"), iu("iu"), iv("iv"), io("io"), ir("ir");
  scores.split(j, jo, ji, cols, TailStrategy::RoundUp)
      .split(ii, io, ir, rows, TailStrategy::GuardWithIf)
      .split(ir, iu, iv, qv)
      .reorder(iv, iu, ji, io, jo)
      .vectorize(iv)
      .unroll(iu);
  sacc.compute_at(scores, io).split(ii, iu, iv, qv).vectorize(iv).unroll(iu);
  sacc.update()
      .split(ii, iu, iv, qv)
      .reorder(iv, iu, j, d)
      .vectorize(iv)
      .unroll(iu);
  if (unroll) {
    scores.unroll(ji);
    sacc.unroll(j);
    sacc.update().unroll(j);
  }
}

/// Probabilities, their row sum and P V over keys `k` (an RVar of the sum's
/// and P V's updates; `j` the probabilities' key dim), all at `level`, in
/// sub-blocks of `pvKeys` keys: a sub-block's probabilities (qt x pvKeys
/// floats) are made and consumed while in L1, by the row sum and P V fused
/// into one loop over the sub-blocks (compute_with: siblings that read the
/// same probabilities). P V is a register tile of `rows` query rows x the
/// value head dim, vectorised by `ve`; exp and sum are vectorised across the
/// queries by `qv`.
static void scheduleProbsPv(Func probs, Func sum, Func pv,
                            Halide::LoopLevel level, Halide::RVar k, Var j,
                            int pvKeys, int rows, int ve, int qv, bool unroll) {
  Var ii("ii"), iu("iu"), iv("iv"), e("e"), eo("eo"), ei("ei"), io("io"),
      ij("ij");
  Halide::RVar ko("ko"), ki("ki");
  pv.compute_at(level).vectorize(e, ve);
  pv.update()
      .split(k, ko, ki, pvKeys)
      .split(e, eo, ei, ve)
      .split(ii, io, ij, rows, TailStrategy::GuardWithIf)
      .reorder(ei, eo, ij, ki, io, ko)
      .vectorize(ei)
      .unroll(eo);
  if (unroll)
    pv.update().unroll(ij);
  sum.compute_at(level).vectorize(ii, qv);
  sum.update()
      .split(k, ko, ki, pvKeys)
      .reorder(ii, ki, ko)
      .vectorize(ii, qv)
      .compute_with(pv.update(), ko);
  probs.compute_at(pv, ko)
      .bound_storage(j, pvKeys)
      .split(ii, iu, iv, qv)
      .reorder(iv, iu, j)
      .vectorize(iv)
      .unroll(iu);
}

/// The register tiles of an attention variant whose query tile has `tile`
/// rows (q, qb, or 1 for few queries): the lanes over query rows, and the
/// register tiles' rows, no more than the tile's. The attribute's verifier
/// makes rqk divide q and qb (a partial q.k row group, GuardWithIf inside
/// the rounded-up key split, gave wrong results in the e2e suite).
struct RegisterTiles {
  int qv, pvRows, qkRows;
};
static RegisterTiles registerTiles(attn::AttentionScheduleAttr s, int tile) {
  RegisterTiles r;
  r.qv = vectorFor(tile, (int)s.getVector());
  r.pvRows = (int)std::min<int64_t>(s.getRq(), tile);
  r.qkRows = (int)std::min<int64_t>(s.getRqk(), tile);
  return r;
}

/// Inside the tasks of `out` (loop `t`): a blocked variant. The q tile is
/// transposed and scaled once and the online-softmax state (qt x Dv, three
/// buffers) lives for the task; everything of one key block is computed
/// inside the block loop of the state's update, so that a block's scores
/// (qt x kvb floats) stay in L2:
/// - the scores by register tiles of `rqk` query rows (rqk / V vectors) x
///   `rkv` keys that keep the whole d loop in registers;
/// - max over the block's keys, then exp, sum and P V per sub-block of `pv`
///   keys (scheduleProbsPv), max, exp and sum vectorised across the queries
///   (no horizontal reductions);
/// - P V by a register tile of `rq` query rows x the value head dim;
/// - the state update, vectorised over the value head dim.
static void scheduleBlocked(attn::AttentionKernel::Blocked &a, Func out,
                            Var t, Halide::RVar d, int kvb, int ve,
                            attn::AttentionScheduleAttr s) {
  using Halide::RVar;
  int qkCols = (int)s.getRkv();
  RegisterTiles br = registerTiles(s, a.qt);
  int pvKeys = (int)s.getPv();
  Var ii("ii"), jj("jj"), e("e");
  RVar kv = a.kv.x, rj = a.rj.x;
  a.otile.compute_at(out, t).vectorize(e, ve);
  a.qtile.compute_at(out, t).vectorize(ii, br.qv);
  a.state.compute_at(out, t).vectorize(e, ve);
  a.state.update().reorder(e, ii, kv).vectorize(e, ve);
  // One key block, inside the state's block loop. A block cut short (the
  // last one, a causal diagonal) computes fewer keys, but its buffers keep
  // the full block's static size: they stay on the stack.
  Halide::LoopLevel block(a.state, kv);
  int roundedBlock = (kvb + qkCols - 1) / qkCols * qkCols;
  a.scores.compute_at(block).bound_storage(jj, roundedBlock);
  scheduleScoreTile(a.scores, a.sacc, d, jj, qkCols, br.qv, br.qkRows,
                    s.getUnrollQk());
  a.blockMax.compute_at(block).vectorize(ii, br.qv);
  a.blockMax.update().reorder(ii, rj).vectorize(ii, br.qv);
  scheduleProbsPv(a.probs, a.blockSum, a.pv, block, rj, jj, pvKeys, br.pvRows,
                  ve, br.qv, s.getUnrollPv());
}

/// Flash-style attention (see AttentionKernel): one task per (b, h, query
/// tile), run in parallel; `out` is specialised on the variant (few
/// queries, whole rows, blocked) and each branch computes only its own
/// variant, with its own query tile.
static void scheduleAttention(attn::AttentionKernel &a,
                              attn::AttentionScheduleAttr s) {
  using Halide::RVar;
  int V = (int)s.getVector();
  int qkCols = (int)s.getRkv();
  int pvKeys = (int)s.getPv();
  Var ii("ii"), it("it"), e("e"), t("t");
  // The value head dim is static: vectorise it by what divides it.
  auto outType =
      llvm::cast<mlir::RankedTensorType>(a.op->getResult(0).getType());
  int ve = vectorFor(outType.getDimSize(3), V);

  // out(e, i, h, b), by its own dims: it may be an output Func.
  std::vector<Var> od = a.out.args();
  auto tileOut = [&](Halide::Stage st, int rows) {
    st.split(od[1], it, ii, rows, TailStrategy::GuardWithIf)
        .fuse(it, od[2], t)
        .fuse(t, od[3], t)
        .vectorize(od[0], ve);
    if (s.getParallel())
      st.parallel(t);
  };
  a.out.compute_root();
  if (a.useFew.defined())
    tileOut(a.out.specialize(a.useFew), 1);
  if (a.useRows.defined())
    tileOut(a.out.specialize(a.useRows), a.qt);
  tileOut(a.out, a.blocked.qt); // HalideGen: qtb = qt if alone
  scheduleBlocked(a.blocked, a.out, t, a.d.x, a.kvb, ve, s);
  if (a.useFew.defined())
    scheduleBlocked(a.few, a.out, t, a.d.x, a.kvb, ve, s);

  // The whole-row variant: the same register tiles over all keys of the
  // tile; P V runs over blocks of kv keys so that a block of V stays in L1
  // across the tile's rows.
  const RegisterTiles wr = registerTiles(s, a.qt);
  attn::AttentionKernel::Rows &w = a.rows;
  RVar key = w.kv.x;
  Var j("j");
  w.otile.compute_at(a.out, t).vectorize(e, ve);
  w.qtile.compute_at(a.out, t).vectorize(ii, wr.qv);
  w.scores.compute_at(a.out, t);
  scheduleScoreTile(w.scores, w.sacc, a.d.x, j, qkCols, wr.qv, wr.qkRows,
                    s.getUnrollQk());
  w.rowMax.compute_at(a.out, t).vectorize(ii, wr.qv);
  w.rowMax.update().reorder(ii, key).vectorize(ii, wr.qv);
  scheduleProbsPv(w.probs, w.rowSum, w.oacc, Halide::LoopLevel(a.out, t), key,
                  j, pvKeys, wr.pvRows, ve, wr.qv, s.getUnrollPv());
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
static void scheduleGemm(attn::GemmKernel &g, attn::GemmScheduleAttr s) {
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

/// A norm (layer_norm, rms_norm) over the last dim: its rows in blocks of
/// the schedule's `rows` (parallel), and each block's statistics (mean,
/// variance) computed right before the block is normalised, so that its
/// rows are read from L1 by the second and third pass. A statistic sums
/// along the row in vectors (rfactor: V partial sums, added at the end)
/// instead of vectorising across rows, which would gather.
static void scheduleNorm(Func f, const std::vector<Func> &stats,
                         attn::RowsScheduleAttr s) {
  using Halide::RVar;
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
  for (Func st : stats) {
    st.compute_at(at);
    if (args.size() > 1) // a block's rows: a constant size, on the stack
      st.bound_storage(st.args()[0], rows);
    if (V <= 1 || st.num_update_definitions() != 1 || st.rvars(0).size() != 1)
      continue;
    RVar ro("ro"), rv("rv");
    Var u("u");
    Func part = st.update().split(st.rvars(0)[0], ro, rv, V).rfactor(rv, u);
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

/// GPU targets (cuda, opencl): the mapping of one stage. The two innermost
/// dims are tiled `x` x `y` (one dim: x * y) into GPU blocks and threads,
/// with GuardWithIf so that any size works; the dims outside them, fused,
/// are a third block dim when `outerKept` (an update that does not keep
/// them all runs them as host loops, one launch per iteration).
static void gpuTileStage(Halide::Stage s, const std::vector<Var> &args,
                         bool outerKept, int x, int y) {
  Var xo("xo"), xi("xi"), yo("yo"), yi("yi");
  if (args.size() == 1) {
    s.gpu_tile(args[0], xo, xi, x * y, TailStrategy::GuardWithIf);
    return;
  }
  s.gpu_tile(args[0], args[1], xo, yo, xi, yi, x, y,
             TailStrategy::GuardWithIf);
  if (args.size() < 3 || !outerKept)
    return;
  Var z = args[2];
  for (size_t k = 3; k < args.size(); ++k) {
    Var fused(z.name() + "_" + args[k].name());
    s.fuse(z, args[k], fused);
    z = fused;
  }
  s.gpu_blocks(z);
}

/// A Func of a GPU pipeline: at root, its definition and every update that
/// keeps the two innermost dims mapped by gpuTileStage, with the threads of
/// the op's #attn.gpu_schedule (16 x 16 without one); reductions run
/// serially inside each GPU thread. Plain but correct: every op is its own
/// kernel (no fusion), as the unfused CPU pipeline is.
static void scheduleGpu(Func f, attn::GpuScheduleAttr s) {
  int x = s ? (int)s.getX() : 16, y = s ? (int)s.getY() : 16;
  f.compute_root();
  std::vector<Var> args = f.args();
  gpuTileStage(f, args, true, x, y);
  for (int u = 0; u < f.num_update_definitions(); ++u) {
    bool inner = updateKeeps(f, u, args[0]) &&
                 (args.size() == 1 || updateKeeps(f, u, args[1]));
    if (!inner)
      continue; // left on the host
    bool outer = true;
    for (size_t k = 2; k < args.size(); ++k)
      outer &= updateKeeps(f, u, args[k]);
    gpuTileStage(f.update(u), args, outer, x, y);
  }
}

/// The schedule attribute of the op that defined `f`, if any, as `Attr`.
template <typename Attr = attn::AttnScheduleAttrInterface>
static Attr scheduleOf(const attn::OpFunc &f) {
  return f.op ? f.op->getAttrOfType<Attr>("attn.schedule") : Attr();
}

/// The rows schedule of a norm computed at root, if any.
static attn::RowsScheduleAttr normSchedule(const attn::OpFunc &f) {
  auto s = scheduleOf<attn::RowsScheduleAttr>(f);
  return s && s.getCompute() == attn::ComputeKind::Root
             ? s
             : attn::RowsScheduleAttr();
}

/// A GPU pipeline. attnc compiles GPU targets without fusion (attnc.cpp):
/// every op Func gets the GPU mapping of its op's schedule. Conversions from and to f16/bf16 (storage
/// types: inputs, params and outputs only) stay on the host, so kernels see
/// f32 alone and need no half support from the device (PoCL has none); so
/// do helpers of role Host (checks that fail the call: a kernel cannot).
static void applyGpuSchedule(attn::ModelPipeline &model,
                             const Halide::Target &target) {
  auto halfType = [](Halide::Type t) {
    return t.bits() == 16 && (t.is_float() || t.is_bfloat());
  };
  for (attn::OpFunc &f : model.funcs) {
    if (f.inlined || f.func.dimensions() == 0)
      continue;
    auto cast = llvm::dyn_cast_or_null<attn::CastOp>(f.op);
    auto gather = llvm::dyn_cast_or_null<attn::EmbeddingOp>(f.op);
    bool onHost =
        f.role == Role::Host ||
        (cast && (cast.getInput().getType().getElementTypeBitWidth() == 16 ||
                  cast.getType().getElementTypeBitWidth() == 16)) ||
        (gather && gather.getTable().getType().getElementTypeBitWidth() == 16);
    onHost ? scheduleRoot(f.func, target)
           : scheduleGpu(f.func, scheduleOf<attn::GpuScheduleAttr>(f));
  }
  for (Func &f : model.outputs)
    if (f.dimensions() > 0)
      halfType(f.output_types()[0]) ? scheduleRoot(f, target)
                                    : scheduleGpu(f, {});
}

void attn::applySchedule(ModelPipeline &model, const Halide::Target &target) {
  // A call runs its callee's own (already scheduled) pipeline, once.
  for (Func &f : model.externs)
    f.compute_root();
  if (target.has_gpu_feature())
    return applyGpuSchedule(model, target);
  // An op result that an output only copies is computed in the output
  // Func: the op's Func is inlined and the output gets its schedule.
  std::map<std::string, Func> computedIn; // op Func name -> output
  for (size_t r = 0; r < model.outputs.size(); ++r)
    if (r < model.outputSources.size() && model.outputSources[r].defined() &&
        model.outputs[r].dimensions() > 0)
      for (OpFunc &f : model.funcs)
        if (f.func.name() == model.outputSources[r].name() && scheduleOf(f))
          computedIn[f.func.name()] = model.outputs[r];
  std::set<std::string> scheduledOutputs;
  // The output a kernel's last Func is computed in, or that Func itself.
  auto placed = [&](Func f) {
    auto it = computedIn.find(f.name());
    if (it == computedIn.end())
      return f;
    scheduledOutputs.insert(it->second.name());
    return it->second;
  };
  // Attention without a schedule attribute (--no-fusion) keeps every Func
  // at root below, scores included: the unfused reference point.
  for (AttentionKernel &a : model.attentions)
    if (auto s = a.op->getAttrOfType<AttentionScheduleAttr>("attn.schedule")) {
      AttentionKernel k = a;
      k.out = placed(a.out);
      scheduleAttention(k, s);
    }
  std::set<mlir::Operation *> tiledGemms;
  for (GemmKernel &g : model.gemms) {
    auto s = g.op->getAttrOfType<GemmScheduleAttr>("attn.schedule");
    if (s && g.rows.defined() && g.n >= s.getVector()) {
      GemmKernel k = g;
      k.y = placed(g.y);
      scheduleGemm(k, s);
      tiledGemms.insert(g.op);
    }
  }
  // Without a schedule attribute (--no-fusion) norms stay at root below.
  for (OpFunc &f : model.funcs) {
    if (f.role != Role::Norm || f.func.dimensions() < 1 || !normSchedule(f))
      continue;
    std::vector<Func> stats;
    for (OpFunc &g : model.funcs)
      if (g.op == f.op && g.role == Role::NormStat)
        stats.push_back(g.func);
    scheduleNorm(placed(f.func), stats, normSchedule(f));
  }
  for (OpFunc &f : model.funcs) {
    if (f.inlined || f.func.dimensions() == 0 || tiledGemms.count(f.op) ||
        ((f.role == Role::Norm || f.role == Role::NormStat) &&
         normSchedule(f)) ||
        (f.role == Role::Attention && scheduleOf<AttentionScheduleAttr>(f)))
      continue;
    AttnScheduleAttrInterface s = scheduleOf(f);
    if (s && s.getComputeKind() == ComputeKind::Inline &&
        !computedIn.count(f.func.name()))
      continue; // an index map: folded into every consumer
    scheduleRoot(placed(f.func), target, s);
  }
  for (Func &f : model.outputs)
    if (f.dimensions() > 0 && !scheduledOutputs.count(f.name()))
      scheduleRoot(f, target);
  for (CacheWrite &w : model.cacheWrites) {
    scheduleRoot(w.newRows, target);
    w.starts.compute_root();
  }
}
