//===- HalideGen.cpp - The Halide algorithm of an attn model --------------===//
//
// Each model (func.func) becomes one Halide pipeline: every argument an
// ImageParam, every attn op one Func (plus a few helper Funcs for its
// reductions). Only the algorithm lives here; Schedule.cpp schedules it.
//
// Conventions:
//  - A tensor value is a Func plus its extents as Exprs, in MLIR order
//    (outermost first). Halide's argument order is the reverse (dim 0 is the
//    innermost), so Funcs are always defined and called through `def`/`at`,
//    which take MLIR-order indices and reverse them.
//  - i1 tensors are uint8 (0 or 1) in Halide.
//  - A computed index that Halide cannot bound by itself (select, subtraction
//    of a runtime value) is clamped into the producer's extent, so bounds
//    inference never reads outside an input buffer.
//
//===----------------------------------------------------------------------===//
#include "attn/Halide/Approx.h"
#include "attn/Halide/HalideGen.h"
#include "attn/Halide/Emit.h"
#include "attn/Dialect/AttnOps.h"
#include "attn/Transforms/Passes.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>
#include <functional>

using Role = attn::OpFunc::Role;
using namespace mlir;
using Halide::Expr;
using Halide::Func;
using Halide::RDom;
using Halide::Var;

namespace {

/// A masked-out score. Halide compiles with fast math, so no -inf.
constexpr float kMaskedScore = -1e30f;

/// A tensor value: its Func and its extents, MLIR order (outermost first).
struct Tensor {
  Func func;
  std::vector<Expr> shape;

  size_t rank() const { return shape.size(); }
  /// The element at MLIR-order index `idx`.
  Expr at(std::vector<Expr> idx) const {
    std::reverse(idx.begin(), idx.end());
    return func(idx);
  }
};

/// A mask: whether the score at MLIR-order index `idx` of a score tensor of
/// extents `shape` is kept. The last two dims are (i, j), dim 0 the batch.
using Mask = std::function<Expr(const std::vector<Expr> &idx,
                                const std::vector<Expr> &shape)>;

Expr simplified(Expr e) { return Halide::Internal::simplify(e); }

std::vector<Expr> reversed(std::vector<Expr> v) {
  std::reverse(v.begin(), v.end());
  return v;
}

/// Fresh pure Vars d0..d{rank-1} (d0 = outermost, MLIR order).
std::vector<Var> makeVars(size_t rank) {
  std::vector<Var> vs;
  for (size_t k = 0; k < rank; ++k)
    vs.push_back(Var("d" + std::to_string(k)));
  return vs;
}

std::vector<Expr> asExprs(const std::vector<Var> &vs) {
  return std::vector<Expr>(vs.begin(), vs.end());
}

/// Defines `f(vs) = e` with MLIR-order vars.
void def(Func f, std::vector<Var> vs, Expr e) {
  std::reverse(vs.begin(), vs.end());
  f(vs) = e;
}

/// Adds the update `f(vs) += e` with MLIR-order vars.
void defAdd(Func f, const std::vector<Var> &vs, Expr e) {
  f(reversed(asExprs(vs))) += e;
}

/// Adds the update `f(vs) = max(f(vs), e)` with MLIR-order vars.
void defMax(Func f, const std::vector<Var> &vs, Expr e) {
  std::vector<Expr> idx = reversed(asExprs(vs));
  f(idx) = Halide::max(f(idx), e);
}

/// NumPy broadcasting: the index into an operand of extents `shape` for the
/// result index `idx` (aligned from the right; static size-1 dims read 0).
std::vector<Expr> broadcastIndex(const std::vector<Expr> &shape,
                                 const std::vector<Expr> &idx) {
  std::vector<Expr> out;
  size_t offset = idx.size() - shape.size();
  for (size_t k = 0; k < shape.size(); ++k)
    out.push_back(Halide::Internal::is_const_one(shape[k]) ? Expr(0)
                                                           : idx[offset + k]);
  return out;
}

/// The broadcast extents of two shapes (the front end checked them).
std::vector<Expr> broadcastShape(const std::vector<Expr> &a,
                                 const std::vector<Expr> &b) {
  size_t rank = std::max(a.size(), b.size());
  std::vector<Expr> out;
  for (size_t k = 0; k < rank; ++k) {
    int ka = (int)k - (int)(rank - a.size());
    int kb = (int)k - (int)(rank - b.size());
    if (ka < 0)
      out.push_back(b[kb]);
    else if (kb < 0 || Halide::Internal::is_const_one(b[kb]))
      out.push_back(a[ka]);
    else
      out.push_back(b[kb]);
  }
  return out;
}

/// The extent of dim k of the buffer `buffer`, by name only. A buffer's own
/// constraints must not use Dimension::extent(): that Variable holds the
/// buffer's Parameter, and a Parameter whose constraint refers to itself is
/// a reference cycle that is never freed.
Expr extentByName(const std::string &buffer, int k) {
  return Halide::Internal::Variable::make(
      Halide::Int(32), buffer + ".extent." + std::to_string(k));
}

Halide::Type halideType(Type t) {
  if (t.isF32())
    return Halide::Float(32);
  if (t.isF16())
    return Halide::Float(16);
  if (t.isBF16())
    return Halide::BFloat(16);
  if (t.isInteger(32))
    return Halide::Int(32);
  return Halide::UInt(8); // i1
}

attn::TensorDesc::DType tableType(Type t) {
  if (t.isF32())
    return attn::TensorDesc::F32;
  if (t.isF16())
    return attn::TensorDesc::F16;
  if (t.isBF16())
    return attn::TensorDesc::BF16;
  if (t.isInteger(32))
    return attn::TensorDesc::I32;
  return attn::TensorDesc::Bool;
}

/// The element-wise activations, as used by the unary ops and by the
/// epilogues of fused projections.
Expr applyActivation(attn::Activation act, Expr x) {
  switch (act) {
  case attn::Activation::none:
    return x;
  case attn::Activation::gelu:
    return 0.5f * x * (1.0f + attn::erfApprox(x * (float)M_SQRT1_2));
  case attn::Activation::gelu_tanh: {
    // 0.5 x (1 + tanh(u)) = x sigmoid(2u): Halide's exp vectorises, its
    // tanh is a scalar libm call per element.
    const float c = (float)std::sqrt(2.0 / M_PI);
    Expr u = c * (x + 0.044715f * x * x * x);
    return x / (1.0f + Halide::exp(-2.0f * u));
  }
  case attn::Activation::silu:
    return x / (1.0f + Halide::exp(-x));
  case attn::Activation::relu:
    return Halide::max(x, 0.0f);
  }
  return x;
}

/// Builds the pipeline of one model.
class PipelineBuilder {
public:
  PipelineBuilder(func::FuncOp model, attn::ModelPipeline &out)
      : model(model), out(out) {}

