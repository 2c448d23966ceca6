//===- HalideGen.h - attn IR -> Halide algorithm and schedule ---*- C++ -*-===//
//
// Internal to compiler/halide: the sources that include this header are built
// with -fexceptions because Halide reports errors by throwing Halide::Error.
//
//===----------------------------------------------------------------------===//
#ifndef ATTN_HALIDE_HALIDEGEN_H
#define ATTN_HALIDE_HALIDEGEN_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Location.h"

#include <Halide.h>

#include <string>
#include <vector>

namespace attn {

/// Resolves a --target name: host, cuda (sm_80), opencl or a Halide target
/// string; anything else is an error at `loc` that lists the known ones.
mlir::FailureOr<Halide::Target> parseTarget(mlir::Location loc,
                                            llvm::StringRef name);

/// One tensor of a model's table entry (runtime/include/attn/abi.h).
struct TensorDesc {
  enum Role { Input = 0, Param = 1, Output = 2, Inout = 3 };
  enum DType { F32 = 0, F16 = 1, BF16 = 2, I32 = 3, Bool = 4 };
  std::string name;
  std::string weightName; ///< params only
  Role role;
  DType dtype;
  /// Outermost first; a symbolic size k is encoded as -(k + 1).
  std::vector<int64_t> dims;
};

/// A Func the algorithm defined for an op, kept for the schedule. `op` lets a
/// schedule read a per-op attribute later.
struct OpFunc {
  Halide::Func func;
  mlir::Operation *op;
  bool inlined; ///< a cheap point-wise helper the schedule may inline
  /// What the Func is within its op, for ops whose schedule treats their
  /// Funcs together.
  enum class Role {
    Plain,     ///< the op's plain result or a helper
    Attention, ///< an AttentionKernel's
    GemmPack,  ///< a GemmKernel's packed weights
    GemmAcc,   ///< a GemmKernel's accumulator
    GemmDot,   ///< a GemmKernel's dot products (few rows)
    GemmOut,   ///< a GemmKernel's epilogue output
    Norm,      ///< a layer_norm or rms_norm result
    NormStat,  ///< its row mean / variance
    Host,      ///< computed on the host on GPU targets (a failing check)
  } role = Role::Plain;
};

/// The Funcs of one flash-style attention op (HalideGen.cpp), kept so that
/// Schedule.cpp can tile them as the op's schedule says. Halide dims
/// (innermost first): the query tile `qtile(ii, d, it, h, b)`; per block r
/// of `kvb` keys, the scores and probabilities `(ii, jj, r, it, h, b)`, the
/// block's row max and sum `(ii, r, it, h, b)` and its P V `(e, ii, r, it,
/// h, b)`; the online-softmax state `(e, ii, it, h, b)` (a Tuple: output,
/// running max, running sum) updated block by block over `kv`; the output
/// tile `(e, ii, it, h, b)` and the result `out(e, i, h, b)`, where query
/// i = it * qtb + ii and key j = r * kvb + jj.
struct AttentionKernel {
  mlir::Operation *op;
  int qt; ///< queries per tile of the whole-row variant
  int kvb; ///< keys per block: the scores that exist at once are qt x kvb
  Halide::RDom d; ///< the q.k reduction over the head dim (every variant)
  /// A blocked (online-softmax) variant, tiles of `qt` queries: the scaled
  /// query tile `(ii, d, it, h, b)`, per key block r the q.k accumulator,
  /// scores and probabilities `(ii, jj, r, it, h, b)`, block max and sum
  /// `(ii, r, it, h, b)`, P V `(e, ii, r, it, h, b)`, the running state
  /// (O, m, l) `(e, ii, it, h, b)` and the output tile.
  struct Blocked {
    int qt;
    Halide::Func qtile, sacc, scores, blockMax, probs, blockSum, pv, state,
        otile;
    Halide::RDom kv; ///< key blocks, bounded per query tile by the mask
    Halide::RDom rj; ///< keys of one block (max, sum, P V)
  };
  /// The variant for many queries (`qb` rows a tile), and the one for a few
  /// (decode: one query row a tile, `useFew`), so that a decode step does
  /// not compute a whole tile of clamped copies of its one query.
  Blocked blocked, few;
  Halide::Func out;
  /// The whole-row variant (Sk <= the schedule's `rows`), tiles of qt
  /// queries (i = it * qt + ii): the scaled query tile `(ii, d, it, h, b)`,
  /// scores and probabilities `(ii, j, it, h, b)` for every key j, row max
  /// and sum `(ii, it, h, b)`, P V and the output tile `(e, ii, it, h, b)`.
  struct Rows {
    Halide::Func qtile, sacc, scores, rowMax, probs, rowSum, oacc, otile;
    Halide::RDom kv; ///< keys, bounded per query tile by the mask
  } rows;
  /// When the variants are built: true where `out` takes the whole-row one,
  /// and where it takes the few-queries one (tested first).
  Halide::Expr useRows, useFew;
};

/// The Funcs of one projection (linear, fused_linear, multi_linear), Halide
/// dims innermost first: the packed weight `wt(n, k)`, the accumulator and
/// the epilogue output `(n, rows...)` where the rows are x's leading dims.
struct GemmKernel {
  mlir::Operation *op;
  Halide::Func wt, acc, y;
  Halide::RDom k;
  Halide::Expr rows; ///< extent of the innermost row dim (undefined: none)
  int64_t n;         ///< outputs (static; 0 if symbolic: not tiled)
  /// 0: the pack is wt(n, k). V > 0: it is wt(ni, nb, k) with
  /// n = nb * V + ni, defined by one update per weight (multi_linear).
  int packLanes = 0;
  /// packLanes > 0: the k of each weight's update of the pack.
  std::vector<Halide::RDom> packK;
  /// Few rows (`useDot`: fewer in all than the schedule's `dot`): y takes
  /// dot products instead, per weight p: `parts[p](l, n, rows...)`, the
  /// V partial sums of lane l over k = l, l + V, ..., summed in `dots[p]`
  /// `(n, rows...)` with the tail of K % V.
  std::vector<Halide::Func> parts, dots;
  Halide::RDom dotK; ///< k / V, the parts' reduction
  Halide::Expr useDot;
};

/// The Funcs of one norm (layer_norm, rms_norm) over the last dim, Halide
/// dims innermost first: the result `out(c, rows...)` and its row
/// statistics `(rows...)` (mean and variance, or the mean square), each a
/// sum over `r`, the row's elements.
struct NormKernel {
  mlir::Operation *op;
  Halide::Func out;
  std::vector<Halide::Func> stats;
  Halide::RDom r;
};

/// The C function that an `attn.call` runs as a Halide extern stage: it
/// answers Halide's bounds queries (every argument is needed whole; its
/// extents come as int32 arguments after its buffer) and otherwise calls
/// the callee's pipeline. Its arguments: per callee argument a buffer and
/// its extents (outermost first) (an inout argument instead: the caller's
/// buffer and the index of its slice on dim 0, or -1), the caller's table of all its buffers
/// (`void **`, in table order) and per callee param its index there, per
/// result its extents, then the output buffer. (Weights thus reach the
/// callee without being arguments of the caller's Halide function, whose
/// checks of hundreds of weight buffers would dominate compile time.) One result is written straight
/// into the output; several (all of 4-byte types) are packed one after the
/// other into a 1-D output buffer (`packed`), which the stub splits into a
/// dense view per result.
struct CallStub {
  std::string name;   ///< the stub's C name
  std::string callee; ///< the callee's pipeline function
  std::vector<int> argRanks;
  std::vector<bool> argInout;
  int numParams = 0; ///< passed as indices into the caller's buffer table
  std::vector<int> resultRanks;
  std::vector<Halide::Type> resultTypes;
  bool packed = false;
};

/// One `attn.cache_write`: the pipeline computes the new rows and their
/// starts as two extra outputs (after the table's), and the C wrapper
/// (Emit.cpp) copies the rows into the cache buffer once the pipeline has
/// returned, so that nothing reads a row after it is overwritten.
struct CacheWrite {
  int cache;         ///< table index of the inout argument
  int64_t rows;      ///< rows per batch row: static (>= 0) or -(symbol + 1)
  Halide::Type type; ///< the cache's element type
  Halide::Func newRows, starts; ///< [B, H, S, D] (cache type), i32[B]
};

/// One step (op, arg) of a size program (attn_size_expr in abi.h); `op` is
/// the attn_expr_op's C name, written into the generated table.
struct SizeOp {
  const char *op;
  int64_t arg;
};

/// A tensor that one segment of a split model (ModelPipeline::segments)
/// computes and later segments read: a dense buffer that the model's C
/// wrapper allocates before its producer runs and frees after its last
/// reader.
struct Boundary {
  std::string name;
  Halide::Type type;
  std::vector<Halide::Expr> shape; ///< MLIR order, over the model's args
  int producer = 0, lastReader = 0; ///< segment indices
};

/// In a segment's argTensors or outputTensors: boundary j is -(j + 2)
/// (-1 is the buffer table, >= 0 a tensor of the model's table).
inline int boundaryRef(int j) { return -(j + 2); }
inline int boundaryOfRef(int ref) { return -ref - 2; }

/// One model as a Halide pipeline plus everything needed to describe it.
struct ModelPipeline {
  std::string name;         ///< the model's DSL name
  std::string functionName; ///< attn_<name>
  mlir::Location loc;
  /// Compiled for calls only (an imported model, or a callee of the
  /// --model chosen): not listed in the library's table.
  bool internal = false;
  /// The Halide function: functionName, or functionName + "__impl" when
  /// the model calls others; then attn_<model> and its _argv are C
  /// wrappers (Emit.cpp) that pass `argTensors` of the table and, for -1,
  /// the table itself.
  std::string halideName;
  std::vector<int> argTensors;
  std::vector<std::string> syms;
  std::vector<TensorDesc> tensors;     ///< inputs, params, outputs
  std::vector<Halide::Argument> args;  ///< inputs and params, table order
  std::vector<Halide::Func> outputs;   ///< table order
  /// Per output: the op Func it copies when that Func may be inlined into
  /// it (a plain or norm result with no other use), else undefined.
  std::vector<Halide::Func> outputSources;
  std::vector<OpFunc> funcs;           ///< every Func the ops defined
  std::vector<AttentionKernel> attentions;
  std::vector<GemmKernel> gemms;
  std::vector<NormKernel> norms;
  std::vector<CallStub> stubs;  ///< one per callee
  std::vector<CacheWrite> cacheWrites;
  std::vector<Halide::Func> externs; ///< the call stages (computed at root)
  Halide::Pipeline pipeline;
  /// The bytes of the pipeline's root buffers as a size program of the
  /// symbolic sizes (scratchProgram); empty: unknown. A split model: the
  /// most that any segment holds at once (its root buffers and the
  /// boundaries alive while it runs).
  std::vector<SizeOp> scratch;

