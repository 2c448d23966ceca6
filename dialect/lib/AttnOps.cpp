//===- AttnOps.cpp - Type inference, verifiers and folders of attn ops ----===//
#include "attn/Dialect/AttnOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/STLExtras.h"

#include <cmath>

using namespace mlir;
using namespace attn;

//===----------------------------------------------------------------------===//
// Shape helpers
//===----------------------------------------------------------------------===//

static bool compatible(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}

/// The dim that agrees with both `a` and `b` (the static one if any).
static int64_t join(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) ? b : a;
}

std::string attn::shapeString(ArrayRef<int64_t> shape) {
  std::string s = "[";
  for (auto [i, d] : llvm::enumerate(shape)) {
    if (i)
      s += ", ";
    s += ShapedType::isDynamic(d) ? std::string("?") : std::to_string(d);
  }
  return s + "]";
}

LogicalResult attn::broadcastShapes(ArrayRef<int64_t> a, ArrayRef<int64_t> b,
                                    SmallVectorImpl<int64_t> &result) {
  size_t rank = std::max(a.size(), b.size());
  result.assign(rank, 1);
  for (size_t i = 0; i < rank; ++i) {
    int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da == 1)
      result[i] = db;
    else if (db == 1)
      result[i] = da;
    else if (compatible(da, db))
      result[i] = join(da, db);
    else
      return failure();
  }
  return success();
}

static RankedTensorType tensorOf(Value v) {
  return cast<RankedTensorType>(v.getType());
}

static RankedTensorType f32Tensor(ArrayRef<int64_t> shape, MLIRContext *ctx) {
  return RankedTensorType::get(shape, Float32Type::get(ctx));
}

/// Checks that `value` broadcasts to exactly `target` (NumPy rules, no
/// growing of the target).
static LogicalResult broadcastsTo(ArrayRef<int64_t> value,
                                  ArrayRef<int64_t> target) {
  if (value.size() > target.size())
    return failure();
  SmallVector<int64_t> joined;
  if (failed(broadcastShapes(value, target, joined)))
    return failure();
  for (auto [j, t] : llvm::zip(joined, target))
    if (!compatible(j, t))
      return failure();
  return success();
}

LogicalResult attn::verifyMaskFor(Value mask, ArrayRef<int64_t> scores,
                                  Location loc) {
  Operation *def = mask.getDefiningOp();
  if (!def)
    return success();
  if (scores.size() < 2)
    return emitError(loc) << "a mask needs scores of rank >= 2, got "
                          << shapeString(scores);
  if (auto both = dyn_cast<MaskAndOp>(def))
    return success(succeeded(verifyMaskFor(both.getLhs(), scores, loc)) &&
                   succeeded(verifyMaskFor(both.getRhs(), scores, loc)));
  if (auto t = dyn_cast<TensorMaskOp>(def)) {
    ArrayRef<int64_t> keep = tensorOf(t.getKeep()).getShape();
    if (failed(broadcastsTo(keep, scores)))
      return emitError(loc) << "mask of shape " << shapeString(keep)
                            << " does not broadcast to the scores "
                            << shapeString(scores);
  }
  if (auto p = dyn_cast<PaddingOp>(def)) {
    if (scores.size() < 3)
      return emitError(loc) << "a padding mask needs scores of rank >= 3 "
                               "with the batch in dim 0, got "
                            << shapeString(scores);
    int64_t b = tensorOf(p.getLengths()).getDimSize(0);
    if (!compatible(b, scores[0]))
      return emitError(loc) << "padding lengths have " << b
                            << " entries but the batch is " << scores[0];
  }
  return success();
}

//===----------------------------------------------------------------------===//
// Element-wise ops
//===----------------------------------------------------------------------===//

