//===- Passes.cpp - Registration of the sched passes ----------------------===//

#include "mllm/Transforms/Sched/Passes.h"

#include "mlir/Conversion/ArithToLLVM/ArithToLLVM.h"
#include "mlir/Conversion/ControlFlowToLLVM/ControlFlowToLLVM.h"
#include "mlir/Conversion/FuncToLLVM/ConvertFuncToLLVMPass.h"
#include "mlir/Conversion/ReconcileUnrealizedCasts/ReconcileUnrealizedCasts.h"
#include "mlir/Conversion/SCFToControlFlow/SCFToControlFlow.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

void mllm::sched_ir::populateSchedPipeline(
    mlir::OpPassManager &pm, const SchedPipelineOptions &options) {
  GenerateSchedulePassOptions generate;
  generate.kind = options.kind;
  pm.addPass(createGenerateSchedulePass(generate));
  pm.addPass(createVerifySchedulePass());
}

void mllm::sched_ir::populateSchedToLLVMPipeline(
    mlir::OpPassManager &pm, const SchedToLLVMOptions &options) {
  if (options.memoryPlan)
    pm.addPass(createMemoryPlanPass());
  LowerStepsPassOptions lower;
  lower.program = options.program;
  lower.loops = options.loops;
  pm.addPass(createLowerStepsPass(lower));
  // The lowering makes a constant per operand; one of each reads better.
  pm.addPass(mlir::createCSEPass());
  pm.addPass(mlir::createSCFToControlFlowPass());
  pm.addPass(mlir::createArithToLLVMConversionPass());
  pm.addPass(mlir::createConvertControlFlowToLLVMPass());
  pm.addPass(mlir::createConvertFuncToLLVMPass());
  pm.addPass(mlir::createReconcileUnrealizedCastsPass());
}

void mllm::registerAllSchedPasses() {
  sched_ir::registerSchedPasses();
  mlir::PassPipelineRegistration<sched_ir::SchedPipelineOptions>(
      "sched-pipeline",
      "Schedule a planned job: generate the stage programs, verify them",
      sched_ir::populateSchedPipeline);
  mlir::PassPipelineRegistration<sched_ir::SchedToLLVMOptions>(
      "sched-to-llvm",
      "Lower a verified schedule to step functions in the LLVM dialect",
      sched_ir::populateSchedToLLVMPipeline);
}
