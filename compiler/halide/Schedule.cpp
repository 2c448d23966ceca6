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
#include "Lowering.h"

#include "mlir/IR/BuiltinTypes.h"

#include <map>
#include <set>

using namespace attn::detail;
using Halide::TailStrategy;

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
  // A split model: each segment is a pipeline of its own.
  for (ModelPipeline &seg : model.segments)
    applySchedule(seg, target);
  if (!model.segments.empty())
    return;
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
  // Without a rows schedule at root (--no-fusion) norms stay at root below.
  std::set<mlir::Operation *> tiledNorms;
  for (NormKernel &n : model.norms) {
    auto s = n.op->getAttrOfType<RowsScheduleAttr>("attn.schedule");
    if (!s || s.getCompute() != ComputeKind::Root || n.out.dimensions() < 1)
      continue;
    NormKernel k = n;
    k.out = placed(n.out);
    scheduleNorm(k, s);
    tiledNorms.insert(n.op);
  }
  for (OpFunc &f : model.funcs) {
    if (f.inlined || f.func.dimensions() == 0 || tiledGemms.count(f.op) ||
        tiledNorms.count(f.op) ||
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