template <typename Adaptor>
static LogicalResult inferBroadcast(MLIRContext *, std::optional<Location> loc,
                                    Adaptor adaptor,
                                    SmallVectorImpl<Type> &results) {
  RankedTensorType a = tensorOf(adaptor.getLhs()), b = tensorOf(adaptor.getRhs());
  if (a.getElementType() != b.getElementType())
    return emitOptionalError(loc, "operands have different element types, ",
                             a.getElementType(), " and ", b.getElementType(),
                             " (cast one first)");
  SmallVector<int64_t> shape;
  if (failed(broadcastShapes(a.getShape(), b.getShape(), shape)))
    return emitOptionalError(loc, "cannot broadcast ", shapeString(a.getShape()),
                             " with ", shapeString(b.getShape()));
  results.push_back(RankedTensorType::get(shape, a.getElementType()));
  return success();
}

#define ATTN_BROADCAST_OP(OP)                                                  \
  LogicalResult OP::inferReturnTypes(MLIRContext *ctx,                         \
                                     std::optional<Location> loc,              \
                                     Adaptor adaptor,                          \
                                     SmallVectorImpl<Type> &results) {         \
    return inferBroadcast(ctx, loc, adaptor, results);                         \
  }
ATTN_BROADCAST_OP(AddOp)
ATTN_BROADCAST_OP(SubOp)
ATTN_BROADCAST_OP(MulOp)
ATTN_BROADCAST_OP(DivOp)
ATTN_BROADCAST_OP(AndOp)
ATTN_BROADCAST_OP(OrOp)
ATTN_BROADCAST_OP(MinOp)
ATTN_BROADCAST_OP(MaxOp)
#undef ATTN_BROADCAST_OP

LogicalResult CmpOp::inferReturnTypes(MLIRContext *ctx,
                                      std::optional<Location> loc,
                                      Adaptor adaptor,
                                      SmallVectorImpl<Type> &results) {
  if (failed(inferBroadcast(ctx, loc, adaptor, results)))
    return failure();
  results.back() =
      cast<RankedTensorType>(results.back()).clone(IntegerType::get(ctx, 1));
  return success();
}

LogicalResult SelectOp::inferReturnTypes(MLIRContext *ctx,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &results) {
  if (failed(inferBroadcast(ctx, loc, adaptor, results)))
    return failure();
  ArrayRef<int64_t> c = tensorOf(adaptor.getCond()).getShape();
  auto ab = cast<RankedTensorType>(results.back());
  SmallVector<int64_t> shape;
  if (failed(broadcastShapes(c, ab.getShape(), shape)))
    return emitOptionalError(loc, "cannot broadcast the condition ",
                             shapeString(c), " with ",
                             shapeString(ab.getShape()));
  results.back() = ab.clone(shape);
  return success();
}

//===----------------------------------------------------------------------===//
// Reductions, gathers, index values and slices
//===----------------------------------------------------------------------===//

LogicalResult CacheWriteOp::inferReturnTypes(MLIRContext *ctx,
                                             std::optional<Location>,
                                             Adaptor adaptor,
                                             SmallVectorImpl<Type> &results) {
  results.push_back(
      f32Tensor(tensorOf(adaptor.getCache()).getShape(), ctx));
  return success();
}

LogicalResult CacheWriteOp::verify() {
  ArrayRef<int64_t> c = getCache().getType().getShape(),
                    n = getNewRows().getType().getShape();
  if (c.size() != 4 || n.size() != 4 || !compatible(c[0], n[0]) ||
      !compatible(c[1], n[1]) || !compatible(c[3], n[3]))
    return emitOpError("cache ")
           << shapeString(c) << " and new rows " << shapeString(n)
           << " must be [B, H, T, D] and [B, H, S, D]";
  if (!compatible(getStart().getType().getDimSize(0), c[0]))
    return emitOpError("start ")
           << shapeString(getStart().getType().getShape())
           << " must be [B] for the cache " << shapeString(c);
  auto arg = dyn_cast<BlockArgument>(getCache());
  auto fn = arg ? dyn_cast<func::FuncOp>(arg.getOwner()->getParentOp())
                : func::FuncOp();
  if (!fn || !fn.getArgAttr(arg.getArgNumber(), "attn.inout"))
    return emitOpError("writes a cache that is not an inout argument of "
                       "the model");
  return success();
}

