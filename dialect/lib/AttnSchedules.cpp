//===- AttnSchedules.cpp - The typed schedule attributes ------------------===//
//
// The verifiers (the rules that span fields) and the field views behind
// AttnScheduleAttrInterface, one block per op family's attribute.
//
//===----------------------------------------------------------------------===//
#include "attn/Dialect/AttnDialect.h"
#include "attn/Dialect/AttnOps.h"

using namespace mlir;
using namespace attn;

#include "attn/Dialect/AttnAttrInterfaces.cpp.inc"

namespace {

using Emit = function_ref<InFlightDiagnostic()>;
using Kind = ScheduleField::Kind;

/// The largest size a field may hold: schedules index with 32-bit ints.
constexpr int64_t kMaxSize = int64_t(1) << 30;

/// A size field and the smallest value it may take.
struct Size {
  StringRef key;
  int64_t value, min;
};

LogicalResult checkRanges(Emit emitError, StringRef attr,
                          ArrayRef<Size> sizes) {
  for (const Size &s : sizes)
    if (s.value < s.min || s.value > kMaxSize)
      return emitError() << "#attn." << attr << ": " << s.key << " = "
                         << s.value << " is out of range (" << s.min
                         << " to " << kMaxSize << ")";
  return success();
}

/// `a` (key: value) divides `b`.
LogicalResult checkDivides(Emit emitError, StringRef attr, Size a, Size b) {
  if (b.value % a.value == 0)
    return success();
  return emitError() << "#attn." << attr << ": " << a.key << " = " << a.value
                     << " must divide " << b.key << " = " << b.value;
}

/// The vector registers (of `lanes` f32) that `n` values take in vectors of
/// `vector` lanes.
int64_t registersFor(int64_t n, int64_t vector, int64_t lanes) {
  return (n + vector - 1) / vector * ((vector + lanes - 1) / lanes);
}

/// A register tile of `accumulators` registers fits when one broadcast and
/// one load register remain (an FMA can take its third operand from memory).
LogicalResult checkFits(Emit emitError, StringRef attr, StringRef tile,
                        int64_t accumulators, int64_t registers) {
  if (accumulators + 2 <= registers)
    return success();
  return emitError() << "#attn." << attr << ": the " << tile << " needs "
                     << accumulators << " accumulator registers, and the "
                     << "target has " << registers
                     << " vector registers (2 stay free for the operands)";
}

bool hasOwnKernel(Operation *op) {
  return isa<LinearOp, FusedLinearOp, MultiLinearOp, MatmulOp, AttentionOp>(
      op);
}

} // namespace

//===----------------------------------------------------------------------===//
// #attn.gemm_schedule
//===----------------------------------------------------------------------===//

LogicalResult GemmScheduleAttr::verify(Emit emitError, int64_t m, int64_t n,
                                       int64_t k, int64_t rm, int64_t rn,
                                       int64_t dot, int64_t vector, bool,
                                       bool) {
  StringRef a = "gemm_schedule";
  Size sm{"m", m, 1}, sn{"n", n, 1}, srm{"rm", rm, 1}, srn{"rn", rn, 1},
      sv{"vector", vector, 1};
  if (failed(checkRanges(emitError, a,
                         {sm, sn, {"k", k, 1}, srm, srn, {"dot", dot, 0}, sv})))
    return failure();
  if (failed(checkDivides(emitError, a, srm, sm)) ||
      failed(checkDivides(emitError, a, srn, sn)) ||
      failed(checkDivides(emitError, a, sv, srn)))
    return failure();
  return success();
}

ComputeKind GemmScheduleAttr::getComputeKind() const {
  return ComputeKind::Root;
}

SmallVector<ScheduleField> GemmScheduleAttr::getFields() const {
  return {{"m", Kind::Size, getM()},
          {"n", Kind::Size, getN()},
          {"k", Kind::Size, getK()},
          {"rm", Kind::Size, getRm()},
          {"rn", Kind::Size, getRn()},
          {"dot", Kind::Size, getDot()},
          {"vector", Kind::Size, getVector()},
          {"parallel", Kind::Flag, getParallel()},
          {"unroll", Kind::Flag, getUnroll()}};
}

Attribute GemmScheduleAttr::withFields(ArrayRef<int64_t> v, Emit emitError) const {
  return getChecked(emitError, getContext(), v[0], v[1], v[2], v[3], v[4],
                    v[5], v[6], v[7] != 0, v[8] != 0);
}

bool GemmScheduleAttr::appliesTo(Operation *op) const {
  return isa<LinearOp, FusedLinearOp, MultiLinearOp, MatmulOp>(op);
}

LogicalResult GemmScheduleAttr::verifyRegisters(Operation *, int64_t registers,
                                                int64_t lanes,
                                                Emit emitError) const {
  return checkFits(emitError, "gemm_schedule", "rm x rn register tile",
                   getRm() * registersFor(getRn(), getVector(), lanes),
                   registers);
}

//===----------------------------------------------------------------------===//
// #attn.attention_schedule
//===----------------------------------------------------------------------===//

