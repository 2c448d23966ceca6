//===- Pipelines.cpp - The attn pass pipelines ----------------------------===//
#include "attn/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

void attn::buildFusionPipeline(OpPassManager &pm) {
  pm.addPass(createAttnFuseAttention());
  pm.addPass(createAttnFuseEpilogues());
  pm.addPass(createAttnFuseProjections());
  pm.addPass(createAttnFoldLayout());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
}

void attn::buildScheduledPipeline(OpPassManager &pm, const TargetDesc &target,
                                  ArrayRef<std::string> overrides,
                                  bool fuse) {
  if (fuse)
    buildFusionPipeline(pm);
  AttnScheduleOptions options;
  options.target = target.name().str();
  options.l1 = target.l1Bytes;
  options.l2 = target.l2Bytes;
  options.l3 = target.l3Bytes;
  options.overrides = llvm::to_vector(overrides);
  pm.addPass(createAttnSchedule(options));
}

void attn::registerAttnPipelines() {
  registerAttnPasses();
  PassPipelineRegistration<>("attn-fuse",
                             "Fuse attn IR as written (attnc --emit=fused)",
                             buildFusionPipeline);
  PassPipelineRegistration<>(
      "attn-fuse-and-schedule",
      "Fuse, then schedule for AVX-512 (attnc --emit=scheduled)",
      [](OpPassManager &pm) { buildScheduledPipeline(
            pm, TargetDesc::get(TargetDesc::Family::AVX512), {}); });
}