/// True if `a` may be passed where `b` is declared (ranks and element types
/// equal, static dims equal where both are static).
static bool conforms(Type a, Type b) {
  auto ta = cast<RankedTensorType>(a), tb = cast<RankedTensorType>(b);
  if (ta.getElementType() != tb.getElementType() ||
      ta.getRank() != tb.getRank())
    return false;
  for (auto [x, y] : llvm::zip(ta.getShape(), tb.getShape()))
    if (!compatible(x, y))
      return false;
  return true;
}

LogicalResult CallOp::verify() {
  auto fn = SymbolTable::lookupNearestSymbolFrom<func::FuncOp>(
      *this, getCalleeAttr());
  if (!fn)
    return emitOpError("calls unknown model @") << getCallee();
  FunctionType type = fn.getFunctionType();
  size_t nArgs = getArgs().size(), nParams = getParams().size();
  if (type.getNumInputs() != nArgs + nParams)
    return emitOpError("passes ")
           << nArgs << " arguments and " << nParams << " params, but @"
           << getCallee() << " takes " << type.getNumInputs() << " in all";
  for (auto [i, v] : llvm::enumerate(getOperands()))
    if (!conforms(v.getType(), type.getInput(i)))
      return emitOpError("operand ")
             << i << " is " << v.getType() << " but @" << getCallee()
             << " expects " << type.getInput(i);
  if (type.getNumResults() != getNumResults())
    return emitOpError("has ") << getNumResults() << " results but @"
                               << getCallee() << " returns "
                               << type.getNumResults();
  for (auto [i, r] : llvm::enumerate(getResults()))
    if (!conforms(r.getType(), type.getResult(i)))
      return emitOpError("result ")
             << i << " is " << r.getType() << " but @" << getCallee()
             << " returns " << type.getResult(i);
  return success();
}

LogicalResult ReduceOp::inferReturnTypes(MLIRContext *,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &results) {
  RankedTensorType x = tensorOf(adaptor.getX());
  int64_t dim = adaptor.getDim(), rank = x.getRank();
  if (dim < 0 || dim >= rank)
    return emitOptionalError(loc, "reduce: dim ", dim, " is out of range for ",
                             shapeString(x.getShape()));
  SmallVector<int64_t> shape(x.getShape());
  if (adaptor.getKeepdim())
    shape[dim] = 1;
  else
    shape.erase(shape.begin() + dim);
  results.push_back(x.clone(shape));
  return success();
}

LogicalResult ReduceOp::verify() {
  bool isInt = getX().getType().getElementType().isInteger(32);
  if (isInt && (getKind() == ReduceKind::sum || getKind() == ReduceKind::mean))
    return emitOpError("sum and mean need f32, got ")
           << getX().getType().getElementType();
  return success();
}

LogicalResult MeanPoolOp::inferReturnTypes(MLIRContext *,
                                           std::optional<Location> loc,
                                           Adaptor adaptor,
                                           SmallVectorImpl<Type> &results) {
  RankedTensorType x = tensorOf(adaptor.getX());
  ArrayRef<int64_t> s = x.getShape(), l = tensorOf(adaptor.getLengths()).getShape();
  if (s.size() < 2)
    return emitOptionalError(loc, "mean_pool needs x of shape [B, S, ...], got ",
                             shapeString(s));
  if (!compatible(l[0], s[0]))
    return emitOptionalError(loc, "mean_pool: lengths ", shapeString(l),
                             " do not match the batch of x ", shapeString(s));
  SmallVector<int64_t> shape(s);
  shape.erase(shape.begin() + 1);
  results.push_back(x.clone(shape));
  return success();
}

LogicalResult EmbeddingOp::inferReturnTypes(MLIRContext *ctx,
                                            std::optional<Location>,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &results) {
  SmallVector<int64_t> shape(tensorOf(adaptor.getIds()).getShape());
  shape.push_back(tensorOf(adaptor.getTable()).getDimSize(1));
  results.push_back(f32Tensor(shape, ctx));
  return success();
}

