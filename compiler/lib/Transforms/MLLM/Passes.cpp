//===- Passes.cpp - Registration of the mllm passes -----------------------===//

#include "mllm/Transforms/MLLM/Passes.h"

#include "mlir/Pass/PassRegistry.h"

void mllm::populatePlanPipeline(mlir::OpPassManager &pm,
                                const PlanPipelineOptions &options) {
  pm.addPass(createFrozenAnalysisPass());
  PartitionPassOptions partition;
  partition.profile = options.profile;
  partition.searchBudget = options.searchBudget;
  pm.addPass(createPartitionPass(partition));
  pm.addPass(createRankMapPass());
  pm.addPass(createBalanceCPPass());
}

void mllm::registerAllMllmPasses() {
  registerMLLMPasses();
  mlir::PassPipelineRegistration<PlanPipelineOptions>(
      "mllm-plan-pipeline",
      "Plan a job: frozen analysis, partition, rank map, CP balancing",
      populatePlanPipeline);
}
