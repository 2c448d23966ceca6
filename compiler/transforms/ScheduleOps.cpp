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
  Scheduler(MLIRContext *ctx, TargetDesc t) : ctx(ctx), t(t) {}

  /// The default schedule of `op`, or null for ops that compute nothing.
  AttnScheduleAttrInterface scheduleFor(Operation *op) {
    if (isa<func::ReturnOp, func::FuncOp, CallOp>(op) ||
        op->getNumResults() == 0 || !isa<AttnDialect>(op->getDialect()))
      return {}; // a call runs its callee, scheduled on its own
    if (t.gpu())
      return GpuScheduleAttr::get(ctx, 16, 16);
    if (isa<LinearOp, FusedLinearOp, MultiLinearOp, MatmulOp>(op))
      return gemm();
    if (auto a = dyn_cast<AttentionOp>(op))
      return attention(a);
    if (isIndexMap(op))
      return InlineAttr::get(ctx);
    // softmax, norms, rope, element-wise
    return RowsScheduleAttr::get(ctx, ComputeKind::Root, 8, t.vector, true);
  }

private:
  /// A register tile of 6 rows x `rn` outputs that uses 24 of 32 vector
  /// registers (AVX-512: 4 vectors wide) or 12 of 16 (AVX2: 2 vectors), so
  /// the loads and broadcasts have room. n blocks of one register tile: the
  /// block's packed panel (K x rn) is contiguous, and each parallel task owns
  /// one. k blocks (Goto's kc): the panel slice (k x rn) fills at most two
  /// thirds of L1, capped at 256. Row blocks (`m`) are one register tile.
  /// Fewer rows than one register tile (a decode step) take dot products
  /// (`dot`): they read each weight row once, where the tiles would pack
  /// the weights (read, write, read again) for a few rows.
  GemmScheduleAttr gemm() {
    int64_t rn = (t.registers >= 32 ? 4 : 2) * t.vector;
    int64_t rm = 6;
    int64_t kc =
        std::min<int64_t>(256, floorPow2(t.l1Bytes * 2 / 3 / (4 * rn)));
    return GemmScheduleAttr::get(ctx, /*m=*/rm, /*n=*/rn, kc, rm, rn,
                                 /*dot=*/rm, t.vector, /*parallel=*/true,
                                 /*unroll=*/true);
  }

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

  /// Flash attention (AttentionScheduleAttr), derived from the register
  /// file, L1 and L2:
  /// - both register tiles hold at most three quarters of the vector
  ///   registers in accumulators (24 of 32, 12 of 16, as the GEMM's tile),
  ///   and the accumulators, the vectors a step loads (LLVM keeps them in
  ///   registers when several rows reuse them) and one broadcast fit the
  ///   register file;
  /// - the q.k register tile: `qv` vectors of query rows x `rkv` keys, for
  ///   the most FMAs per load; the query tile `q` is those qv vectors (`rqk`
  ///   = q);
  /// - the P.V register tile: `rq` rows (dividing q) x `rv` columns (whole
  ///   vectors dividing Dv), again for the most FMAs per load, the wider on
  ///   a tie (AVX-512 at Dv = 64: 4 x 64; AVX2: 6 x 16, four column blocks,
  ///   as 3 x 32 would need 17 registers);
  /// - `pv`: a sub-block's probabilities (q x pv floats) fill a quarter of L1;
  /// - `rows`: a tile's scores for all keys fill a quarter of L2 (twice the
  ///   keys under a causal mask, where a tile sees half of them);
  /// - `qb` = 2q, so two q.k tiles of rows share each streamed block of K
  ///   and V; `kv`: the block's scores and K and V fill half of L2;
  /// - `few` = qb / V: fewer queries take tiles of one row (decode).
  AttentionScheduleAttr attention(AttentionOp op) {
    int64_t acc = std::max<int64_t>(t.registers * 3 / 4, 1);
    // Per d the q.k tile loads qv vectors and broadcasts rkv keys for
    // qv * rkv FMAs: the most FMAs per load within acc accumulators, the
    // fewer rows on a tie (4 x 6 with 24, 3 x 4 with 12).
    auto fits = [&](int64_t accumulators, int64_t loads) {
      return accumulators <= acc && accumulators + loads + 1 <= t.registers;
    };
    int64_t qv = 1, rkv = 1;
    for (int64_t v = 1; v <= acc; ++v) {
      int64_t k = acc / v;
      while (k > 1 && !fits(v * k, v))
        --k;
      if (fits(v * k, v) && v * k * (qv + rkv) > qv * rkv * (v + k))
        qv = v, rkv = k;
    }
    int64_t qt = qv * t.vector;
    int64_t dv = std::max<int64_t>(op.getValue().getType().getDimSize(3), 1);
    int64_t dvVectors = (dv + t.vector - 1) / t.vector;
    // Per key the P.V tile loads c vectors of V and broadcasts r
    // probabilities for r * c FMAs.
    int64_t rq = 1, rvVectors = 1;
    for (int64_t c = 1; c <= dvVectors; ++c)
      for (int64_t r = 1; dvVectors % c == 0 && r <= qt && fits(r * c, c); ++r)
        if (qt % r == 0 && r * c * (rq + rvVectors) >= rq * rvVectors * (r + c))
          rq = r, rvVectors = c;
    int64_t rv = rvVectors * t.vector;
    int64_t rows = t.l2Bytes / 4 / (4 * qt) * (causalMask(op) ? 2 : 1);
    int64_t qb = 2 * qt;
    int64_t dk = std::max<int64_t>(op.getKey().getType().getDimSize(3), 1);
    int64_t kv = std::max<int64_t>(
        floorPow2(t.l2Bytes / 2 / (4 * (qb + dk + dv))), rkv);
    int64_t pv = std::max<int64_t>(t.l1Bytes / 4 / (4 * qt), 1);
    int64_t few = std::max<int64_t>(qb / t.vector, 2);
    return AttentionScheduleAttr::get(ctx, qt, qb, few, kv, pv, rq, rv, rkv,
                                      /*rqk=*/qt, rows, t.vector,
                                      /*parallel=*/true, /*unroll_qk=*/true,
                                      /*unroll_pv=*/true);
  }

  MLIRContext *ctx;
  TargetDesc t;
};