LogicalResult UnsqueezeOp::inferReturnTypes(MLIRContext *,
                                            std::optional<Location> loc,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &results) {
  RankedTensorType x = tensorOf(adaptor.getX());
  int64_t d = adaptor.getDim();
  if (d < 0 || d > x.getRank())
    return emitOptionalError(loc, "unsqueeze: dim ", d, " is out of range for ",
                             shapeString(x.getShape()));
  SmallVector<int64_t> shape(x.getShape());
  shape.insert(shape.begin() + d, 1);
  results.push_back(x.clone(shape));
  return success();
}

LogicalResult ArangeOp::verify() {
  if (getSize().has_value() == getSym().has_value())
    return emitOpError("needs exactly one of size and sym");
  int64_t n = getType().getDimSize(0);
  if (getSize() && n != *getSize())
    return emitOpError("size ") << *getSize() << " does not match the type "
                                << getType();
  if (getSym() && !ShapedType::isDynamic(n))
    return emitOpError("with a symbolic size has a dynamic result, got ")
           << getType();
  return success();
}

LogicalResult SliceOp::verify() {
  RankedTensorType x = getX().getType(), r = getType();
  int64_t dim = getDim(), rank = x.getRank();
  if (dim < 0 || dim >= rank)
    return emitOpError("dim ") << dim << " is out of range for "
                               << shapeString(x.getShape());
  if (x.getElementType() != r.getElementType())
    return emitOpError("changes the element type");
  if (getDrop() && (getStop() || getStopSym()))
    return emitOpError("drop takes one position: no stop");
  if (getStop() && getStopSym())
    return emitOpError("takes a static stop or a symbolic one, not both");
  SmallVector<int64_t> want(x.getShape());
  int64_t n = want[dim];
  if (getDrop()) {
    want.erase(want.begin() + dim);
  } else {
    int64_t start = getStart();
    if (start < 0 && !ShapedType::isDynamic(n))
      start += n;
    int64_t stop = getStop() ? *getStop() : n;
    if (stop < 0 && !ShapedType::isDynamic(n))
      stop += n;
    bool known = !getStopSym() && start >= 0 && stop >= 0 &&
                 !ShapedType::isDynamic(stop);
    if (known && (stop < start || (!ShapedType::isDynamic(n) && stop > n)))
      return emitOpError("range ")
             << getStart() << ":" << stop << " is out of bounds for "
             << shapeString(x.getShape());
    want[dim] = known ? stop - start : ShapedType::kDynamic;
  }
  if (r.getShape() != ArrayRef<int64_t>(want))
    return emitOpError("result ")
           << shapeString(r.getShape()) << " should be "
           << shapeString(want);
  return success();
}

/// True if `attr` is a scalar constant equal to `value`.
static bool isConstant(Attribute attr, double value) {
  auto f = dyn_cast_or_null<FloatAttr>(attr);
  return f && f.getValueAsDouble() == value;
}

/// `x op c` folds to `x` when c is the identity and no broadcast happens.
template <typename Op>
static OpFoldResult foldIdentity(Op op, Attribute rhs, double identity) {
  if (isConstant(rhs, identity) && op.getLhs().getType() == op.getType())
    return op.getLhs();
  return {};
}

OpFoldResult AddOp::fold(FoldAdaptor adaptor) {
  if (isConstant(adaptor.getLhs(), 0.0) && getRhs().getType() == getType())
    return getRhs();
  return foldIdentity(*this, adaptor.getRhs(), 0.0);
}

OpFoldResult MulOp::fold(FoldAdaptor adaptor) {
  if (isConstant(adaptor.getLhs(), 1.0) && getRhs().getType() == getType())
    return getRhs();
  return foldIdentity(*this, adaptor.getRhs(), 1.0);
}

OpFoldResult DivOp::fold(FoldAdaptor adaptor) {
  return foldIdentity(*this, adaptor.getRhs(), 1.0);
}

OpFoldResult ConstantOp::fold(FoldAdaptor) { return getValueAttr(); }

LogicalResult ConstantOp::verify() {
  if (!getType().getElementType().isInteger(32))
    return success();
  double v = getValue().convertToDouble();
  if (v != std::trunc(v) || v < INT32_MIN || v > INT32_MAX)
    return emitOpError() << "an i32 constant must be an integer in the i32 "
                            "range, got "
                         << v;
  return success();
}

