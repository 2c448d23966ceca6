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

void attn::buildScheduledPipeline(OpPassManager &pm, const std::string &target,
                                  ArrayRef<std::string> overrides) {
  buildFusionPipeline(pm);
  AttnScheduleOptions options;
  options.target = target;
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
      [](OpPassManager &pm) { buildScheduledPipeline(pm, "avx512", {}); });
}