  /// A model of many ops split into several pipelines (PipelineOptions::
  /// segmentOps), so that compile time grows linearly with the op count:
  /// Halide's lowering and LLVM grow faster than the size of one pipeline.
  /// Each segment is a ModelPipeline of its own (halideName
  /// attn_<model>__impl_seg<k>, internal) whose args are `argTensors`
  /// (table tensors, the table, boundaries) and whose outputs go to
  /// `outputTensors`; the C wrapper attn_<model>_argv (Emit.cpp) runs them
  /// in order. Empty: the model is this one pipeline.
  std::vector<ModelPipeline> segments;
  std::vector<Boundary> boundaries;
  /// A segment's: per output, its table tensor or boundaryRef(j).
  std::vector<int> outputTensors;
};

/// How buildPipeline lowers a model.
struct PipelineOptions {
  /// Split a model of more than this many root ops (ops computed into a
  /// buffer of their own, not folded into consumers) into pipelines of
  /// about as many, cut where only root tensors cross; 0: never split.
  int segmentOps = 0;
};

/// The summed bytes of the buffers that `module` (m's compiled pipeline)
/// allocates outside every loop, as a size program over m's sizes; empty
/// when a size is not an expression of the table's tensor dims.
std::vector<SizeOp> scratchProgram(const ModelPipeline &m,
                                   const Halide::Module &module);

/// The scratch of a split model (ModelPipeline::segments) from its
/// segments' (each compiled, with its scratch set): the most, over the
/// segments, of a segment's scratch plus the boundaries alive while it
/// runs. Empty when one is unknown.
std::vector<SizeOp> splitScratchProgram(const ModelPipeline &m);

/// Runs `fn`, turning a Halide::Error (or other std::exception) it throws
/// into an error diagnostic at `loc`: the boundary between Halide and MLIR.
mlir::LogicalResult
catchHalideErrors(mlir::Location loc,
                  llvm::function_ref<mlir::LogicalResult()> fn);

/// Builds the algorithm of `model`. Reports errors (including Halide's) as
/// diagnostics at the offending op and fails; never throws.
mlir::FailureOr<ModelPipeline>
buildPipeline(mlir::func::FuncOp model, const PipelineOptions &options = {});

/// `e`, an expression of the model's argument extents (e.g. a boundary's
/// size), as a size program of m's symbolic sizes; empty if it is not one.
std::vector<SizeOp> sizeProgram(const ModelPipeline &m, const Halide::Expr &e);

/// Schedules every Func as its op's `attn.schedule` attribute says
/// (Schedule.cpp); ops without one get the plain default: compute_root,
/// innermost dim vectorised by the target's natural width (GuardWithIf),
/// outermost dims parallel, reduction updates vectorised where legal. May
/// throw Halide::Error.
void applySchedule(ModelPipeline &model, const Halide::Target &target);

} // namespace attn

#endif // ATTN_HALIDE_HALIDEGEN_H