OpFoldResult CastOp::fold(FoldAdaptor) {
  if (getInput().getType() == getType())
    return getInput();
  return {};
}

//===----------------------------------------------------------------------===//
// Projections and layout
//===----------------------------------------------------------------------===//

/// The result type of `x @ weight^T + bias` (bias may be null).
static LogicalResult inferLinear(MLIRContext *ctx, std::optional<Location> loc,
                                 Value xValue, Value weight, Value bias,
                                 SmallVectorImpl<Type> &results) {
  ArrayRef<int64_t> x = tensorOf(xValue).getShape();
  ArrayRef<int64_t> w = tensorOf(weight).getShape();
  if (x.empty())
    return emitOptionalError(loc, "linear needs x of rank >= 1, got []");
  if (w.size() != 2)
    return emitOptionalError(loc, "linear needs a weight of rank 2 [out, in], "
                                  "got ",
                             shapeString(w));
  if (!compatible(x.back(), w[1]))
    return emitOptionalError(loc, "linear: x is ", shapeString(x),
                             " but the weight is ", shapeString(w),
                             "; x's last dim must equal the weight's dim 1 "
                             "(PyTorch layout [out, in])");
  if (bias) {
    ArrayRef<int64_t> bs = tensorOf(bias).getShape();
    if (bs.size() != 1 || !compatible(bs[0], w[0]))
      return emitOptionalError(loc, "linear: the bias is ", shapeString(bs),
                               " but the weight is ", shapeString(w),
                               "; expected [", w[0], "]");
  }
  SmallVector<int64_t> shape(x.drop_back());
  shape.push_back(w[0]);
  results.push_back(f32Tensor(shape, ctx));
  return success();
}

LogicalResult LinearOp::inferReturnTypes(MLIRContext *ctx,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &results) {
  return inferLinear(ctx, loc, adaptor.getX(), adaptor.getWeight(),
                     adaptor.getBias(), results);
}

LogicalResult MatmulOp::inferReturnTypes(MLIRContext *ctx,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &results) {
  ArrayRef<int64_t> a = tensorOf(adaptor.getLhs()).getShape();
  ArrayRef<int64_t> b = tensorOf(adaptor.getRhs()).getShape();
  if (a.size() < 2 || b.size() < 2)
    return emitOptionalError(loc, "matmul needs operands of rank >= 2, got ",
                             shapeString(a), " and ", shapeString(b));
  if (!compatible(a.back(), b[b.size() - 2]))
    return emitOptionalError(loc, "matmul: ", shapeString(a), " x ",
                             shapeString(b),
                             ": the contracted dims differ");
  SmallVector<int64_t> shape;
  if (failed(broadcastShapes(a.drop_back(2), b.drop_back(2), shape)))
    return emitOptionalError(loc, "matmul: the batch dims of ", shapeString(a),
                             " and ", shapeString(b), " do not broadcast");
  shape.push_back(a[a.size() - 2]);
  shape.push_back(b.back());
  results.push_back(f32Tensor(shape, ctx));
  return success();
}

LogicalResult TransposeOp::inferReturnTypes(MLIRContext *ctx,
                                            std::optional<Location> loc,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &results) {
  SmallVector<int64_t> shape(tensorOf(adaptor.getX()).getShape());
  if (shape.size() < 2)
    return emitOptionalError(loc, "transpose needs rank >= 2, got ",
                             shapeString(shape));
  std::swap(shape[shape.size() - 1], shape[shape.size() - 2]);
  results.push_back(f32Tensor(shape, ctx));
  return success();
}

OpFoldResult TransposeOp::fold(FoldAdaptor) {
  if (auto inner = getX().getDefiningOp<TransposeOp>())
    return inner.getX();
  return {};
}

