//===- Lowering.h - The pieces shared by HalideGen and the kernels -*- C++ -*-===//
//
// Private to compiler/halide. HalideGen.cpp walks a model and dispatches each
// op to its family's kernel (kernels/*.cpp: Gemm, Attention, Norm,
// Elementwise, Layout), which defines the op's Halide Funcs; Schedule.cpp
// dispatches each kernel to its family's schedule function, which lives
// next to the definition. Conventions (MLIR-order indices, i1 as uint8,
// clamped computed indices) are described at the top of HalideGen.cpp.
//
//===----------------------------------------------------------------------===//
#ifndef ATTN_HALIDE_LOWERING_H
#define ATTN_HALIDE_LOWERING_H

#include "attn/Dialect/AttnDialect.h"
#include "attn/Dialect/AttnOps.h"
#include "attn/Halide/Approx.h"
#include "attn/Halide/HalideGen.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"

#include <cmath>
#include <functional>

namespace attn::detail {

using llvm::SmallVector;
using llvm::StringRef;
using mlir::failure;
using mlir::LogicalResult;
using mlir::Operation;
using mlir::success;
using mlir::Type;
using mlir::Value;
namespace func = mlir::func;
using Halide::Expr;
using Halide::Func;
using Halide::RDom;
using Halide::Var;
using Role = attn::OpFunc::Role;

/// A masked-out score. Halide compiles with fast math, so no -inf.
inline constexpr float kMaskedScore = -1e30f;

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

inline Expr simplified(Expr e) { return Halide::Internal::simplify(e); }

inline std::vector<Expr> reversed(std::vector<Expr> v) {
  std::reverse(v.begin(), v.end());
  return v;
}

/// Fresh pure Vars d0..d{rank-1} (d0 = outermost, MLIR order).
inline std::vector<Var> makeVars(size_t rank) {
  std::vector<Var> vs;
  for (size_t k = 0; k < rank; ++k)
    vs.push_back(Var("d" + std::to_string(k)));
  return vs;
}

inline std::vector<Expr> asExprs(const std::vector<Var> &vs) {
  return std::vector<Expr>(vs.begin(), vs.end());
}

/// Defines `f(vs) = e` with MLIR-order vars.
inline void def(Func f, std::vector<Var> vs, Expr e) {
  std::reverse(vs.begin(), vs.end());
  f(vs) = e;
}

/// Adds the update `f(vs) += e` with MLIR-order vars.
inline void defAdd(Func f, const std::vector<Var> &vs, Expr e) {
  f(reversed(asExprs(vs))) += e;
}

/// Adds the update `f(vs) = max(f(vs), e)` with MLIR-order vars.
inline void defMax(Func f, const std::vector<Var> &vs, Expr e) {
  std::vector<Expr> idx = reversed(asExprs(vs));
  f(idx) = Halide::max(f(idx), e);
}

/// NumPy broadcasting: the index into an operand of extents `shape` for the
/// result index `idx` (aligned from the right; static size-1 dims read 0).
inline std::vector<Expr> broadcastIndex(const std::vector<Expr> &shape,
                                 const std::vector<Expr> &idx) {
  std::vector<Expr> out;
  size_t offset = idx.size() - shape.size();
  for (size_t k = 0; k < shape.size(); ++k)
    out.push_back(Halide::Internal::is_const_one(shape[k]) ? Expr(0)
                                                           : idx[offset + k]);
  return out;
}

/// The broadcast extents of two shapes (the front end checked them).
inline std::vector<Expr> broadcastShape(const std::vector<Expr> &a,
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
inline Expr extentByName(const std::string &buffer, int k) {
  return Halide::Internal::Variable::make(
      Halide::Int(32), buffer + ".extent." + std::to_string(k));
}

inline Halide::Type halideType(Type t) {
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

inline attn::TensorDesc::DType tableType(Type t) {
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
inline Expr applyActivation(attn::Activation act, Expr x) {
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
  PipelineBuilder(func::FuncOp model, attn::ModelPipeline &out,
                  const attn::PipelineOptions &options)
      : model(model), out(out), options(options) {}

  LogicalResult build();

  // Splitting into segments (HalideGen.cpp; attn::PipelineOptions).
  /// 1 for an op computed into a buffer of its own, 0 for one folded into
  /// its consumers (or none: masks).
  int rootCost(Operation &op);
  /// What crosses a cut: tensors `values` (each read up to op `until`),
  /// masks that the next segment lowers again (`maskOps`; the tensors they
  /// read are among `values` or boundaries already, whose last reader
  /// `extend` moves later).
  struct Crossing {
    std::vector<Value> values;
    std::vector<unsigned> until;
    std::vector<Operation *> maskOps;
    std::vector<std::pair<int, unsigned>> extend;
  };
  /// Whether the values `open` (defined in this segment, read after it)
  /// can cross to the next segment, as `c`: root tensors of rank >= 1
  /// whose sizes are sizes of the model, and masks.
  bool crossing(llvm::ArrayRef<Value> open, Crossing &c);
  /// Ends the current segment after op `cutAt`: `c.values` become its
  /// outputs and the next segments' inputs (boundaries).
  void cut(const Crossing &c, int cutAt);
  /// Moves what the kernels collected in `out` into a new segment, with
  /// outputs `outputs` (going to `targets`), and builds its pipeline.
  void closeSegment(std::vector<Func> outputs, std::vector<Func> sources,
                    std::vector<int> targets);
  /// The Func of `v`, if the output copy of `v` (which nothing else in its
  /// pipeline reads) may compute it in place (see lowerResults).
  Func outputSource(Value v, bool onlyUse);

  // What the kernels (compiler/halide/kernels/*.cpp) share.
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

  // The dispatcher (HalideGen.cpp) and the ops it lowers itself.
  LogicalResult lower(Operation *op);
  LogicalResult lowerCall(attn::CallOp op);
  Tensor lowerCacheWrite(attn::CacheWriteOp op);
  // kernels/Gemm.cpp
  LogicalResult lowerProjection(Operation *op);
  Tensor lowerMatmul(attn::MatmulOp op);
  // kernels/Attention.cpp
  Mask lowerMask(Operation *op);
  Tensor lowerSoftmax(attn::SoftmaxOp op);
  Tensor lowerAttention(attn::AttentionOp op);
  /// The keys [lo, hi) that `mask` can keep for query rows [iMin, iMax]
  /// (undefined: unbounded on that side).
  void kvBounds(Value mask, Expr iMin, Expr iMax, Expr b, Expr off,
                bool withLengths, Expr &lo, Expr &hi);
  /// The pieces of a masked softmax over the last dim of `scores`:
  /// exps = keep ? exp(s - max) : 0, and denom = sum(exps) or 1 when every
  /// score of the row is masked (so such a row gives exactly 0).
  struct SoftmaxParts {
    Func exps, denom;
  };
  SoftmaxParts softmaxParts(Operation *op, const std::string &name,
                            const Tensor &scores, const Mask *mask);
  // kernels/Norm.cpp
  Tensor lowerNorm(Operation *op);
  Tensor lowerMeanPool(attn::MeanPoolOp op);
  Tensor lowerL2Normalize(attn::L2NormalizeOp op);
  // kernels/Elementwise.cpp
  Tensor lowerConstant(attn::ConstantOp op);
  Tensor lowerCast(attn::CastOp op);
  Tensor lowerBinary(Operation *op, std::function<Expr(Expr, Expr)> fn);
  Tensor lowerUnary(Operation *op, std::function<Expr(Expr)> fn);
  Tensor lowerSelect(attn::SelectOp op);
  Tensor lowerRope(attn::RopeOp op);
  Tensor lowerReduce(attn::ReduceOp op);
  Tensor lowerEmbedding(attn::EmbeddingOp op);
  Tensor lowerArange(attn::ArangeOp op);
  // kernels/Layout.cpp
  Tensor lowerLayout(Operation *op);
  LogicalResult lowerSplit(attn::SplitOp op);
  Tensor lowerConcat(attn::ConcatOp op);
  Tensor lowerSlice(attn::SliceOp op);

  Tensor &get(Value v) { return tensors[v]; }

  func::FuncOp model;
  attn::ModelPipeline &out;
  attn::PipelineOptions options;
  /// Splitting: the boundary of each value that crossed a cut, and the
  /// op index of its last reader.
  llvm::DenseMap<Value, int> boundaryOf;
  std::vector<unsigned> boundaryLastOp;
  llvm::DenseMap<Operation *, unsigned> opIndex; ///< in the model's body
  llvm::DenseMap<Value, unsigned> lastUse;       ///< op index of the last reader
  std::vector<int> cuts; ///< the op index each segment but the last ends at
  void finishSegments();
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
// Schedules, one per kernel family (next to the kernel's definition)
//===----------------------------------------------------------------------===//

/// A projection (GemmKernel) as its #attn.gemm_schedule says.
void scheduleGemm(GemmKernel &g, GemmScheduleAttr s);
/// Flash attention (AttentionKernel) as its #attn.attention_schedule says.
void scheduleAttention(AttentionKernel &a, AttentionScheduleAttr s);
/// A norm (NormKernel) as its #attn.rows_schedule says.
void scheduleNorm(NormKernel &n, RowsScheduleAttr s);

} // namespace attn::detail

#endif // ATTN_HALIDE_LOWERING_H
