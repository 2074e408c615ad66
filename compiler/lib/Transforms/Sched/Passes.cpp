//===- Passes.cpp - Registration of the sched passes ----------------------===//

#include "mllm/Transforms/Sched/Passes.h"

#include "mlir/Pass/PassRegistry.h"

void mllm::sched_ir::populateSchedPipeline(
    mlir::OpPassManager &pm, const SchedPipelineOptions &options) {
  GenerateSchedulePassOptions generate;
  generate.kind = options.kind;
  pm.addPass(createGenerateSchedulePass(generate));
  pm.addPass(createVerifySchedulePass());
}

void mllm::registerAllSchedPasses() {
  sched_ir::registerSchedPasses();
  mlir::PassPipelineRegistration<sched_ir::SchedPipelineOptions>(
      "sched-pipeline",
      "Schedule a planned job: generate the stage programs, verify them",
      sched_ir::populateSchedPipeline);
}