LogicalResult SplitHeadsOp::inferReturnTypes(MLIRContext *ctx,
                                             std::optional<Location> loc,
                                             Adaptor adaptor,
                                             SmallVectorImpl<Type> &results) {
  ArrayRef<int64_t> x = tensorOf(adaptor.getX()).getShape();
  IntegerAttr headsAttr = adaptor.getHeadsAttr();
  if (!headsAttr)
    return emitOptionalError(loc, "split_heads needs a 'heads' attribute");
  int64_t heads = headsAttr.getInt();
  if (x.size() != 3)
    return emitOptionalError(loc, "split_heads needs [B, S, H*D], got ",
                             shapeString(x));
  if (ShapedType::isDynamic(x[2]))
    return emitOptionalError(loc, "split_heads needs a static model width");
  if (heads <= 0 || x[2] % heads != 0)
    return emitOptionalError(loc, "heads=", heads, " does not divide ", x[2]);
  results.push_back(f32Tensor({x[0], heads, x[1], x[2] / heads}, ctx));
  return success();
}

LogicalResult MergeHeadsOp::inferReturnTypes(MLIRContext *ctx,
                                             std::optional<Location> loc,
                                             Adaptor adaptor,
                                             SmallVectorImpl<Type> &results) {
  ArrayRef<int64_t> x = tensorOf(adaptor.getX()).getShape();
  if (x.size() != 4)
    return emitOptionalError(loc, "merge_heads needs [B, H, S, D], got ",
                             shapeString(x));
  if (ShapedType::isDynamic(x[1]) || ShapedType::isDynamic(x[3]))
    return emitOptionalError(loc, "merge_heads needs static H and D, got ",
                             shapeString(x));
  results.push_back(f32Tensor({x[0], x[2], x[1] * x[3]}, ctx));
  return success();
}

OpFoldResult MergeHeadsOp::fold(FoldAdaptor) {
  if (auto split = getX().getDefiningOp<SplitHeadsOp>())
    if (split.getX().getType() == getType())
      return split.getX();
  return {};
}

LogicalResult SplitOp::inferReturnTypes(MLIRContext *ctx,
                                        std::optional<Location> loc,
                                        Adaptor adaptor,
                                        SmallVectorImpl<Type> &results) {
  SmallVector<int64_t> shape(tensorOf(adaptor.getX()).getShape());
  IntegerAttr partsAttr = adaptor.getPartsAttr();
  if (!partsAttr)
    return emitOptionalError(loc, "split needs a 'parts' attribute");
  int64_t parts = partsAttr.getInt();
  if (shape.empty() || ShapedType::isDynamic(shape.back()))
    return emitOptionalError(loc, "split needs a static last dim, got ",
                             shapeString(shape));
  if (parts <= 0 || shape.back() % parts != 0)
    return emitOptionalError(loc, "split: ", parts, " parts do not divide ",
                             shape.back());
  shape.back() /= parts;
  results.append(parts, f32Tensor(shape, ctx));
  return success();
}

LogicalResult ConcatOp::inferReturnTypes(MLIRContext *ctx,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &results) {
  ArrayRef<int64_t> a = tensorOf(adaptor.getLhs()).getShape();
  ArrayRef<int64_t> b = tensorOf(adaptor.getRhs()).getShape();
  IntegerAttr axisAttr = adaptor.getAxisAttr();
  if (!axisAttr)
    return emitOptionalError(loc, "concat needs an 'axis' attribute");
  int64_t axis = axisAttr.getInt();
  if (a.size() != b.size())
    return emitOptionalError(loc, "concat needs equal ranks, got ",
                             shapeString(a), " and ", shapeString(b));
  if (axis < 0 || axis >= (int64_t)a.size())
    return emitOptionalError(loc, "concat axis ", axis, " is out of range for ",
                             shapeString(a));
  SmallVector<int64_t> shape;
  for (size_t i = 0; i < a.size(); ++i) {
    if ((int64_t)i == axis) {
      bool dyn = ShapedType::isDynamic(a[i]) || ShapedType::isDynamic(b[i]);
      shape.push_back(dyn ? ShapedType::kDynamic : a[i] + b[i]);
    } else if (!compatible(a[i], b[i])) {
      return emitOptionalError(loc, "concat along axis ", axis, ": ",
                               shapeString(a), " and ", shapeString(b),
                               " differ in dim ", i);
    } else {
      shape.push_back(join(a[i], b[i]));
    }
  }
  results.push_back(f32Tensor(shape, ctx));
  return success();
}