  LogicalResult build();

private:
  // Names.
  std::string uniqueName(std::string base);
  std::string opName(Operation *op);
  Func newFunc(Operation *op, const std::string &name, bool inlined = false,
               attn::OpFunc::Role role = attn::OpFunc::Role::Plain);

  // Arguments and results.
  LogicalResult lowerArguments();
  LogicalResult lowerArgument(unsigned a);
  LogicalResult lowerResults(func::ReturnOp ret);
  /// The extent of a size, or of a sum of sizes and integers ("T+1").
  Expr symbolExtent(StringRef sym) {
    if (Expr e = symbols.lookup(sym); e.defined() || !sym.contains('+'))
      return e;
    SmallVector<StringRef> terms;
    sym.split(terms, '+');
    Expr sum = 0;
    for (StringRef term : terms) {
      unsigned long long n;
      Expr e = term.getAsInteger(10, n) ? symbols.lookup(term) : Expr((int)n);
      if (!e.defined())
        return Expr();
      sum = sum + e;
    }
    return simplified(sum);
  }

  // One function per op family.
  LogicalResult lower(Operation *op);
  Tensor lowerConstant(attn::ConstantOp op);
  Tensor lowerCast(attn::CastOp op);
  Tensor lowerBinary(Operation *op, std::function<Expr(Expr, Expr)> fn);
  Tensor lowerUnary(Operation *op, std::function<Expr(Expr)> fn);
  LogicalResult lowerProjection(Operation *op);
  Tensor lowerMatmul(attn::MatmulOp op);
  Tensor lowerLayout(Operation *op);
  LogicalResult lowerSplit(attn::SplitOp op);
  Tensor lowerConcat(attn::ConcatOp op);
  Mask lowerMask(Operation *op);
  Tensor lowerSoftmax(attn::SoftmaxOp op);
  Tensor lowerAttention(attn::AttentionOp op);
  void kvBounds(Value mask, Expr iMin, Expr iMax, Expr b, Expr off,
                bool withLengths, Expr &lo,
                Expr &hi);
  Tensor lowerNorm(Operation *op);
  Tensor lowerRope(attn::RopeOp op);
  LogicalResult lowerCall(attn::CallOp op);
  Tensor lowerSelect(attn::SelectOp op);
  Tensor lowerCacheWrite(attn::CacheWriteOp op);
  Tensor lowerReduce(attn::ReduceOp op);
  Tensor lowerMeanPool(attn::MeanPoolOp op);
  Tensor lowerL2Normalize(attn::L2NormalizeOp op);
  Tensor lowerEmbedding(attn::EmbeddingOp op);
  Tensor lowerArange(attn::ArangeOp op);
  Tensor lowerSlice(attn::SliceOp op);

  /// The pieces of a masked softmax over the last dim of `scores`:
  /// exps = keep ? exp(s - max) : 0, and denom = sum(exps) or 1 when every
  /// score of the row is masked (so such a row gives exactly 0).
  struct SoftmaxParts {
    Func exps, denom;
  };
  SoftmaxParts softmaxParts(Operation *op, const std::string &name,
                            const Tensor &scores, const Mask *mask);

  Tensor &get(Value v) { return tensors[v]; }

