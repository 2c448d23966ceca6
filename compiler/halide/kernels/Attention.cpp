//===- Attention.cpp - Masks, softmax and attention ----------------------===//
//
// Masks as predicates over score indices, masked softmax, and flash-style
// attention with an online softmax: the algorithm (AttentionKernel: the
// whole-row, blocked and few-query variants) and its schedule
// (#attn.attention_schedule).
//
//===----------------------------------------------------------------------===//
#include "../Lowering.h"

using namespace mlir;
using Halide::TailStrategy;

namespace attn::detail {

Mask PipelineBuilder::lowerMask(Operation *op) {
  auto offset = [](const std::vector<Expr> &shape) {
    size_t r = shape.size();
    return shape[r - 1] - shape[r - 2]; // Sk - Sq (bottom-right aligned)
  };
  if (auto c = dyn_cast<attn::CausalOp>(op)) {
    if (c.getStart()) { // query i of row b is at position start[b] + i
      Tensor start = get(c.getStart());
      return [start](const std::vector<Expr> &i, const std::vector<Expr> &) {
        size_t r = i.size();
        return i[r - 1] <= i[r - 2] + start.at({i[0]});
      };
    }
    return [offset](const std::vector<Expr> &i, const std::vector<Expr> &s) {
      size_t r = i.size();
      return i[r - 1] <= i[r - 2] + offset(s);
    };
  }
  if (auto w = dyn_cast<attn::SlidingWindowOp>(op)) {
    int window = (int)w.getWindow();
    return [offset, window](const std::vector<Expr> &i,
                            const std::vector<Expr> &s) {
      size_t r = i.size();
      Expr last = i[r - 2] + offset(s);
      return i[r - 1] <= last && i[r - 1] > last - window;
    };
  }
  if (auto p = dyn_cast<attn::PaddingOp>(op)) {
    Tensor lengths = get(p.getLengths());
    return [lengths](const std::vector<Expr> &i, const std::vector<Expr> &) {
      return i.back() < lengths.at({i[0]});
    };
  }
  if (auto t = dyn_cast<attn::TensorMaskOp>(op)) {
    Tensor keep = get(t.getKeep());
    return [keep](const std::vector<Expr> &i, const std::vector<Expr> &) {
      return keep.at(broadcastIndex(keep.shape, i)) != 0;
    };
  }
  auto a = cast<attn::MaskAndOp>(op);
  Mask lhs = masks[a.getLhs()], rhs = masks[a.getRhs()];
  return [lhs, rhs](const std::vector<Expr> &i, const std::vector<Expr> &s) {
    return lhs(i, s) && rhs(i, s);
  };
}


PipelineBuilder::SoftmaxParts PipelineBuilder::softmaxParts(Operation *op,
                                            const std::string &name,
                                            const Tensor &scores,
                                            const Mask *mask) {
  size_t rank = scores.rank();
  std::vector<Var> vs = makeVars(rank);
  std::vector<Var> rows(vs.begin(), vs.end() - 1);
  std::vector<Expr> idx = asExprs(vs);
  auto keepAt = [&](const std::vector<Expr> &i) {
    return mask ? (*mask)(i, scores.shape) : Expr(true);
  };

  RDom j(0, scores.shape.back(), "j");
  std::vector<Expr> rowJ(rows.begin(), rows.end());
  rowJ.push_back(j);

  Func rowMax = newFunc(op, name + "_max");
  def(rowMax, rows, kMaskedScore);
  defMax(rowMax, rows,
         Halide::select(keepAt(rowJ), scores.at(rowJ), kMaskedScore));

  Func exps = newFunc(op, name + "_exp");
  Expr m = rowMax(reversed(std::vector<Expr>(rows.begin(), rows.end())));
  def(exps, vs,
      Halide::select(keepAt(idx), Halide::exp(scores.at(idx) - m), 0.0f));

  Func sum = newFunc(op, name + "_sum");
  def(sum, rows, 0.0f);
  defAdd(sum, rows, exps(reversed(rowJ)));

  Func denom = newFunc(op, name + "_denom", /*inlined=*/true);
  Expr s = sum(reversed(asExprs(rows)));
  def(denom, rows, Halide::select(s > 0.0f, s, 1.0f));
  return {exps, denom};
}


Tensor PipelineBuilder::lowerSoftmax(attn::SoftmaxOp op) {
  const Tensor &x = get(op.getX());
  std::string name = opName(op);
  Mask mask = op.getMask() ? masks[op.getMask()] : Mask();
  SoftmaxParts parts = softmaxParts(op, name, x, mask ? &mask : nullptr);
  Func f = newFunc(op, name);
  std::vector<Var> vs = makeVars(x.rank());
  std::vector<Expr> rows(vs.begin(), vs.end() - 1);
  def(f, vs,
      parts.exps(reversed(asExprs(vs))) / parts.denom(reversed(rows)));
  return {f, x.shape};
}


/// The keys [lo, hi) that `mask` can keep for any query of the tile
/// [iMin, iMax] of batch row b (off = Sk - Sq). Null bounds: unbounded.
void PipelineBuilder::kvBounds(Value mask, Expr iMin, Expr iMax, Expr b,
                               Expr off, bool withLengths, Expr &lo,
                               Expr &hi) {
  auto tighten = [](Expr &bound, Expr e, bool upper) {
    bound = !bound.defined() ? e
            : upper          ? Halide::min(bound, e)
                             : Halide::max(bound, e);
  };
  Operation *def = mask ? mask.getDefiningOp() : nullptr;
  if (!def)
    return;
  if (auto both = dyn_cast<attn::MaskAndOp>(def)) {
    kvBounds(both.getLhs(), iMin, iMax, b, off, withLengths, lo, hi);
    kvBounds(both.getRhs(), iMin, iMax, b, off, withLengths, lo, hi);
  } else if (auto c = dyn_cast<attn::CausalOp>(def)) {
    if (!c.getStart())
      tighten(hi, iMax + off + 1, true);
    else if (withLengths)
      tighten(hi, iMax + get(c.getStart()).at({b}) + 1, true);
  } else if (auto w = dyn_cast<attn::SlidingWindowOp>(def)) {
    tighten(hi, iMax + off + 1, true);
    tighten(lo, iMin + off - (int)w.getWindow() + 1, false);
  } else if (auto p = dyn_cast<attn::PaddingOp>(def); p && withLengths) {
    tighten(hi, get(p.getLengths()).at({b}), true);
  }
}


namespace {

/// Flash-style attention, one query tile at a time (`qb` rows in the
/// blocked variant below, `q` in the whole-row one):
///   out[b, h, i, e] = sum_j softmax_j(scale q.k + bias, mask) v[b, h/g, j, e]
/// with g = Hq / Hkv (GQA: query head h reads kv head h / g, no copy).
/// The keys are visited in blocks of `kvb` with an online softmax: for block
/// r the tile's scores, their row max bm_r, P_r = 2^(s - bm_r), its row sum
/// l_r and P_r V_r exist only for that block; a running state (O, m, l)
/// absorbs each block,
///   m' = max(m, bm_r),  O' = O 2^(m - m') + P_r V_r 2^(bm_r - m'),
///   l' = l 2^(m - m') + l_r 2^(bm_r - m'),
/// where one of the two factors is 1, so one exp per state element. Scores
/// are in log2 units (scale and log2 e are folded into the q tile once).
/// The block loop runs over the blocks the mask can keep for the tile, so
/// causal attention does about half the work; inside a visited block every
/// key is computed, and those the mask drops get probability 0. A query row
/// whose keys are all masked gives exactly 0.
///
/// What the variants of one attention op share, and their builders: the
/// operands, the index Vars (Halide dims innermost first, as in
/// AttentionKernel), a score with its bias and mask, and the keys a tile's
/// mask can keep.
class AttentionDefiner {
public:
  AttentionDefiner(PipelineBuilder &pb, attn::AttentionOp op, int kvb)
      : pb(pb), op(op), q(pb.get(op.getQuery())), k(pb.get(op.getKey())),
        v(pb.get(op.getValue())), name(pb.opName(op)), kvb(kvb),
        scale((float)op.getScaleOrDefault() * log2e), Sq(q.shape[2]),
        Sk(k.shape[2]), off(Sk - Sq),
        kh(h / simplified(q.shape[1] / k.shape[1])), j(r * kvb + jj),
        key(Halide::clamp(j, 0, Sk - 1)), rd(0, q.shape[3], "rd") {}