//===----------------------------------------------------------------------===//
// Masks, softmax and attention
//===----------------------------------------------------------------------===//

OpFoldResult MaskAndOp::fold(FoldAdaptor) {
  if (getLhs() == getRhs())
    return getLhs();
  return {};
}

LogicalResult SoftmaxOp::inferReturnTypes(MLIRContext *, std::optional<Location>,
                                          Adaptor adaptor,
                                          SmallVectorImpl<Type> &results) {
  results.push_back(adaptor.getX().getType());
  return success();
}

LogicalResult SoftmaxOp::verify() {
  if (getType().getRank() < 1)
    return emitOpError("needs rank >= 1");
  if (Value mask = getMask())
    return verifyMaskFor(mask, getType().getShape(), getLoc());
  return success();
}

LogicalResult AttentionOp::inferReturnTypes(MLIRContext *ctx,
                                            std::optional<Location> loc,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &results) {
  ArrayRef<int64_t> q = tensorOf(adaptor.getQuery()).getShape();
  ArrayRef<int64_t> k = tensorOf(adaptor.getKey()).getShape();
  ArrayRef<int64_t> v = tensorOf(adaptor.getValue()).getShape();
  if (q.size() != 4 || k.size() != 4 || v.size() != 4)
    return emitOptionalError(loc, "attention needs q, k, v of rank 4 "
                                  "[B, H, S, D], got ",
                             shapeString(q), ", ", shapeString(k), ", ",
                             shapeString(v));
  if (!compatible(q[0], k[0]) || !compatible(k[0], v[0]))
    return emitOptionalError(loc, "attention: batch sizes differ: q ",
                             shapeString(q), ", k ", shapeString(k), ", v ",
                             shapeString(v));
  if (ShapedType::isDynamic(q[1]) || ShapedType::isDynamic(k[1]))
    return emitOptionalError(loc, "attention needs static head counts");
  if (!compatible(k[1], v[1]))
    return emitOptionalError(loc, "attention: k has ", k[1],
                             " heads but v has ", v[1]);
  if (q[1] % k[1] != 0)
    return emitOptionalError(loc, "Hq=", q[1], " is not a multiple of Hkv=",
                             k[1]);
  if (!compatible(k[2], v[2]))
    return emitOptionalError(loc, "attention: k and v lengths differ: k ",
                             shapeString(k), ", v ", shapeString(v));
  if (!compatible(q[3], k[3]))
    return emitOptionalError(loc, "attention: q and k head dims differ: q ",
                             shapeString(q), ", k ", shapeString(k));
  results.push_back(f32Tensor({join(q[0], k[0]), q[1], q[2], v[3]}, ctx));
  return success();
}

LogicalResult AttentionOp::verify() {
  ArrayRef<int64_t> q = getQuery().getType().getShape();
  ArrayRef<int64_t> k = getKey().getType().getShape();
  // Other ranks are reported by the inferred-type check, which runs after
  // this verifier (inferReturnTypes above names the shapes).
  if (q.size() != 4 || k.size() != 4)
    return success();
  SmallVector<int64_t> scores = {join(q[0], k[0]), q[1], q[2], k[2]};
  if (!getScale() && ShapedType::isDynamic(q[3]))
    return emitOpError("needs a static head dim or an explicit scale");
  if (Value bias = getBias()) {
    ArrayRef<int64_t> b = cast<RankedTensorType>(bias.getType()).getShape();
    if (failed(broadcastsTo(b, scores)))
      return emitOpError("bias of shape ")
             << shapeString(b) << " does not broadcast to the scores "
             << shapeString(scores);
  }
  if (Value mask = getMask())
    return verifyMaskFor(mask, scores, getLoc());
  return success();
}

double AttentionOp::getScaleOrDefault() {
  if (FloatAttr s = getScaleAttr())
    return s.getValueAsDouble();
  return 1.0 / std::sqrt((double)getQuery().getType().getShape()[3]);
}

//===----------------------------------------------------------------------===//
// Fused projections
//===----------------------------------------------------------------------===//

