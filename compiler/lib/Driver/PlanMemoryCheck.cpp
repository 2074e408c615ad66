//===- PlanMemoryCheck.cpp - the memory check of a built plan -------------===//
#include "mllm/Driver/PlanBuilder.h"
#include "mllm/Sched/ArenaFit.h"

using namespace mlir;
using namespace mllm;

LogicalResult mllm::checkPlanMemory(ModuleOp module,
                                    const runtime::Plan &plan) {
  llvm::Error e = sched::checkPlanMemory(plan);
  if (!e)
    return success();
  std::string message, stage;
  llvm::handleAllErrors(
      std::move(e),
      [&](const sched::ScheduleError &error) {
        message = error.message;
        const auto &stages = plan.schedule->graph.stages;
        if (error.stage >= 0 &&
            static_cast<size_t>(error.stage) < stages.size())
          stage = stages[error.stage].name;
      },
      [&](const llvm::ErrorInfoBase &error) { message = error.message(); });
  // The stage's op, or (a colocated stage, "vision+audio_s0") its first
  // part's, or the pipeline.
  Operation *at = module;
  auto [parts, index] = llvm::StringRef(stage).rsplit('_');
  std::string firstPart = (parts.split('+').first + "_" + index).str();
  if (PipelineOp pipeline = getFirst<PipelineOp>(module)) {
    at = pipeline;
    for (StageOp op : pipeline.getBody().front().getOps<StageOp>())
      if (op.getSymName() == stage || op.getSymName() == firstPart) {
        at = op;
        break;
      }
  }
  at->emitError(message);
  return failure();
}