  func::FuncOp model;
  attn::ModelPipeline &out;
  llvm::DenseMap<Value, Tensor> tensors;
  llvm::DenseMap<Value, Mask> masks;
  llvm::StringMap<Expr> symbols; ///< symbolic size -> its extent
  llvm::StringMap<unsigned> names;
  std::vector<Halide::ImageParam> params; ///< per argument (undefined:
                                          ///< a weight only calls use)
  Halide::Param<void *> table{"attn_buffers"}; ///< see CallStub
  bool hasTable = false;
};

//===----------------------------------------------------------------------===//
// Names
//===----------------------------------------------------------------------===//

std::string PipelineBuilder::uniqueName(std::string base) {
  unsigned &n = names[base];
  if (n++ == 0)
    return base;
  return uniqueName(base + "_" + std::to_string(n));
}

/// `q_split_heads_L17` for NameLoc("q", file:17:c), `linear_L17` for a plain
/// file:line:col location (see attn::opDisplayName), made unique.
std::string PipelineBuilder::opName(Operation *op) {
  return uniqueName(attn::opDisplayName(op));
}

Func PipelineBuilder::newFunc(Operation *op, const std::string &name,
                              bool inlined, attn::OpFunc::Role role) {
  Func f(name);
  out.funcs.push_back({f, op, inlined, role});
  return f;
}

//===----------------------------------------------------------------------===//
// Arguments and results
//===----------------------------------------------------------------------===//

LogicalResult PipelineBuilder::lowerArguments() {
  if (auto syms = model->getAttrOfType<ArrayAttr>("attn.syms"))
    for (Attribute s : syms)
      out.syms.push_back(cast<StringAttr>(s).getValue().str());

  for (unsigned a = 0; a < model.getNumArguments(); ++a)
    if (failed(attn::catchHalideErrors(model.getArgument(a).getLoc(),
                                       [&] { return lowerArgument(a); })))
      return failure();
  return success();
}

LogicalResult PipelineBuilder::lowerArgument(unsigned a) {
  auto symIndex = [&](StringRef s) -> int64_t {
    auto it = std::find(out.syms.begin(), out.syms.end(), s.str());
    if (it == out.syms.end()) { // a derived size ("T+1"): listed too
      out.syms.push_back(s.str());
      return out.syms.size() - 1;
    }
    return it - out.syms.begin();
  };
  {
    auto type = cast<RankedTensorType>(model.getArgument(a).getType());
    auto name = model.getArgAttrOfType<StringAttr>(a, "attn.name");
    auto dims = model.getArgAttrOfType<ArrayAttr>(a, "attn.dims");
    auto weight = model.getArgAttrOfType<StringAttr>(a, "attn.weight");
    if (!name || !dims || dims.size() != (size_t)type.getRank())
      return emitError(model.getLoc(), "argument ")
             << a << " lacks attn.name/attn.dims matching its type";

    attn::TensorDesc desc;
    desc.name = name.getValue().str();
    desc.role = weight ? attn::TensorDesc::Param
                : model.getArgAttr(a, "attn.inout") ? attn::TensorDesc::Inout
                                                    : attn::TensorDesc::Input;
    desc.weightName = weight ? weight.getValue().str() : "";
    desc.dtype = tableType(type.getElementType());

    int rank = type.getRank();
    // Weight names ("encoder.layer.0.query.weight") may hold characters
    // that Halide names cannot.
    std::string pname = desc.name;
    for (char &c : pname)
      if (!isalnum((unsigned char)c) && c != '_')
        c = '_';
    // A weight that only calls use reaches them through the buffer table
    // (CallStub): no ImageParam.
    bool callOnly = desc.role == attn::TensorDesc::Param;
    for (OpOperand &use : model.getArgument(a).getUses()) {
      auto call = dyn_cast<attn::CallOp>(use.getOwner());
      callOnly &= call && use.getOperandNumber() >= call.getArgs().size();
    }
    if (callOnly && !model.getArgument(a).use_empty()) {
      for (Attribute d : dims)
        desc.dims.push_back(isa<IntegerAttr>(d)
                                ? cast<IntegerAttr>(d).getInt()
                                : -(symIndex(cast<StringAttr>(d).getValue()) +
                                    1));
      params.push_back(Halide::ImageParam());
      out.tensors.push_back(desc);
      return success();
    }
    Halide::ImageParam p(halideType(type.getElementType()), rank,
                         uniqueName(pname));
    Tensor t;
    t.func = p;
    for (int k = 0; k < rank; ++k) {
      Halide::Internal::Dimension dim = p.dim(rank - 1 - k);
      dim.set_min(0);
      Attribute d = dims[k];
      if (auto i = dyn_cast<IntegerAttr>(d)) {
        dim.set_extent((int)i.getInt());
        t.shape.push_back((int)i.getInt());
        desc.dims.push_back(i.getInt());
        continue;
      }
      StringRef sym = cast<StringAttr>(d).getValue();
      desc.dims.push_back(-(symIndex(sym) + 1));
      auto it = symbols.find(sym);
      if (it == symbols.end()) {
        symbols[sym] = dim.extent();
        t.shape.push_back(dim.extent());
      } else {
        dim.set_extent(it->second); // Halide checks the sizes agree
        t.shape.push_back(it->second);
      }
    }
    // The runtime passes dense row-major tensors: say so, so that rows are
    // a constant stride apart in the generated loops (Halide checks it).
    Expr stride = 1;
    for (int k = 0; k < rank; ++k) {
      p.dim(k).set_stride(stride);
      stride = stride * extentByName(p.name(), k);
    }
    tensors[model.getArgument(a)] = t;
    params.push_back(p);
    out.args.push_back(p);
    out.argTensors.push_back(out.tensors.size());
    out.tensors.push_back(desc);
  }
  return success();
}

LogicalResult PipelineBuilder::lowerResults(func::ReturnOp ret) {
  for (unsigned r = 0; r < ret.getNumOperands(); ++r) {
    auto type = cast<RankedTensorType>(ret.getOperand(r).getType());
    auto name = model.getResultAttrOfType<StringAttr>(r, "attn.name");
    auto dims = model.getResultAttrOfType<ArrayAttr>(r, "attn.dims");
    if (!name || !dims || dims.size() != (size_t)type.getRank())
      return emitError(model.getLoc(), "result ")
             << r << " lacks attn.name/attn.dims matching its type";

    attn::TensorDesc desc;
    desc.name = name.getValue().str();
    desc.role = attn::TensorDesc::Output;
    desc.dtype = tableType(type.getElementType());

    // A copy into a Func of its own: outputs must be distinct Funcs, and the
    // value may also be an input or feed other ops.
    const Tensor &value = get(ret.getOperand(r));
    Func f(uniqueName(desc.name));
    std::vector<Var> vs = makeVars(type.getRank());
    def(f, vs, value.at(asExprs(vs)));
    int rank = type.getRank();
    for (int k = 0; k < rank; ++k) {
      Halide::Internal::Dimension dim = f.output_buffer().dim(rank - 1 - k);
      dim.set_min(0);
      Attribute d = dims[k];
      if (auto i = dyn_cast<IntegerAttr>(d)) {
        dim.set_extent((int)i.getInt());
        desc.dims.push_back(i.getInt());
        continue;
      }
      StringRef sym = cast<StringAttr>(d).getValue();
      auto it = std::find(out.syms.begin(), out.syms.end(), sym.str());
      if (it == out.syms.end()) { // a derived size ("T+1"): listed too
        out.syms.push_back(sym.str());
        it = out.syms.end() - 1;
      }
      desc.dims.push_back(-(int64_t)(it - out.syms.begin()) - 1);
      if (Expr e = symbolExtent(sym); e.defined())
        dim.set_extent(e);
    }
    Expr stride = 1;
    for (int k = 0; k < rank; ++k) {
      f.output_buffer().dim(k).set_stride(stride);
      stride = stride * extentByName(f.name(), k);
    }
    out.outputs.push_back(f);
    out.tensors.push_back(desc);
    // An op result used only here may be computed in the output Func itself
    // (Schedule.cpp inlines it and gives the output its schedule) instead of
    // being copied: a plain op, a norm, a projection's epilogue or the
    // attention output.
    Value v = ret.getOperand(r);
    Func source;
    if (Operation *def = v.getDefiningOp(); def && v.hasOneUse())
      for (const attn::OpFunc &of : out.funcs)
        if (of.op == def && of.func.name() == value.func.name() &&
            (of.role == Role::Plain || of.role == Role::Norm ||
             of.role == Role::GemmOut || of.role == Role::Attention) &&
            !of.func.has_update_definition())
          source = of.func;
    out.outputSources.push_back(source);
  }
  return success();
}

//===----------------------------------------------------------------------===//
// Element-wise ops
//===----------------------------------------------------------------------===//

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

//===----------------------------------------------------------------------===//
// Products
//===----------------------------------------------------------------------===//

/// linear, fused_linear and multi_linear, as one GEMM over the rows of x:
///   wt[k, n]    = w_p[n - o_p, k]   for o_p <= n < o_p + N_p (packed
///                                   n-innermost per block)
///   acc[..., n] = sum_k x[..., k] * wt[k, n]
///   y[..., n]   = act(acc[..., n] + b_p[n - o_p]) + residual[..., n]
/// multi_linear's P projections (output widths N_p, offsets o_p) are one
/// GEMM of sum N_p outputs, so every tile of x is read once for all of them;
/// result p is the index map y[..., o_p + n].
LogicalResult PipelineBuilder::lowerProjection(Operation *op) {
  SmallVector<Value> weights, biases;
  Value residual;
  attn::Activation act = attn::Activation::none;
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
  const Tensor &x = get(op->getOperand(0));
  int P = (int)weights.size();
  std::vector<Expr> widths, offsets = {Expr(0)};
  for (Value w : weights) {
    widths.push_back(get(w).shape[0]);
    offsets.push_back(simplified(offsets.back() + widths.back()));
  }
  std::vector<Expr> shape(x.shape.begin(), x.shape.end() - 1);
  shape.push_back(offsets.back());

  // Projection p's element at [n - o_p, ...] for the p that n falls in
  // (clamped so that bounds inference stays inside every operand).
  auto pick = [&](ArrayRef<Value> values, Expr n, std::vector<Expr> rest) {
    auto at = [&](int p) {
      std::vector<Expr> idx = {
          Halide::clamp(n - offsets[p], 0, widths[p] - 1)};
      idx.insert(idx.end(), rest.begin(), rest.end());
      return get(values[p]).at(idx);
    };
    Expr e = at(P - 1);
    for (int p = P - 2; p >= 0; --p)
      e = Halide::select(n < offsets[p + 1], at(p), e);
    return e;
  };

  std::string name = opName(op);
  Var n("n"), k("k");
  Func wt = newFunc(op, name + "_wt", /*inlined=*/false, Role::GemmPack);
  // Several weights whose offsets are multiples of V (the schedule's
  // vector width): the pack is wt3(ni, nb, k) with n = nb * V + ni, one
  // update per weight over the vectors nb it owns, so that choosing the
  // weight is one scalar branch per vector of V outputs. (A select would
  // gather every weight's elements and keep one.) The pure step is undef.
  auto sched = op->getAttrOfType<attn::GemmScheduleAttr>("attn.schedule");
  int V = sched ? (int)sched.getVector() : 1;
  bool perWeight = P > 1 && V > 1;
  for (const Expr &o : offsets)
    perWeight = perWeight && Halide::Internal::as_const_int(o) &&
                *Halide::Internal::as_const_int(o) % V == 0;
  Func packed = wt;
  int packLanes = 0;
  std::vector<RDom> packK;
  if (!perWeight) {
    wt(n, k) = pick(weights, n, {k});
  } else {
    Var ni("ni"), nb("nb");
    Halide::Type wtype = halideType(
        cast<RankedTensorType>(weights[0].getType()).getElementType());
    packed(ni, nb, k) = Halide::undef(wtype);
    for (int p = 0; p < P; ++p) {
      RDom pk(0, x.shape.back(), "pk" + std::to_string(p));
      packK.push_back(pk);
      pk.where(nb >= simplified(offsets[p] / V));
      pk.where(nb < simplified(offsets[p + 1] / V));
      packed(ni, nb, pk) = get(weights[p]).at(
          {Halide::clamp(nb * V + ni - offsets[p], 0, widths[p] - 1), pk});
    }
    wt = Func(name + "_wtn");
    wt(n, k) = packed(n % V, n / V, k);
    packLanes = V;
  }

  std::vector<Var> vs = makeVars(shape.size());
  vs.back() = n;
  Func acc = newFunc(op, name + "_acc", /*inlined=*/false, Role::GemmAcc);
  def(acc, vs, 0.0f);
  RDom rk(0, x.shape.back(), "rk");
  std::vector<Expr> xi(vs.begin(), vs.end() - 1);
  if (!xi.empty()) // rows past the end are computed by rounded-up tiles
    xi.back() = Halide::min(xi.back(), x.shape[x.rank() - 2] - 1);
  xi.push_back(rk);
  defAdd(acc, vs, x.at(xi) * wt(n, rk));

  // Dot products for few rows: per weight, V lanes of partial sums, then
  // their sum and the tail of K % V; y picks weight p's for n in its range
  // (clamped, as in `pick`). One weight's dot products read it once.
  Expr e = acc(reversed(asExprs(vs)));
  int64_t dotRows = sched ? sched.getDot() : 0;
  std::vector<Func> parts, dots;
  RDom ko;
  Expr useDot;
  if (dotRows > 1 && V > 1 && x.rank() >= 2) {
    Expr K = x.shape.back(), rows = 1;
    for (int d = 0; d + 1 < x.rank(); ++d)
      rows = rows * x.shape[d];
    useDot = simplified(rows) < (int)dotRows;
    std::vector<Expr> hv = reversed(asExprs(vs)); // n, rows innermost first
    std::vector<Expr> rowArgs(hv.begin() + 1, hv.end());
    Var l("l");
    RDom kt(K / V * V, K % V, "kt");
    ko = RDom(0, K / V, "ko");
    auto xAt = [&](Expr kk) {
      std::vector<Expr> i(vs.begin(), vs.end() - 1);
      i.push_back(kk);
      return x.at(i);
    };
    Expr dot;
    for (int p = 0; p < P; ++p) {
      const Tensor &w = get(weights[p]);
      std::string pre = name + (P > 1 ? "_" + std::to_string(p) : "");
      Func part = newFunc(op, pre + "_part", /*inlined=*/false, Role::GemmDot);
      std::vector<Expr> at = {l, n};
      at.insert(at.end(), rowArgs.begin(), rowArgs.end());
      part(at) = 0.0f;
      part(at) += xAt(ko * V + l) * w.at({n, ko * V + l});
      Func sum = newFunc(op, pre + "_dot", /*inlined=*/false, Role::GemmDot);
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
      ni[0] = Halide::clamp(n - offsets[p], 0, widths[p] - 1);
      dot = p == 0 ? sum(ni) : Halide::select(n < offsets[p], dot, sum(ni));
      parts.push_back(part);
      dots.push_back(sum);
    }
    e = Halide::select(useDot, dot, e);
  }

  Func y = newFunc(op, P > 1 ? name + "_all" : name, /*inlined=*/false,
                   Role::GemmOut);
  if (!biases.empty())
    e = e + pick(biases, n, {});
  e = applyActivation(act, e);
  if (residual)
    e = e + get(residual).at(asExprs(vs));
  def(y, vs, e);
  // A symbolic output width (a weight of a symbolic size) is not tiled:
  // n = 0 leaves the projection to the generic schedule.
  const int64_t *staticWidth = Halide::Internal::as_const_int(offsets.back());
  int64_t nTotal = staticWidth ? *staticWidth : 0;
  out.gemms.push_back({op, packed, acc, y, rk,
                       x.rank() >= 2 ? x.shape[x.rank() - 2] : Expr(),
                       nTotal, packLanes, packK, parts, dots, ko, useDot});

  if (P == 1) {
    tensors[op->getResult(0)] = {y, shape};
    return success();
  }
  for (int p = 0; p < P; ++p) {
    Func r = newFunc(op, name + "_" + std::to_string(p), /*inlined=*/true);
    std::vector<Expr> idx = asExprs(vs);
    idx.back() = idx.back() + offsets[p];
    def(r, vs, y(reversed(idx)));
    std::vector<Expr> partShape = shape;
    partShape.back() = widths[p];
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

//===----------------------------------------------------------------------===//
// Layout: transpose, split_heads, merge_heads, split, concat
//===----------------------------------------------------------------------===//

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

//===----------------------------------------------------------------------===//
// Masks, softmax, attention
//===----------------------------------------------------------------------===//

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
/// causal attention does about half the work, and inside a block over the
/// keys the tile can see (the last block and causal diagonal blocks are cut
/// short). A query row whose keys are all masked gives exactly 0.
Tensor PipelineBuilder::lowerAttention(attn::AttentionOp op) {
  const Tensor &q = get(op.getQuery());
  const Tensor &k = get(op.getKey());
  const Tensor &v = get(op.getValue());
  std::string name = opName(op);
  auto sched =
      op->getAttrOfType<attn::AttentionScheduleAttr>("attn.schedule");
  int qt = sched ? (int)sched.getQ() : 16;
  int kvb = sched ? (int)sched.getKv() : 64;
  // Without a schedule (--no-fusion) the whole-row variant, computed at
  // root, is the unfused reference point.
  int64_t rowKeys = sched ? sched.getRows() : INT32_MAX;
  int qtb = sched ? (int)sched.getQb() : qt;
  const float log2e = 1.4426950408889634f;
  float scale = (float)op.getScaleOrDefault() * log2e;

  Var ii("ii"), it("it"), jj("jj"), r("r"), h("h"), b("b"), d("d"), e("e"),
      i("i");
  Expr Sq = q.shape[2], Sk = k.shape[2], D = q.shape[3];
  Expr off = Sk - Sq;
  Expr kh = h / simplified(q.shape[1] / k.shape[1]);
  // Query row ii of tile it, of `rows` rows (the last tile is clamped).
  auto queryRow = [&](int rows) { return Halide::min(it * rows + ii, Sq - 1); };
  Expr j = r * kvb + jj;
  // Clamped: bounds inference sees the block of keys only as an interval.
  Expr key = Halide::clamp(j, 0, Sk - 1);

  attn::AttentionKernel a;
  a.op = op;
  a.qt = qt;
  a.kvb = kvb;
  auto func = [&](const std::string &suffix) {
    return newFunc(op, name + suffix, /*inlined=*/false, Role::Attention);
  };
  // The query tile of a variant, transposed (rows innermost) and scaled once.
  auto queryTile = [&](const std::string &suffix, Expr at) {
    Func f = func(suffix);
    f(ii, d, it, h, b) = q.at({b, h, at, d}) * scale;
    return f;
  };
  RDom rd(0, D, "rd");
  a.d = rd;

  // The score of `row` and key `at` (in log2 units) from its q.k product:
  // plus the bias, and a large finite negative where masked (not a select of
  // the score, which would let bounds inference trim the tile by the mask).
  std::vector<Expr> scoreShape = {q.shape[0], q.shape[1], Sq, Sk};
  auto score = [&](Expr qk, Expr at, Expr row) {
    if (Value biasValue = op.getBias()) {
      const Tensor &t = get(biasValue);
      qk = qk + t.at(broadcastIndex(t.shape, {b, h, row, at})) * log2e;
    }
    if (Value m = op.getMask())
      qk = qk + Halide::select(masks[m]({b, h, row, at}, scoreShape), 0.0f,
                               kMaskedScore);
    return qk;
  };
  // The keys [kLo, kHi) that the mask can keep for some row of the tile:
  // the blocks that meet them are visited. Within a block only the keys
  // [jLo, jHi) are, where these bounds leave out the padding lengths (bounds
  // inference cannot bound a length read from memory, so a block cut by one
  // is computed whole and masked): the last block and causal or window
  // diagonal blocks are cut short.
  auto keyRange = [&](int rows, bool withLengths, Expr &from, Expr &to) {
    Expr lo, hi;
    kvBounds(op.getMask(), it * rows, it * rows + rows - 1, b, off,
             withLengths, lo, hi);
    from = lo.defined() ? Halide::max(lo, 0) : Expr(0);
    to = hi.defined() ? Halide::min(hi, Sk) : Sk;
  };
  // A blocked variant of `rows` queries a tile, its Funcs' names suffixed.
  auto blocked = [&](int rows, const std::string &pre) {
    attn::AttentionKernel::Blocked t;
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
    keyRange(rows, true, kLo, kHi);
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
    t.blockMax(ii, r, it, h, b) = Halide::max(
        t.blockMax(ii, r, it, h, b), t.scores(ii, kj, r, it, h, b));
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
        seen, t.state(e, ii, it, h, b)[0] / t.state(e, ii, it, h, b)[2],
        0.0f);
    return t;
  };
  a.blocked = blocked(qtb, "");

  // The whole-row variant, for Sk <= rowKeys: a tile's scores and
  // probabilities exist for all keys at once (qt x Sk floats each), so the
  // softmax takes one max and one sum per row and no state update; while
  // those rows stay in L2 this is faster, beyond it the blocked variant is.
  // Both are in the pipeline; `out` is specialised on Sk and each branch
  // computes only its own variant.
  attn::AttentionKernel::Rows &w = a.rows;
  Var jw("j");
  Expr rowW = queryRow(qt);
  Expr keyJ = Halide::min(jw, Sk - 1); // score tiles round up to a register tile
  w.qtile = queryTile("_rows_q", rowW);
  w.sacc = func("_rows_qk");
  w.sacc(ii, jw, it, h, b) = 0.0f;
  w.sacc(ii, jw, it, h, b) += w.qtile(ii, rd, it, h, b) * k.at({b, kh, keyJ, rd});
  w.scores = func("_rows_scores");
  w.scores(ii, jw, it, h, b) = score(w.sacc(ii, jw, it, h, b), keyJ, rowW);
  Expr wLo, wHi;
  keyRange(qt, true, wLo, wHi);
  w.kv = RDom(0, Sk, "rkv");
  w.kv.where(w.kv.x >= wLo && w.kv.x < wHi);
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

  a.out = newFunc(op, name, /*inlined=*/false, Role::Attention);
  Expr many = a.blocked.otile(e, i % qtb, i / qtb, h, b),
       whole = w.otile(e, i % qt, i / qt, h, b);
  if (rowKeys >= INT32_MAX) {
    a.out(e, i, h, b) = whole;
    out.attentions.push_back(a);
    return {a.out, {q.shape[0], q.shape[1], Sq, v.shape[3]}};
  }
  // Few queries (a decode step): one query row a tile, for Sq below the
  // schedule's `few` (a tile of qb rows would compute qb - Sq clamped
  // copies of the last row). Variants whose condition cannot hold (a static
  // Sq, or rows within the few-query branch when Sq = Sk) are left out:
  // Halide 14 crashes in bounds inference on a specialisation that the
  // ones before it contradict.
  int64_t fewRows = sched.getFew();
  Expr useFew = simplified(Sq < (int)std::max<int64_t>(fewRows, 1));
  if (fewRows > 1 && qtb > 1 && !Halide::Internal::is_const_zero(useFew))
    a.useFew = useFew;
  Expr rest = many;
  Expr useRows = simplified(Sk <= (int)rowKeys);
  if (rowKeys > 0 && !Halide::Internal::is_const_zero(useRows) &&
      !(a.useFew.defined() &&
        Halide::Internal::can_prove(!useRows || a.useFew))) {
    a.useRows = useRows;
    rest = Halide::select(a.useRows, whole, many);
  }
  if (a.useFew.defined()) {
    a.few = blocked(1, "_few");
    rest = Halide::select(a.useFew, a.few.otile(e, 0, i, h, b), rest);
  }
  a.out(e, i, h, b) = rest;
  out.attentions.push_back(a);
  return {a.out, {q.shape[0], q.shape[1], Sq, v.shape[3]}};
}

//===----------------------------------------------------------------------===//
// Norms and rotary embeddings
//===----------------------------------------------------------------------===//

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

  Expr centre = 0.0f; // mean for layer_norm, 0 for rms_norm
  if (ln) {
    Func mean = newFunc(op, name + "_mean", /*inlined=*/false, Role::NormStat);
    def(mean, rows, 0.0f);
    defAdd(mean, rows, x.at(rowR) / width);
    centre = mean(rowIdx);
  }
  Func sq =
      newFunc(op, name + (ln ? "_var" : "_ms"), /*inlined=*/false, Role::NormStat);
  def(sq, rows, 0.0f);
  Expr centred = x.at(rowR) - centre; // two-pass variance
  defAdd(sq, rows, centred * centred / width);

  Func f = newFunc(op, name, /*inlined=*/false, Role::Norm);
  std::vector<Expr> idx = asExprs(vs);
  // Times the row's 1 / sqrt (loop invariant along the row), not a division
  // per element.
  Expr y = (x.at(idx) - centre) * (1.0f / Halide::sqrt(sq(rowIdx) + eps)) *
           g.at({vs.back()});
  if (ln)
    y = y + get(ln.getBeta()).at({vs.back()});
  def(f, vs, y);
  return {f, x.shape};
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


//===----------------------------------------------------------------------===//
// Selections, reductions, gathers, index values and slices
//===----------------------------------------------------------------------===//

/// attn.call as an extern stage that runs the callee's own pipeline (see
/// CallStub). The callee's sizes are the caller's argument extents, so its
/// results' extents follow from the callee's attn.dims.
LogicalResult PipelineBuilder::lowerCall(attn::CallOp op) {
  auto callee = SymbolTable::lookupNearestSymbolFrom<func::FuncOp>(
      op, op.getCalleeAttr());
  if (!callee)
    return op.emitError("calls unknown model @") << op.getCallee();
  attn::CallStub stub;
  stub.callee = attn::halideFunctionName(callee.getSymName());
  stub.name = "attn__stub_" + callee.getSymName().str();
  stub.numParams = op.getParams().size();

  // The callee's sizes in terms of the caller's extents.
  llvm::StringMap<Expr> sizes;
  std::vector<Halide::ExternFuncArgument> xargs;
  auto entryArg = [](Value v) {
    auto arg = dyn_cast<BlockArgument>(v);
    return arg && arg.getOwner()->isEntryBlock() ? arg : BlockArgument();
  };
  for (auto [i, a] : llvm::enumerate(op.getArgs())) {
    const Tensor &t = get(a);
    auto dims = callee.getArgAttrOfType<ArrayAttr>(i, "attn.dims");
    bool inout = (bool)callee.getArgAttr(i, "attn.inout");
    stub.argInout.push_back(inout);
    if (inout) {
      // The caller's own buffer, whole or one slice of its dim 0: the
      // callee writes into it in place.
      BlockArgument whole = entryArg(a);
      int slice = -1;
      if (auto sl = a.getDefiningOp<attn::SliceOp>();
          sl && sl.getDrop() && sl.getDim() == 0 && sl.getStart() >= 0) {
        whole = entryArg(sl.getX());
        slice = (int)sl.getStart();
      }
      if (!whole)
        return op.emitError("inout argument ")
               << i << " of @" << op.getCallee()
               << " must be an inout argument of the caller or a slice of one";
      xargs.push_back(params[whole.getArgNumber()]);
      xargs.push_back(Expr(slice));
      for (size_t k = 0; k < t.rank(); ++k)
        if (auto sym = dims ? dyn_cast<StringAttr>(dims[k]) : StringAttr())
          sizes.try_emplace(sym.getValue(), t.shape[k]);
      stub.argRanks.push_back(t.rank());
      continue;
    }
    auto arg = dyn_cast<BlockArgument>(a);
    if (arg && arg.getOwner()->isEntryBlock())
      xargs.push_back(params[arg.getArgNumber()]);
    else
      xargs.push_back(t.func);
    for (size_t k = 0; k < t.rank(); ++k) {
      xargs.push_back(Halide::cast<int32_t>(t.shape[k]));
      if (auto sym = dims ? dyn_cast<StringAttr>(dims[k]) : StringAttr())
        sizes.try_emplace(sym.getValue(), t.shape[k]);
    }
    stub.argRanks.push_back(t.rank());
  }
  if (!hasTable) {
    hasTable = true;
    out.args.push_back(table);
    out.argTensors.push_back(-1);
  }
  xargs.push_back(table);
  for (Value p : op.getParams()) {
    auto arg = dyn_cast<BlockArgument>(p);
    if (!arg || !arg.getOwner()->isEntryBlock())
      return op.emitError("a call's params must be the model's own params");
    xargs.push_back((int)arg.getArgNumber()); // inputs, params: table order
  }
  std::vector<std::vector<Expr>> shapes;
  Expr total = 0;
  for (auto [r, v] : llvm::enumerate(op.getResults())) {
    auto type = cast<RankedTensorType>(v.getType());
    auto dims = callee.getResultAttrOfType<ArrayAttr>(r, "attn.dims");
    std::vector<Expr> shape;
    Expr size = 1;
    for (int64_t k = 0; k < type.getRank(); ++k) {
      Expr e;
      if (auto n = dims ? dyn_cast<IntegerAttr>(dims[k]) : IntegerAttr())
        e = (int)n.getInt();
      else if (auto sym = dims ? dyn_cast<StringAttr>(dims[k]) : StringAttr())
        e = sizes.lookup(sym.getValue());
      if (!e.defined())
        return op.emitError("result ") << r << " of @" << op.getCallee()
                                       << " has a size its arguments do not bind";
      shape.push_back(e);
      size = size * e;
      xargs.push_back(Halide::cast<int32_t>(e));
    }
    total = total + size;
    shapes.push_back(shape);
    stub.resultRanks.push_back(type.getRank());
    stub.resultTypes.push_back(halideType(type.getElementType()));
  }

  std::string name = opName(op);
  size_t n = shapes.size();
  stub.packed = n > 1;
  if (stub.packed)
    for (Value v : op.getResults())
      if (halideType(cast<RankedTensorType>(v.getType()).getElementType())
              .bytes() != 4)
        return op.emitError("a call of a model with several results needs "
                            "f32 or i32 results for now, got ")
               << v.getType();
  Func ext(uniqueName(name));
  if (!stub.packed) {
    std::vector<Expr> shape = shapes[0];
    if (shape.empty())
      shape.push_back(1); // a scalar as one element
    std::vector<Var> vs = makeVars(shape.size());
    ext.define_extern(stub.name, xargs, stub.resultTypes[0],
                      std::vector<Var>(vs.rbegin(), vs.rend()));
    for (size_t k = 0; k < shape.size(); ++k)
      ext.bound(vs[k], 0, shape[k]);
    Func f = ext;
    if (shapes[0].empty()) {
      f = newFunc(op, name + "_0", /*inlined=*/true);
      f() = ext(0);
    }
    tensors[op.getResult(0)] = {f, shapes[0]};
  } else {
    Var x("d0");
    ext.define_extern(stub.name, xargs, Halide::Float(32),
                      std::vector<Var>{x});
    ext.bound(x, 0, simplified(total));
    Expr offset = 0;
    for (size_t r = 0; r < n; ++r) {
      std::vector<Var> vs = makeVars(shapes[r].size());
      Expr flat = 0;
      for (size_t k = 0; k < shapes[r].size(); ++k)
        flat = flat * shapes[r][k] + vs[k];
      Expr v = ext(simplified(offset) + flat);
      if (stub.resultTypes[r] != Halide::Float(32))
        v = Halide::reinterpret(stub.resultTypes[r], v);
      Func f = newFunc(op, name + "_" + std::to_string(r), /*inlined=*/true);
      def(f, vs, v);
      tensors[op.getResult(r)] = {f, shapes[r]};
      Expr size = 1;
      for (const Expr &e : shapes[r])
        size = size * e;
      offset = offset + size;
    }
  }
  out.externs.push_back(ext);
  bool known = false;
  for (const attn::CallStub &s : out.stubs)
    known |= s.name == stub.name;
  if (!known)
    out.stubs.push_back(stub);
  return success();
}

/// The cache after the write, read in place (never copied):
///   result[b, h, t, d] = t - start[b] in [0, S) ? new[b, h, t - start[b], d]
///                                               : cache[b, h, t, d]
/// The new rows and the starts are extra outputs that the C wrapper writes
/// back (CacheWrite); a start outside [0, T - S] fails the call.
Tensor PipelineBuilder::lowerCacheWrite(attn::CacheWriteOp op) {
  const Tensor &cache = get(op.getCache());
  const Tensor &rows = get(op.getNewRows());
  const Tensor &start = get(op.getStart());
  std::string name = opName(op);
  Expr S = rows.shape[2], T = cache.shape[2];
  auto arg = cast<BlockArgument>(op.getCache());
  std::string cacheName =
      model.getArgAttrOfType<StringAttr>(arg.getArgNumber(), "attn.name")
          .getValue()
          .str();

  Var c("c");
  Func range = newFunc(op, name + "_startrange", false, Role::Host);
  range(c) = Halide::select(c == 0, Halide::Int(32).max(),
                            Halide::Int(32).min());
  RDom rb(0, start.shape[0], "b");
  range(0) = Halide::min(range(0), start.at({rb}));
  range(1) = Halide::max(range(1), start.at({rb}));
  Func check = newFunc(op, name + "_startcheck", false, Role::Host);
  check(c) = Halide::require(range(0) >= 0 && range(1) + S <= T, 0,
                             "cache_write:", cacheName, "holds", T,
                             "positions but start + S reaches", range(1) + S,
                             "(smallest start", range(0), ")");

  std::vector<Var> vs = makeVars(4);
  Expr b = vs[0], t = vs[2];
  // (Reads stay in bounds whatever start is: the check fails the call
  // through the starts output, which the write-back needs.)
  Expr local = t - start.at({b});
  // The new rows as the cache stores them (an f16/bf16 cache rounds them),
  // so that this call reads what later calls will read from the cache.
  Halide::Type cacheType = halideType(
      cast<RankedTensorType>(op.getCache().getType()).getElementType());
  Expr fresh = Halide::cast<float>(Halide::cast(
      cacheType,
      rows.at({vs[0], vs[1], Halide::clamp(local, 0, S - 1), vs[3]})));
  Expr old = Halide::cast<float>(cache.at(asExprs(vs)));
  Func merged = newFunc(op, name, /*inlined=*/true);
  def(merged, vs, Halide::select(local >= 0 && local < S, fresh, old));

  attn::CacheWrite w;
  w.cache = arg.getArgNumber();
  if (auto n = dyn_cast<IntegerAttr>(op.getRows()))
    w.rows = n.getInt();
  else {
    StringRef sym = cast<StringAttr>(op.getRows()).getValue();
    auto it = std::find(out.syms.begin(), out.syms.end(), sym.str());
    w.rows = -(int64_t)(it - out.syms.begin()) - 1;
  }
  w.type = cacheType;
  w.newRows = Func(uniqueName(cacheName + "_rows"));
  def(w.newRows, vs, Halide::cast(w.type, rows.at(asExprs(vs))));
  w.starts = Func(uniqueName(cacheName + "_starts"));
  Var bv("d0");
  w.starts(bv) = start.at({bv}) + check(0);
  std::vector<Expr> rowShape = {cache.shape[0], cache.shape[1], S,
                                cache.shape[3]};
  for (int k = 0; k < 4; ++k) {
    Halide::Internal::Dimension dim = w.newRows.output_buffer().dim(3 - k);
    dim.set_min(0);
    dim.set_extent(rowShape[k]);
  }
  w.starts.output_buffer().dim(0).set_min(0);
  w.starts.output_buffer().dim(0).set_extent(cache.shape[0]);
  out.cacheWrites.push_back(w);
  return {merged, cache.shape};
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

//===----------------------------------------------------------------------===//
// Driver
//===----------------------------------------------------------------------===//

LogicalResult PipelineBuilder::lower(Operation *op) {
  using namespace attn;
  if (isa<CausalOp, SlidingWindowOp, PaddingOp, TensorMaskOp, MaskAndOp>(op)) {
    masks[op->getResult(0)] = lowerMask(op);
    return success();
  }
  if (auto split = dyn_cast<SplitOp>(op))
    return lowerSplit(split);
  if (isa<LinearOp, FusedLinearOp, MultiLinearOp>(op))
    return lowerProjection(op);
  if (auto call = dyn_cast<CallOp>(op))
    return lowerCall(call);

  std::optional<Tensor> t =
      llvm::TypeSwitch<Operation *, std::optional<Tensor>>(op)
          .Case([&](ConstantOp c) { return lowerConstant(c); })
          .Case([&](CastOp c) { return lowerCast(c); })
          .Case([&](AddOp) {
            return lowerBinary(op, [](Expr a, Expr b) { return a + b; });
          })
          .Case([&](SubOp) {
            return lowerBinary(op, [](Expr a, Expr b) { return a - b; });
          })
          .Case([&](MulOp) {
            return lowerBinary(op, [](Expr a, Expr b) { return a * b; });
          })
          .Case([&](DivOp) {
            return lowerBinary(op, [](Expr a, Expr b) { return a / b; });
          })
          .Case([&](AndOp) {
            return lowerBinary(op, [](Expr a, Expr b) { return a & b; });
          })
          .Case([&](NegOp) {
            return lowerUnary(op, [](Expr x) { return -x; });
          })
          .Case([&](OrOp) {
            return lowerBinary(op, [](Expr a, Expr b) { return a | b; });
          })
          .Case([&](MinOp) {
            return lowerBinary(op, [](Expr a, Expr b) { return Halide::min(a, b); });
          })
          .Case([&](MaxOp) {
            return lowerBinary(op, [](Expr a, Expr b) { return Halide::max(a, b); });
          })
          .Case([&](CmpOp c) {
            CmpPredicate p = c.getPredicate();
            return lowerBinary(op, [p](Expr a, Expr b) {
              Expr r = p == CmpPredicate::lt   ? a < b
                       : p == CmpPredicate::le ? a <= b
                       : p == CmpPredicate::gt ? a > b
                       : p == CmpPredicate::ge ? a >= b
                       : p == CmpPredicate::eq ? a == b
                                               : a != b;
              return Halide::cast<uint8_t>(r);
            });
          })
          .Case([&](NotOp) {
            return lowerUnary(
                op, [](Expr x) { return Halide::cast<uint8_t>(x == 0); });
          })
          .Case([&](ExpOp) { return lowerUnary(op, [](Expr x) { return Halide::exp(x); }); })
          .Case([&](LogOp) { return lowerUnary(op, [](Expr x) { return Halide::log(x); }); })
          .Case([&](SqrtOp) { return lowerUnary(op, [](Expr x) { return Halide::sqrt(x); }); })
          .Case([&](RsqrtOp) {
            return lowerUnary(op, [](Expr x) { return 1.0f / Halide::sqrt(x); });
          })
          .Case([&](TanhOp) { return lowerUnary(op, [](Expr x) { return Halide::tanh(x); }); })
          .Case([&](SigmoidOp) {
            return lowerUnary(op, [](Expr x) { return 1.0f / (1.0f + Halide::exp(-x)); });
          })
          .Case([&](AbsOp) {
            return lowerUnary(op, [](Expr x) {
              return Halide::cast(x.type(), Halide::abs(x));
            });
          })
          .Case([&](SelectOp s) { return lowerSelect(s); })
          .Case([&](CacheWriteOp w) { return lowerCacheWrite(w); })
          .Case([&](ReduceOp r) { return lowerReduce(r); })
          .Case([&](MeanPoolOp m) { return lowerMeanPool(m); })
          .Case([&](L2NormalizeOp n) { return lowerL2Normalize(n); })
          .Case([&](EmbeddingOp e) { return lowerEmbedding(e); })
          .Case([&](ArangeOp a) { return lowerArange(a); })
          .Case([&](SliceOp s) { return lowerSlice(s); })
          .Case([&](UnsqueezeOp u) {
            const Tensor &x = get(u.getX());
            int64_t d = (int64_t)u.getDim();
            std::vector<Expr> shape = x.shape;
            shape.insert(shape.begin() + d, 1);
            std::vector<Var> vs = makeVars(shape.size());
            std::vector<Expr> xi = asExprs(vs);
            xi.erase(xi.begin() + d);
            Func f = newFunc(op, opName(op));
            def(f, vs, x.at(xi));
            return Tensor{f, shape};
          })
          .Case<GeluOp, GeluTanhOp, SiluOp, ReluOp>([&](Operation *) {
            Activation act = isa<GeluOp>(op)       ? Activation::gelu
                             : isa<GeluTanhOp>(op) ? Activation::gelu_tanh
                             : isa<SiluOp>(op)     ? Activation::silu
                                                   : Activation::relu;
            return lowerUnary(
                op, [act](Expr x) { return applyActivation(act, x); });
          })
          .Case([&](MatmulOp m) { return lowerMatmul(m); })
          .Case<TransposeOp, SplitHeadsOp, MergeHeadsOp>(
              [&](Operation *) { return lowerLayout(op); })
          .Case([&](ConcatOp c) { return lowerConcat(c); })
          .Case([&](SoftmaxOp s) { return lowerSoftmax(s); })
          .Case([&](AttentionOp a) { return lowerAttention(a); })
          .Case<LayerNormOp, RmsNormOp>(
              [&](Operation *) { return lowerNorm(op); })
          .Case([&](RopeOp r) { return lowerRope(r); })
          .Default([](Operation *) { return std::nullopt; });
  if (!t)
    return emitError(op->getLoc(), "the Halide back end does not support '")
           << op->getName() << "'";
  tensors[op->getResult(0)] = *t;
  return success();
}

LogicalResult PipelineBuilder::build() {
  out.name = model.getSymName().str();
  out.functionName = attn::halideFunctionName(out.name);
  if (failed(lowerArguments()))
    return failure();
  out.halideName = out.functionName;
  model.walk([&](attn::CallOp) { out.halideName = out.functionName + "__impl"; });
  for (Operation &op : model.getBody().front()) {
    auto ret = dyn_cast<func::ReturnOp>(op);
    if (failed(attn::catchHalideErrors(op.getLoc(), [&] {
          return ret ? lowerResults(ret) : lower(&op);
        })))
      return failure();
  }
  if (!out.cacheWrites.empty())
    out.halideName = out.functionName + "__impl";
  return attn::catchHalideErrors(model.getLoc(), [&] {
    std::vector<Func> outputs = out.outputs;
    for (const attn::CacheWrite &w : out.cacheWrites) {
      outputs.push_back(w.newRows);
      outputs.push_back(w.starts);
    }
    out.pipeline = Halide::Pipeline(outputs);
    return success();
  });
}

} // namespace

LogicalResult attn::catchHalideErrors(Location loc,
                                      llvm::function_ref<LogicalResult()> fn) {
  try {
    return fn();
  } catch (const Halide::Error &e) {
    // Halide's messages read "Error: ...\n".
    StringRef msg = StringRef(e.what()).trim();
    msg.consume_front("Error:");
    return emitError(loc) << "Halide: " << msg.trim();
  } catch (const std::exception &e) {
    return emitError(loc) << "Halide back end: " << e.what();
  }
}

FailureOr<attn::ModelPipeline> attn::buildPipeline(func::FuncOp model) {
  ModelPipeline out{/*name=*/"", /*functionName=*/"", model.getLoc()};
  if (failed(PipelineBuilder(model, out).build()))
    return failure();
  return out;
}
