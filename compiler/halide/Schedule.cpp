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
// `compute = "inline"` ops (layout ops, casts, masks) get no buffer and are
// folded into each consumer; without the attribute every op is computed at
// root, which is what --no-fusion compares against.
//
//===----------------------------------------------------------------------===//
#include "attn/Halide/HalideGen.h"
#include "attn/Dialect/AttnDialect.h"

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

/// compute_root; innermost dim vectorised, outermost parallel.
static void scheduleRoot(Func f, const Halide::Target &target) {
  f.compute_root();
  std::vector<Var> args = f.args(); // args[0] is the innermost dim
  int width = target.natural_vector_size(f.output_types()[0]);
  Var inner = args.front();
  bool parallel = args.size() > 1, fuse = args.size() > 2;
  f.vectorize(inner, width, TailStrategy::GuardWithIf);
  if (parallel)
    parallelOuter(f, args, fuse);
  for (int u = 0; u < f.num_update_definitions(); ++u) {
    Halide::Stage s = f.update(u);
    if (updateKeeps(f, u, inner))
      s.vectorize(inner, width, TailStrategy::GuardWithIf);
    bool keepsOuter = parallel && updateKeeps(f, u, args.back());
    if (keepsOuter)
      parallelOuter(s, args,
                    fuse && updateKeeps(f, u, args[args.size() - 2]));
  }
}

/// The schedule attribute of the op that defined `f`, if any.
static attn::ScheduleAttr scheduleOf(const attn::OpFunc &f) {
  return f.op ? f.op->getAttrOfType<attn::ScheduleAttr>("attn.schedule")
              : attn::ScheduleAttr();
}

void attn::applySchedule(ModelPipeline &model, const Halide::Target &target) {
  for (OpFunc &f : model.funcs) {
    if (f.inlined || f.func.dimensions() == 0)
      continue;
    ScheduleAttr s = scheduleOf(f);
    if (s && s.getCompute() == "inline")
      continue; // an index map: folded into every consumer
    scheduleRoot(f.func, target);
  }
  for (Func &f : model.outputs)
    if (f.dimensions() > 0)
      scheduleRoot(f, target);
}
