//===- ScheduleOps.cpp - attach a schedule attribute to every op ----------===//
#include "attn/Dialect/AttnOps.h"
#include "attn/Transforms/Passes.h"
#include "attn/Transforms/TargetDesc.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringSwitch.h"

namespace attn {
#define GEN_PASS_DEF_ATTNSCHEDULE
#include "attn/Transforms/Passes.h.inc"
} // namespace attn

using namespace mlir;
using namespace attn;

std::string attn::opDisplayName(Operation *op) {
  // The first DSL name and the first file location, looking through the
  // fused locations that the fusion passes give to the ops they create.
  std::string dslName;
  std::optional<unsigned> line;
  SmallVector<Location> work = {op->getLoc()};
  while (!work.empty()) {
    Location loc = work.pop_back_val();
    if (auto n = dyn_cast<NameLoc>(loc)) {
      if (dslName.empty())
        dslName = n.getName().str();
      work.push_back(n.getChildLoc());
    } else if (auto f = dyn_cast<FusedLoc>(loc)) {
      for (Location l : llvm::reverse(f.getLocations()))
        work.push_back(l);
    } else if (auto c = dyn_cast<CallSiteLoc>(loc)) {
      work.push_back(c.getCallee());
    } else if (auto f = dyn_cast<FileLineColLoc>(loc); f && !line) {
      line = f.getLine();
    }
  }
  std::string name;
  for (char c : dslName)
    name += std::isalnum((unsigned char)c) ? c : '_';
  if (!name.empty())
    name += "_";
  name += op->getName().stripDialect().str();
  if (line)
    name += "_L" + std::to_string(*line);
  return name;
}

namespace {

/// The largest power of two <= n (>= 1).
int64_t floorPow2(int64_t n) {
  int64_t p = 1;
  while (p * 2 <= n)
    p *= 2;
  return p;
}

class Scheduler {
public:
  Scheduler(MLIRContext *ctx, TargetDesc t) : ctx(ctx), b(ctx), t(t) {}

  /// The default schedule of `op`, or null for ops that compute nothing.
  ScheduleAttr scheduleFor(Operation *op) {
    if (isa<func::ReturnOp, func::FuncOp, CallOp>(op) ||
        op->getNumResults() == 0 || !isa<AttnDialect>(op->getDialect()))
      return {}; // a call runs its callee, scheduled on its own
    if (isa<LinearOp, FusedLinearOp, MultiLinearOp, MatmulOp>(op))
      return gemm();
    if (auto a = dyn_cast<AttentionOp>(op))
      return attention(a);
    if (isa<SplitHeadsOp, MergeHeadsOp, TransposeOp, SplitOp, CastOp,
            ConstantOp, CausalOp, SlidingWindowOp, PaddingOp, TensorMaskOp,
            MaskAndOp, SliceOp, ArangeOp, UnsqueezeOp>(op))
      return make("inline", {}, 1, {}, {});
    return rows(); // softmax, norms, rope, element-wise
  }

private:
  ScheduleAttr make(StringRef compute,
                    ArrayRef<std::pair<StringRef, int64_t>> tiles,
                    int64_t vector, ArrayRef<StringRef> parallel,
                    ArrayRef<std::pair<StringRef, int64_t>> unroll,
                    DictionaryAttr gpu = {}) {
    auto dict = [&](ArrayRef<std::pair<StringRef, int64_t>> entries) {
      SmallVector<NamedAttribute> attrs;
      for (auto [k, v] : entries)
        attrs.push_back(b.getNamedAttr(k, b.getI64IntegerAttr(v)));
      return b.getDictionaryAttr(attrs);
    };
    SmallVector<Attribute> par;
    for (StringRef p : parallel)
      par.push_back(b.getStringAttr(p));
    return ScheduleAttr::get(ctx, compute, dict(tiles), vector,
                             b.getArrayAttr(par), dict(unroll), gpu);
  }

  DictionaryAttr gpuMapping(ArrayRef<StringRef> blocks,
                            ArrayRef<StringRef> threads,
                            ArrayRef<StringRef> shared) {
    auto list = [&](ArrayRef<StringRef> names) {
      SmallVector<Attribute> attrs;
      for (StringRef n : names)
        attrs.push_back(b.getStringAttr(n));
      return b.getArrayAttr(attrs);
    };
    return b.getDictionaryAttr(
        {b.getNamedAttr("blocks", list(blocks)),
         b.getNamedAttr("threads", list(threads)),
         b.getNamedAttr("shared", list(shared))});
  }