LogicalResult FusedLinearOp::inferReturnTypes(MLIRContext *ctx,
                                              std::optional<Location> loc,
                                              Adaptor adaptor,
                                              SmallVectorImpl<Type> &results) {
  return inferLinear(ctx, loc, adaptor.getX(), adaptor.getWeight(),
                     adaptor.getBias(), results);
}

LogicalResult FusedLinearOp::verify() {
  if (Value r = getResidual())
    if (r.getType() != getType())
      return emitOpError("residual ")
             << r.getType() << " must have the result type " << getType();
  return success();
}

LogicalResult MultiLinearOp::inferReturnTypes(MLIRContext *ctx,
                                              std::optional<Location> loc,
                                              Adaptor adaptor,
                                              SmallVectorImpl<Type> &results) {
  ValueRange weights = adaptor.getWeights(), biases = adaptor.getBiases();
  if (weights.empty())
    return emitOptionalError(loc, "multi_linear needs at least one weight");
  if (!biases.empty() && biases.size() != weights.size())
    return emitOptionalError(loc, "multi_linear has ", weights.size(),
                             " weights but ", biases.size(),
                             " biases; give every projection a bias or none");
  for (auto [i, w] : llvm::enumerate(weights)) {
    Value b = biases.empty() ? Value() : biases[i];
    if (failed(inferLinear(ctx, loc, adaptor.getX(), w, b, results)))
      return failure();
  }
  return success();
}

//===----------------------------------------------------------------------===//
// Norms and rotary embeddings
//===----------------------------------------------------------------------===//

static LogicalResult checkGain(std::optional<Location> loc, StringRef op,
                               StringRef what, ArrayRef<int64_t> x, Value g) {
  ArrayRef<int64_t> gs = tensorOf(g).getShape();
  if (x.empty() || !compatible(gs[0], x.back()))
    return emitOptionalError(loc, op, ": ", what, " is ", shapeString(gs),
                             " but x is ", shapeString(x),
                             "; it must match x's last dim");
  return success();
}

LogicalResult LayerNormOp::inferReturnTypes(MLIRContext *,
                                            std::optional<Location> loc,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &results) {
  RankedTensorType x = tensorOf(adaptor.getX());
  if (failed(checkGain(loc, "layer_norm", "gamma", x.getShape(),
                       adaptor.getGamma())) ||
      failed(checkGain(loc, "layer_norm", "beta", x.getShape(),
                       adaptor.getBeta())))
    return failure();
  results.push_back(x);
  return success();
}

LogicalResult RmsNormOp::inferReturnTypes(MLIRContext *,
                                          std::optional<Location> loc,
                                          Adaptor adaptor,
                                          SmallVectorImpl<Type> &results) {
  RankedTensorType x = tensorOf(adaptor.getX());
  if (failed(checkGain(loc, "rms_norm", "gamma", x.getShape(),
                       adaptor.getGamma())))
    return failure();
  results.push_back(x);
  return success();
}

LogicalResult RopeOp::inferReturnTypes(MLIRContext *,
                                       std::optional<Location> loc,
                                       Adaptor adaptor,
                                       SmallVectorImpl<Type> &results) {
  RankedTensorType x = tensorOf(adaptor.getX());
  ArrayRef<int64_t> s = x.getShape();
  ArrayRef<int64_t> p = tensorOf(adaptor.getPositions()).getShape();
  if (s.size() != 4)
    return emitOptionalError(loc, "rope needs x of shape [B, H, S, D], got ",
                             shapeString(s));
  if (ShapedType::isDynamic(s[3]) || s[3] % 2 != 0)
    return emitOptionalError(loc, "rope needs a static, even head dim, got ",
                             shapeString(s));
  bool ok = (p.size() == 1 && compatible(p[0], s[2])) ||
            (p.size() == 2 && compatible(p[0], s[0]) && compatible(p[1], s[2]));
  if (!ok)
    return emitOptionalError(loc, "rope: positions ", shapeString(p),
                             " must be [S] or [B, S] for x ", shapeString(s));
  results.push_back(x);
  return success();
}

#define GET_OP_CLASSES
#include "attn/Dialect/AttnOps.cpp.inc"