LogicalResult AttentionScheduleAttr::verify(
    Emit emitError, int64_t q, int64_t qb, int64_t few, int64_t kv, int64_t pv,
    int64_t rq, int64_t rv, int64_t rkv, int64_t rqk, int64_t rows,
    int64_t vector, bool, bool, bool) {
  StringRef a = "attention_schedule";
  Size sq{"q", q, 1}, sqb{"qb", qb, 1}, srqk{"rqk", rqk, 1},
      sv{"vector", vector, 1}, srv{"rv", rv, 1};
  if (failed(checkRanges(emitError, a,
                         {sq, sqb, {"few", few, 0}, {"kv", kv, 1},
                          {"pv", pv, 1}, {"rq", rq, 1}, srv, {"rkv", rkv, 1},
                          srqk,
                          {"rows", rows, 0}, sv})))
    return failure();
  // The q.k register tile splits both query tiles evenly, in whole vectors.
  if (failed(checkDivides(emitError, a, srqk, sq)) ||
      failed(checkDivides(emitError, a, srqk, sqb)))
    return failure();
  if (rqk >= vector && failed(checkDivides(emitError, a, sv, srqk)))
    return failure();
  // The P.V register tile's columns are whole vectors.
  if (rv >= vector && failed(checkDivides(emitError, a, sv, srv)))
    return failure();
  return success();
}

ComputeKind AttentionScheduleAttr::getComputeKind() const {
  return ComputeKind::Root;
}

SmallVector<ScheduleField> AttentionScheduleAttr::getFields() const {
  return {{"q", Kind::Size, getQ()},
          {"qb", Kind::Size, getQb()},
          {"few", Kind::Size, getFew()},
          {"kv", Kind::Size, getKv()},
          {"pv", Kind::Size, getPv()},
          {"rq", Kind::Size, getRq()},
          {"rv", Kind::Size, getRv()},
          {"rkv", Kind::Size, getRkv()},
          {"rqk", Kind::Size, getRqk()},
          {"rows", Kind::Size, getRows()},
          {"vector", Kind::Size, getVector()},
          {"parallel", Kind::Flag, getParallel()},
          {"unroll_qk", Kind::Flag, getUnrollQk()},
          {"unroll_pv", Kind::Flag, getUnrollPv()}};
}

Attribute AttentionScheduleAttr::withFields(ArrayRef<int64_t> v,
                                            Emit emitError) const {
  return getChecked(emitError, getContext(), v[0], v[1], v[2], v[3], v[4],
                    v[5], v[6], v[7], v[8], v[9], v[10], v[11] != 0,
                    v[12] != 0, v[13] != 0);
}

bool AttentionScheduleAttr::appliesTo(Operation *op) const {
  return isa<AttentionOp>(op);
}

LogicalResult AttentionScheduleAttr::verifyRegisters(Operation *op,
                                                     int64_t registers,
                                                     int64_t lanes,
                                                     Emit emitError) const {
  StringRef a = "attention_schedule";
  int64_t qk = registersFor(getRqk(), getVector(), lanes) * getRkv();
  if (failed(checkFits(emitError, a, "rqk x rkv register tile", qk,
                       registers)))
    return failure();
  // The tile's columns: rv, or the whole value head dim when narrower.
  int64_t dv = cast<AttentionOp>(op).getValue().getType().getDimSize(3);
  int64_t cols = ShapedType::isDynamic(dv) ? getRv() : std::min(dv, getRv());
  return checkFits(emitError, a, "rq x rv register tile",
                   getRq() * registersFor(cols, getVector(), lanes),
                   registers);
}

//===----------------------------------------------------------------------===//
// #attn.rows_schedule
//===----------------------------------------------------------------------===//

LogicalResult RowsScheduleAttr::verify(Emit emitError, ComputeKind,
                                       int64_t rows, int64_t vector, bool) {
  return checkRanges(emitError, "rows_schedule",
                     {{"rows", rows, 1}, {"vector", vector, 1}});
}

ComputeKind RowsScheduleAttr::getComputeKind() const { return getCompute(); }

SmallVector<ScheduleField> RowsScheduleAttr::getFields() const {
  return {{"compute", Kind::Compute, (int64_t)getCompute()},
          {"rows", Kind::Size, getRows()},
          {"vector", Kind::Size, getVector()},
          {"parallel", Kind::Flag, getParallel()}};
}

Attribute RowsScheduleAttr::withFields(ArrayRef<int64_t> v,
                                       Emit emitError) const {
  return getChecked(emitError, getContext(), (ComputeKind)v[0], v[1], v[2],
                    v[3] != 0);
}

bool RowsScheduleAttr::appliesTo(Operation *op) const {
  return !hasOwnKernel(op);
}

//===----------------------------------------------------------------------===//
// #attn.gpu_schedule
//===----------------------------------------------------------------------===//

LogicalResult GpuScheduleAttr::verify(Emit emitError, int64_t x, int64_t y) {
  if (failed(checkRanges(emitError, "gpu_schedule",
                         {{"x", x, 1}, {"y", y, 1}})))
    return failure();
  if (x * y > 1024)
    return emitError() << "#attn.gpu_schedule: x * y = " << x * y
                       << " threads exceed a GPU block's 1024";
  return success();
}

ComputeKind GpuScheduleAttr::getComputeKind() const {
  return ComputeKind::Root;
}

SmallVector<ScheduleField> GpuScheduleAttr::getFields() const {
  return {{"x", Kind::Size, getX()}, {"y", Kind::Size, getY()}};
}

Attribute GpuScheduleAttr::withFields(ArrayRef<int64_t> v,
                                      Emit emitError) const {
  return getChecked(emitError, getContext(), v[0], v[1]);
}

bool GpuScheduleAttr::appliesTo(Operation *) const { return true; }

//===----------------------------------------------------------------------===//
// #attn.inline
//===----------------------------------------------------------------------===//

ComputeKind InlineAttr::getComputeKind() const { return ComputeKind::Inline; }

SmallVector<ScheduleField> InlineAttr::getFields() const { return {}; }

Attribute InlineAttr::withFields(ArrayRef<int64_t>, Emit) const {
  return *this;
}

bool InlineAttr::appliesTo(Operation *op) const { return !hasOwnKernel(op); }