  /// A register tile of 6 rows x `rn` outputs that uses 24 of 32 vector
  /// registers (AVX-512: 4 vectors wide) or 12 of 16 (AVX2: 2 vectors), so
  /// the loads and broadcasts have room. n blocks of one register tile: the
  /// block's packed panel (K x rn) is contiguous, and each parallel task owns
  /// one. k blocks (Goto's kc): the panel slice (k x rn) fills at most two
  /// thirds of L1, capped at 256. Row blocks (`m`, whose accumulators live
  /// in memory across the k blocks and get the epilogue after the last) are
  /// one register tile (larger blocks' accumulators and the panel slice
  /// overfill L1: benchmarks/schedule-notes.md).
  ScheduleAttr gemm() {
    if (t.gpu())
      return make("root", {{"m", 64}, {"n", 64}, {"k", 16}, {"rm", 4}, {"rn", 4}},
                  1, {}, {}, gpuMapping({"m", "n"}, {"rm", "rn"}, {"x", "w"}));
    int64_t rn = (t.registers >= 32 ? 4 : 2) * t.vector;
    int64_t rm = 6;
    int64_t kc =
        std::min<int64_t>(256, floorPow2(t.l1Bytes * 2 / 3 / (4 * rn)));
    // Fewer rows than one register tile (a decode step) take dot products
    // instead (`dot`): they read each weight row once, where the tiles
    // would pack the weights (read, write, read again) for a few rows.
    return make("root",
                {{"m", rm},
                 {"n", rn},
                 {"k", kc},
                 {"rm", rm},
                 {"rn", rn},
                 {"dot", rm}},
                t.vector, {"n"}, {{"rm", rm}});
  }

  /// Flash attention with an online softmax (see the Halide backend's
  /// AttentionKernel), derived from the register file, L1 and L2:
  /// - q.k register tile: `qv` vectors of query rows x `rkv` keys, the
  ///   accumulators using at most all but 8 registers, shaped for the most
  ///   FMAs per load (4 x 6 with 32 registers, 2 x 4 with 16); the query
  ///   tile is those qv vectors of rows, and `rqk` (the rows of one register
  ///   tile) is the whole tile (a power-of-two tile divides the usual
  ///   sequence lengths);
  /// - P.V register tile: `rq` rows x the value head dim (Dv / V vectors),
  ///   again all but 8 registers, rq dividing the query tile;
  /// - exp, row sum and P.V run over sub-blocks of `pv` keys whose
  ///   probabilities (q x pv floats) fill a quarter of L1, so they are
  ///   written and read back while in L1;
  /// - up to `rows` keys, the whole-row variant: a tile's scores for all
  ///   keys (q x Sk floats) fill a quarter of L2 (the rest holds K and V),
  ///   and one softmax pass per row needs no state update;
  /// - fewer than `few` queries (a decode step): the blocked variant with
  ///   tiles of one query row;
  /// - beyond, the blocked variant. There K and V of a head no longer stay
  ///   in L2 from one query tile to the next, and each tile streams them
  ///   from L3 once: its query tile `qb` is twice `q` (two q.k register
  ///   tiles of rows share each block of K and V), which halves that
  ///   traffic (the whole-row variant keeps `q`). Key blocks of `kv` keys
  ///   whose scores (qb x kv) and keys and values (kv x (Dk + Dv)) fill at
  ///   most half of L2, rounded down to a power of two, so that the
  ///   online-softmax state update after each block (one exp per output
  ///   element) is amortised over about a thousand keys.
  /// The measurements behind these choices: benchmarks/schedule-notes.md.
  /// Whether `op`'s mask is `causal` (without a start), alone or in `&`.
  static bool causalMask(AttentionOp op) {
    SmallVector<Value> work;
    if (op.getMask())
      work.push_back(op.getMask());
    while (!work.empty()) {
      Operation *def = work.pop_back_val().getDefiningOp();
      if (auto c = dyn_cast_or_null<CausalOp>(def); c && !c.getStart())
        return true;
      if (auto both = dyn_cast_or_null<MaskAndOp>(def))
        work.append({both.getLhs(), both.getRhs()});
    }
    return false;
  }