  /// A blocked (online-softmax) variant of `rows` queries a tile, its
  /// Funcs' names suffixed with `pre`.
  AttentionKernel::Blocked blocked(int rows, const std::string &pre);
  /// The whole-row variant, tiles of `rows` queries.
  AttentionKernel::Rows wholeRows(int rows);
  /// A Func of this op's kernel.
  Func func(const std::string &suffix) {
    return pb.newFunc(op, name + suffix, /*inlined=*/false, Role::Attention);
  }

  static constexpr float log2e = 1.4426950408889634f;
  PipelineBuilder &pb;
  attn::AttentionOp op;
  const Tensor &q, &k, &v;
  std::string name;
  int kvb;
  float scale;
  Var ii{"ii"}, it{"it"}, jj{"jj"}, r{"r"}, h{"h"}, b{"b"}, d{"d"}, e{"e"},
      i{"i"};
  Expr Sq, Sk, off, kh;
  Expr j;   ///< key r * kvb + jj of a blocked variant
  Expr key; ///< j clamped: bounds inference sees a block only as an interval
  RDom rd;  ///< the q.k reduction over the head dim

private:
  /// Query row ii of tile it, of `rows` rows (the last tile is clamped).
  Expr queryRow(int rows) { return Halide::min(it * rows + ii, Sq - 1); }
  /// The query tile of a variant, transposed (rows innermost), scaled once.
  Func queryTile(const std::string &suffix, Expr at) {
    Func f = func(suffix);
    f(ii, d, it, h, b) = q.at({b, h, at, d}) * scale;
    return f;
  }
  Expr score(Expr qk, Expr at, Expr row);
  void keyRange(int rows, Expr &from, Expr &to);
};

/// The score of `row` and key `at` (in log2 units) from its q.k product:
/// plus the bias, and a large finite negative where masked (not a select of
/// the score, which would let bounds inference trim the tile by the mask).
Expr AttentionDefiner::score(Expr qk, Expr at, Expr row) {
  if (Value biasValue = op.getBias()) {
    const Tensor &t = pb.get(biasValue);
    qk = qk + t.at(broadcastIndex(t.shape, {b, h, row, at})) * log2e;
  }
  std::vector<Expr> scoreShape = {q.shape[0], q.shape[1], Sq, Sk};
  if (Value m = op.getMask())
    qk = qk + Halide::select(pb.masks[m]({b, h, row, at}, scoreShape), 0.0f,
                             kMaskedScore);
  return qk;
}

/// The keys [from, to) that the mask can keep for some row of a tile of
/// `rows` queries: the blocks that meet them are visited.
void AttentionDefiner::keyRange(int rows, Expr &from, Expr &to) {
  Expr lo, hi;
  pb.kvBounds(op.getMask(), it * rows, it * rows + rows - 1, b, off,
              /*withLengths=*/true, lo, hi);
  from = lo.defined() ? Halide::max(lo, 0) : Expr(0);
  to = hi.defined() ? Halide::min(hi, Sk) : Sk;
}

AttentionKernel::Blocked AttentionDefiner::blocked(int rows,
                                                   const std::string &pre) {
  AttentionKernel::Blocked t;
  t.qt = rows;
  Expr row = queryRow(rows);
  t.qtile = queryTile(pre + "_q", row);
  t.sacc = func(pre + "_qk");
  t.sacc(ii, jj, r, it, h, b) = 0.0f;
  t.sacc(ii, jj, r, it, h, b) +=
      t.qtile(ii, rd, it, h, b) * k.at({b, kh, key, rd});
  // Keys past Sk (the last block's) are masked here: the mask itself
  // sees them clamped to the last key.
  t.scores = func(pre + "_scores");
  t.scores(ii, jj, r, it, h, b) =
      score(t.sacc(ii, jj, r, it, h, b), key, row) +
      Halide::select(j < Sk, 0.0f, kMaskedScore);
  Expr kLo, kHi;
  keyRange(rows, kLo, kHi);
  // Every visited block is computed whole: its keys outside what the
  // mask keeps for the tile (the causal or window diagonal, the last
  // block's tail) are masked, their probabilities 0. (Where clauses
  // trimming the key loop to the tile's keys left a guard on every key
  // in the P.V register tile that Halide cannot prove away.)
  RDom rj(0, kvb, "rj");
  t.rj = rj;
  Expr kAt = Halide::clamp(r * kvb + rj, 0, Sk - 1), kj = rj;
  t.blockMax = func(pre + "_max");
  t.blockMax(ii, r, it, h, b) = kMaskedScore;
  t.blockMax(ii, r, it, h, b) = Halide::max(t.blockMax(ii, r, it, h, b),
                                            t.scores(ii, kj, r, it, h, b));
  t.probs = func(pre + "_exp");
  t.probs(ii, jj, r, it, h, b) = attn::exp2Approx(
      t.scores(ii, jj, r, it, h, b) - t.blockMax(ii, r, it, h, b));
  t.blockSum = func(pre + "_sum");
  t.blockSum(ii, r, it, h, b) = 0.0f;
  t.blockSum(ii, r, it, h, b) += t.probs(ii, kj, r, it, h, b);
  t.pv = func(pre + "_pv");
  t.pv(e, ii, r, it, h, b) = 0.0f;
  t.pv(e, ii, r, it, h, b) +=
      t.probs(ii, kj, r, it, h, b) * v.at({b, kh, kAt, e});
  t.kv = RDom(0, (Sk + (kvb - 1)) / kvb, "kv");
  t.kv.where(t.kv.x * kvb + kvb > kLo);
  t.kv.where(t.kv.x * kvb < kHi);
  // The online-softmax state (O, m, l); m starts masked, so the first
  // block that keeps a key replaces the state (its factor 2^(m - m') is 0).
  t.state = func(pre + "_state");
  t.state(e, ii, it, h, b) = Halide::Tuple(0.0f, kMaskedScore, 0.0f);
  Expr O = t.state(e, ii, it, h, b)[0], m = t.state(e, ii, it, h, b)[1],
       l = t.state(e, ii, it, h, b)[2];
  Expr bm = t.blockMax(ii, t.kv, it, h, b);
  Expr bl = t.blockSum(ii, t.kv, it, h, b);
  Expr bo = t.pv(e, ii, t.kv, it, h, b);
  Expr delta = m - bm, f = attn::exp2Approx(-Halide::abs(delta)),
       keepOld = delta >= 0.0f;
  t.state(e, ii, it, h, b) =
      Halide::Tuple(Halide::select(keepOld, O + bo * f, O * f + bo),
                    Halide::max(m, bm),
                    Halide::select(keepOld, l + bl * f, l * f + bl));
  // 1 / l, or 0 for a row that saw no kept key (its max stayed masked).
  t.otile = func(pre + "_o");
  Expr seen = t.state(e, ii, it, h, b)[1] > kMaskedScore * 0.5f;
  t.otile(e, ii, it, h, b) = Halide::select(
      seen, t.state(e, ii, it, h, b)[0] / t.state(e, ii, it, h, b)[2], 0.0f);
  return t;
}

/// A tile's scores and probabilities exist for all keys at once (rows x Sk
/// floats each), so the softmax takes one max and one sum per row and no
/// state update: faster while those rows stay in L2.
AttentionKernel::Rows AttentionDefiner::wholeRows(int rows) {
  AttentionKernel::Rows w;
  Var jw("j");
  Expr row = queryRow(rows);
  Expr keyJ = Halide::min(jw, Sk - 1); // tiles round up to a register tile
  w.qtile = queryTile("_rows_q", row);
  w.sacc = func("_rows_qk");
  w.sacc(ii, jw, it, h, b) = 0.0f;
  w.sacc(ii, jw, it, h, b) +=
      w.qtile(ii, rd, it, h, b) * k.at({b, kh, keyJ, rd});
  w.scores = func("_rows_scores");
  w.scores(ii, jw, it, h, b) = score(w.sacc(ii, jw, it, h, b), keyJ, row);
  Expr lo, hi;
  keyRange(rows, lo, hi);
  w.kv = RDom(0, Sk, "rkv");
  w.kv.where(w.kv.x >= lo && w.kv.x < hi);
  w.rowMax = func("_rows_max");
  w.rowMax(ii, it, h, b) = kMaskedScore;
  w.rowMax(ii, it, h, b) =
      Halide::max(w.rowMax(ii, it, h, b), w.scores(ii, w.kv, it, h, b));
  w.probs = func("_rows_exp");
  w.probs(ii, jw, it, h, b) =
      attn::exp2Approx(w.scores(ii, jw, it, h, b) - w.rowMax(ii, it, h, b));
  w.rowSum = func("_rows_sum");
  w.rowSum(ii, it, h, b) = 0.0f;
  w.rowSum(ii, it, h, b) += w.probs(ii, w.kv, it, h, b);
  w.oacc = func("_rows_pv");
  w.oacc(e, ii, it, h, b) = 0.0f;
  w.oacc(e, ii, it, h, b) +=
      w.probs(ii, w.kv, it, h, b) * v.at({b, kh, w.kv, e});
  // 1 / sum, or 0 for a row that saw no kept key (its max stayed masked).
  Expr seenRow = w.rowMax(ii, it, h, b) > kMaskedScore * 0.5f;
  w.otile = func("_rows_o");
  w.otile(e, ii, it, h, b) = Halide::select(
      seenRow, w.oacc(e, ii, it, h, b) / w.rowSum(ii, it, h, b), 0.0f);
  return w;
}

} // namespace

/// The variants and the choice between them, at run time: fewer queries
/// than the schedule's `few` (decode) take one-row tiles of the blocked
/// variant (a tile of qb rows would compute qb - Sq clamped copies of the
/// last row); up to `rows` keys the whole-row variant; beyond, the blocked
/// one. `out` is specialised on the choice, and each branch computes only
/// its own variant. Without a schedule (--no-fusion) the whole-row variant
/// alone, computed at root, is the unfused reference point.
Tensor PipelineBuilder::lowerAttention(attn::AttentionOp op) {
  auto sched =
      op->getAttrOfType<attn::AttentionScheduleAttr>("attn.schedule");
  int qt = sched ? (int)sched.getQ() : 16;
  int qtb = sched ? (int)sched.getQb() : qt;
  AttentionDefiner def(*this, op, sched ? (int)sched.getKv() : 64);
  AttentionKernel a;
  a.op = op;
  a.qt = qt;
  a.kvb = def.kvb;
  a.d = def.rd;
  a.blocked = def.blocked(qtb, "");
  a.rows = def.wholeRows(qt);
  a.out = newFunc(op, def.name, /*inlined=*/false, Role::Attention);
  Var e = def.e, i = def.i, h = def.h, b = def.b;
  Expr whole = a.rows.otile(e, i % qt, i / qt, h, b);
  Tensor result{a.out, {def.q.shape[0], def.q.shape[1], def.Sq,
                        def.v.shape[3]}};
  if (!sched) {
    a.out(e, i, h, b) = whole;
    out.attentions.push_back(a);
    return result;
  }
  // Variants whose condition cannot hold (a static Sq, or rows within the
  // few-query branch when Sq = Sk) are left out: Halide 14 crashes in
  // bounds inference on a specialisation that the ones before it
  // contradict.
  int64_t fewRows = sched.getFew(), rowKeys = sched.getRows();
  Expr useFew = simplified(def.Sq < (int)std::max<int64_t>(fewRows, 1));
  if (fewRows > 1 && qtb > 1 && !Halide::Internal::is_const_zero(useFew))
    a.useFew = useFew;
  Expr rest = a.blocked.otile(e, i % qtb, i / qtb, h, b);
  Expr useRows = simplified(def.Sk <= (int)rowKeys);
  if (rowKeys > 0 && !Halide::Internal::is_const_zero(useRows) &&
      !(a.useFew.defined() &&
        Halide::Internal::can_prove(!useRows || a.useFew))) {
    a.useRows = useRows;
    rest = Halide::select(a.useRows, whole, rest);
  }
  if (a.useFew.defined()) {
    a.few = def.blocked(1, "_few");
    rest = Halide::select(a.useFew, a.few.otile(e, 0, i, h, b), rest);
  }
  a.out(e, i, h, b) = rest;
  out.attentions.push_back(a);
  return result;
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


/// The value head dim (static, `dv` wide) in vectors of `ve` lanes (what
/// divides it), and the P.V register tile's columns: `cols` such vectors
/// (rv / ve; column blocks when fewer than dv / ve).
struct ValueTile {
  int dv, ve, cols;
};


/// Probabilities, their row sum and P V over keys `k` (an RVar of the sum's
/// and P V's updates; `j` the probabilities' key dim), all at `level`, in
/// sub-blocks of `pvKeys` keys: a sub-block's probabilities (qt x pvKeys
/// floats) are made and consumed while in L1, by the row sum and P V fused
/// into one loop over the sub-blocks (compute_with: siblings that read the
/// same probabilities). P V is a register tile of `rows` query rows x `vt`'s
/// columns; exp and sum are vectorised across the queries by `qv`.
static void scheduleProbsPv(Func probs, Func sum, Func pv,
                            Halide::LoopLevel level, Halide::RVar k, Var j,
                            int pvKeys, int rows, ValueTile vt, int qv,
                            bool unroll) {
  const int ve = vt.ve, cols = vt.cols, vectors = vt.dv / vt.ve;
  Var ii("ii"), iu("iu"), iv("iv"), e("e"), eo("eo"), ei("ei"), ec("ec"),
      io("io"), ij("ij");
  Halide::RVar ko("ko"), ki("ki");
  pv.compute_at(level).vectorize(e, ve);
  Halide::Stage update = pv.update();
  update.split(k, ko, ki, pvKeys)
      .split(e, eo, ei, ve)
      .split(ii, io, ij, rows, TailStrategy::GuardWithIf);
  if (cols < vectors && vectors % cols == 0)
    update.split(eo, ec, eo, cols).reorder(ei, eo, ij, ki, ec, io, ko);
  else
    update.reorder(ei, eo, ij, ki, io, ko);
  update.vectorize(ei).unroll(eo);
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
/// - P V by a register tile of `rq` query rows x `rv` columns;
/// - the state update, vectorised over the value head dim.
static void scheduleBlocked(attn::AttentionKernel::Blocked &a, Func out,
                            Var t, Halide::RVar d, int kvb, ValueTile vt,
                            attn::AttentionScheduleAttr s) {
  const int ve = vt.ve;
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
                  vt, br.qv, s.getUnrollPv());
}


/// Flash-style attention (see AttentionKernel): one task per (b, h, query
/// tile), run in parallel; `out` is specialised on the variant (few
/// queries, whole rows, blocked) and each branch computes only its own
/// variant, with its own query tile.
void scheduleAttention(attn::AttentionKernel &a,
                              attn::AttentionScheduleAttr s) {
  using Halide::RVar;
  int V = (int)s.getVector();
  int qkCols = (int)s.getRkv();
  int pvKeys = (int)s.getPv();
  Var ii("ii"), it("it"), e("e"), t("t");
  // The value head dim is static: vectorise it by what divides it.
  auto outType =
      llvm::cast<mlir::RankedTensorType>(a.op->getResult(0).getType());
  int dv = (int)outType.getDimSize(3), ve = vectorFor(dv, V);
  ValueTile vt{dv, ve, std::max((int)s.getRv() / ve, 1)};

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
  scheduleBlocked(a.blocked, a.out, t, a.d.x, a.kvb, vt, s);
  if (a.useFew.defined())
    scheduleBlocked(a.few, a.out, t, a.d.x, a.kvb, vt, s);

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
                  j, pvKeys, wr.pvRows, vt, wr.qv, s.getUnrollPv());
}

} // namespace attn::detail