/// Parses one override value of a field of kind `kind`.
std::optional<int64_t> parseFieldValue(ScheduleField::Kind kind,
                                       StringRef value) {
  using Kind = ScheduleField::Kind;
  if (kind == Kind::Flag)
    return llvm::StringSwitch<std::optional<int64_t>>(value)
        .Cases("true", "1", 1)
        .Cases("false", "0", 0)
        .Default(std::nullopt);
  if (kind == Kind::Compute) {
    std::optional<ComputeKind> c = symbolizeComputeKind(value);
    return c ? std::optional<int64_t>((int64_t)*c) : std::nullopt;
  }
  int64_t n;
  if (value.getAsInteger(10, n))
    return std::nullopt;
  return n;
}

/// `s` with the `key=value` entries of `entries` applied together (the
/// verifier sees the result, not each step); `error` says what is wrong.
/// `tile.KEY` is accepted for `KEY` (the spelling of earlier releases).
AttnScheduleAttrInterface applyOverrides(AttnScheduleAttrInterface s,
                                         ArrayRef<StringRef> entries,
                                         std::string &error) {
  SmallVector<ScheduleField> fields = s.getFields();
  SmallVector<int64_t> values;
  for (const ScheduleField &f : fields)
    values.push_back(f.value);
  for (StringRef entry : entries) {
    auto [key, value] = entry.split('=');
    key = key.trim();
    value = value.trim();
    key.consume_front("tile.");
    auto *f = llvm::find_if(
        fields, [&](const ScheduleField &f) { return f.key == key; });
    if (f == fields.end()) {
      std::string valid;
      for (const ScheduleField &f : fields)
        valid += (valid.empty() ? "" : ", ") + f.key.str();
      error = "unknown key '" + key.str() + "' for #" +
              Attribute(s).getAbstractAttribute().getName().str() +
              " (valid keys: " +
              (valid.empty() ? std::string("none") : valid) + ")";
      return {};
    }
    std::optional<int64_t> v = parseFieldValue(f->kind, value);
    if (!v) {
      static const char *spelled[] = {"an integer", "true or false",
                                      "root or inline"};
      error = "'" + entry.trim().str() + "': " + key.str() + " takes " +
              spelled[(int)f->kind];
      return {};
    }
    values[f - fields.begin()] = *v;
  }
  MLIRContext *ctx = s.getContext();
  ScopedDiagnosticHandler capture(ctx, [&](Diagnostic &d) {
    error = d.str();
    return success();
  });
  return dyn_cast_or_null<AttnScheduleAttrInterface>(s.withFields(
      values, [&]() { return emitError(UnknownLoc::get(ctx)); }));
}

struct SchedulePass : attn::impl::AttnScheduleBase<SchedulePass> {
  using AttnScheduleBase::AttnScheduleBase;

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
    getOperation()->walk([&](Operation *op) {
      // Set by attn-fold-layout or by hand: kept if the target can run it.
      Attribute given = op->getAttr("attn.schedule");
      if (given && info.gpu() == isa<GpuScheduleAttr>(given))
        return;
      if (AttnScheduleAttrInterface s = scheduler.scheduleFor(op))
        op->setAttr("attn.schedule", s);
    });
    for (const std::string &o : overrides)
      if (failed(applyOverrideSpec(o, info)))
        return signalPassFailure();
  }

  LogicalResult applyOverrideSpec(StringRef spec, const TargetDesc &target) {
    auto [name, settings] = spec.split(':');
    if (settings.empty()) {
      getOperation()->emitError()
          << "schedule override '" << spec
          << "' must look like NAME:key=value,key=value";
      return failure();
    }
    // Entries are separated by ',' or ';' (';' fits inside a pass-option
    // list, which is itself comma-separated).
    SmallVector<StringRef> entries, parts;
    settings.split(parts, ';', -1, /*KeepEmpty=*/false);
    for (StringRef part : parts)
      part.split(entries, ',', -1, /*KeepEmpty=*/false);
    bool matched = false;
    WalkResult result = getOperation()->walk([&](Operation *op) {
      auto s = op->getAttrOfType<AttnScheduleAttrInterface>("attn.schedule");
      if (!s || (opDisplayName(op) != name &&
                 op->getName().stripDialect() != name))
        return WalkResult::advance();
      matched = true;
      std::string error;
      AttnScheduleAttrInterface updated = applyOverrides(s, entries, error);
      if (!updated || failed(checkTarget(op, updated, target))) {
        if (!updated)
          op->emitError() << "schedule override for " << opDisplayName(op)
                          << ": "
                          << (error.empty() ? "invalid schedule" : error);
        return WalkResult::interrupt();
      }
      op->setAttr("attn.schedule", updated);
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

  /// The register tiles of `s` fit the target's register file.
  LogicalResult checkTarget(Operation *op, AttnScheduleAttrInterface s,
                            const TargetDesc &target) {
    if (target.gpu())
      return success();
    return s.verifyRegisters(op, target.registers, target.vector, [&]() {
      return op->emitError() << "schedule of " << opDisplayName(op)
                             << " on " << target.name() << ": ";
    });
  }
};

} // namespace