  ScheduleAttr attention(AttentionOp op) {
    if (t.gpu())
      return make("root", {{"q", 64}, {"kv", 64}, {"rq", 4}, {"rkv", 1}}, 1,
                  {}, {}, gpuMapping({"b", "h", "q"}, {"rq", "d"}, {"k", "v"}));
    int64_t acc = std::max<int64_t>(t.registers - 8, 1);
    // Per d the q.k tile loads qv vectors and broadcasts rkv keys for
    // qv * rkv FMAs: the most FMAs per load within acc accumulators, the
    // fewer rows on a tie (4 x 6 with 24, 2 x 4 with 8).
    int64_t qv = 1, rkv = acc;
    for (int64_t v = 2; v <= acc; ++v) {
      int64_t k = acc / v;
      if (v * k * (qv + rkv) > qv * rkv * (v + k))
        qv = v, rkv = k;
    }
    int64_t qt = qv * t.vector;
    int64_t dv = std::max<int64_t>(op.getValue().getType().getDimSize(3), 1);
    int64_t dvVectors = (dv + t.vector - 1) / t.vector;
    int64_t rq = std::max<int64_t>(std::min<int64_t>(acc / dvVectors, qt), 1);
    while (qt % rq)
      --rq;
    // A causal mask (queries at the end of the keys) shows a tile half the
    // keys on average: the whole-row variant's scores then fill the same
    // share of L2 at twice the keys.
    int64_t rows = t.l2Bytes / 4 / (4 * qt) * (causalMask(op) ? 2 : 1);
    int64_t qb = 2 * qt;
    int64_t dk = std::max<int64_t>(op.getKey().getType().getDimSize(3), 1);
    int64_t kv = std::max<int64_t>(
        floorPow2(t.l2Bytes / 2 / (4 * (qb + dk + dv))), rkv);
    int64_t pv = std::max<int64_t>(t.l1Bytes / 4 / (4 * qt), 1);
    // Fewer queries than `few` (decode) take tiles of one row: those read
    // K and V once per query, at about 1/V of the tile's rate per row (q.k
    // is not vectorised across rows), so they win below qb / V rows.
    int64_t few = std::max<int64_t>(qb / t.vector, 2);
    return make("root",
                {{"q", qt},
                 {"qb", qb},
                 {"few", few},
                 {"kv", kv},
                 {"pv", pv},
                 {"rq", rq},
                 {"rkv", rkv},
                 {"rqk", qt},
                 {"rows", rows}},
                t.vector, {"b", "h", "q"}, {{"rq", rq}, {"rkv", rkv}});
  }

  ScheduleAttr rows() {
    if (t.gpu())
      return make("root", {{"rows", 1}}, 1, {}, {},
                  gpuMapping({"rows"}, {"cols"}, {}));
    return make("root", {{"rows", 8}}, t.vector, {"rows"}, {});
  }

  MLIRContext *ctx;
  Builder b;
  TargetDesc t;
};

/// Applies one `key=value` override to `s`; `loops` are the loop names
/// that the op's kind schedules (the tile keys of its default schedule).
FailureOr<ScheduleAttr> applyOverride(ScheduleAttr s, StringRef key,
                                      StringRef value,
                                      ArrayRef<StringRef> loops,
                                      std::string &error) {
  MLIRContext *ctx = s.getContext();
  Builder b(ctx);
  StringRef compute = s.getCompute();
  DictionaryAttr tile = s.getTile(), unroll = s.getUnroll();
  int64_t vector = s.getVector();
  ArrayAttr parallel = s.getParallel();
  int64_t n = 0;
  bool isInt = !value.getAsInteger(10, n);
  auto setEntry = [&](DictionaryAttr d, StringRef loop) {
    NamedAttrList list(d);
    list.set(loop, b.getI64IntegerAttr(n));
    return list.getDictionary(ctx);
  };
  if (key == "compute") {
    compute = value;
  } else if (key == "vector" && isInt) {
    vector = n;
  } else if (key == "parallel") {
    SmallVector<Attribute> loops;
    SmallVector<StringRef> names;
    value.split(names, '+', -1, /*KeepEmpty=*/false);
    for (StringRef l : names)
      loops.push_back(b.getStringAttr(l));
    parallel = b.getArrayAttr(loops);
  } else if ((key.starts_with("tile.") || key.starts_with("unroll.")) &&
             !llvm::is_contained(loops, key.split('.').second)) {
    std::string valid;
    for (StringRef l : loops)
      valid += (valid.empty() ? "" : ", ") + l.str();
    error = "unknown loop '" + key.split('.').second.str() + "' in '" +
            key.str() + "' (this op's loops: " +
            (valid.empty() ? std::string("none") : valid) + ")";
    return failure();
  } else if (key.consume_front("tile.") && isInt) {
    tile = setEntry(tile, key);
  } else if (key.consume_front("unroll.") && isInt) {
    unroll = setEntry(unroll, key);
  } else {
    error = "unknown schedule key or non-integer value in '" + key.str() +
            "=" + value.str() +
            "' (keys: compute, vector, parallel, tile.LOOP, unroll.LOOP)";
    return failure();
  }
  // A value the attribute's verifier rejects (a size of 0, say): its
  // message becomes the override's error, reported at the op.
  ScheduleAttr updated;
  {
    ScopedDiagnosticHandler capture(ctx, [&](Diagnostic &d) {
      error = d.str();
      return success();
    });
    updated = ScheduleAttr::getChecked(
        [&]() { return emitError(UnknownLoc::get(ctx)); }, ctx, compute, tile,
        vector, parallel, unroll, s.getGpu());
  }
  if (!updated)
    return failure();
  return updated;
}

struct SchedulePass : attn::impl::AttnScheduleBase<SchedulePass> {
  using AttnScheduleBase::AttnScheduleBase;
  Scheduler *scheduler = nullptr; ///< during runOnOperation

  void runOnOperation() override {
    std::optional<TargetDesc::Family> family =
        TargetDesc::parseFamily(target);
    if (!family) {
      getOperation()->emitError()
          << "unknown schedule target '" << target << "' (expected one of "
          << TargetDesc::familyList() << ")";
      return signalPassFailure();
    }
    if (l1 < 0 || l2 < 0 || l3 < 0) {
      getOperation()->emitError() << "cache sizes must be >= 0 (0: the "
                                  << target << " table's)";
      return signalPassFailure();
    }
    TargetDesc info = TargetDesc::get(*family, l1, l2, l3);
    Scheduler scheduler(&getContext(), info);
    this->scheduler = &scheduler;
    getOperation()->walk([&](Operation *op) {
      if (op->hasAttr("attn.schedule"))
        return; // set by attn-fold-layout or by hand: keep it
      if (ScheduleAttr s = scheduler.scheduleFor(op))
        op->setAttr("attn.schedule", s);
    });
    for (const std::string &o : overrides)
      if (failed(applyOverrideSpec(o)))
        return signalPassFailure();
  }

  LogicalResult applyOverrideSpec(StringRef spec) {
    auto [name, settings] = spec.split(':');
    if (settings.empty()) {
      getOperation()->emitError()
          << "schedule override '" << spec
          << "' must look like NAME:key=value,key=value";
      return failure();
    }
    bool matched = false;
    WalkResult result = getOperation()->walk([&](Operation *op) {
      auto s = op->getAttrOfType<ScheduleAttr>("attn.schedule");
      if (!s || (opDisplayName(op) != name &&
                 op->getName().stripDialect() != name))
        return WalkResult::advance();
      matched = true;
      // Entries are separated by ',' or ';' (';' fits inside a pass-option
      // list, which is itself comma-separated).
      SmallVector<StringRef> entries, parts;
      settings.split(parts, ';', -1, /*KeepEmpty=*/false);
      for (StringRef part : parts)
        part.split(entries, ',', -1, /*KeepEmpty=*/false);
      for (StringRef entry : entries) {
        auto [key, value] = entry.split('=');
        std::string error;
        SmallVector<StringRef> loops;
        if (ScheduleAttr d = scheduler->scheduleFor(op))
          for (NamedAttribute t : d.getTile())
            loops.push_back(t.getName().strref());
        FailureOr<ScheduleAttr> updated =
            applyOverride(s, key.trim(), value.trim(), loops, error);
        if (failed(updated)) {
          op->emitError() << "schedule override for " << opDisplayName(op)
                          << ": "
                          << (error.empty() ? "invalid schedule" : error);
          return WalkResult::interrupt();
        }
        s = *updated;
      }
      op->setAttr("attn.schedule", s);
      return WalkResult::advance();
    });
    if (result.wasInterrupted())
      return failure();
    if (!matched) {
      getOperation()->emitError()
          << "schedule override '" << spec << "' names no op (use a name "
          << "printed by --emit=scheduled, or an op mnemonic)";
      return failure();
    }
    return success();
  }
};

} // namespace
