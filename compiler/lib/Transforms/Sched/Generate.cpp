//===- Generate.cpp - sched-generate: the per-stage programs --------------===//
//
// Reads the pipeline graph from the planned mllm IR, generates the programs
// with the schedule library and records them as one sched.schedule.
//
//===----------------------------------------------------------------------===//
#include "mllm/Dialect/MLLM/IR/MLLMOps.h"
#include "mllm/Sched/FromIR.h"
#include "mllm/Sched/Programs.h"
#include "mllm/Transforms/Sched/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringSwitch.h"

namespace mllm::sched_ir {
#define GEN_PASS_DEF_GENERATESCHEDULEPASS
#include "mllm/Transforms/Sched/Passes.h.inc"
} // namespace mllm::sched_ir

using namespace mlir;
using namespace mllm;
using namespace mllm::sched_ir;

namespace {

/// The location of each stage's program: its mllm.stage op (for a stage of
/// colocated encoders, the first mllm.stage on the same ranks), else the
/// pipeline's.
SmallVector<Location> stageLocations(ModuleOp module,
                                     const sched::PipelineGraph &graph) {
  PipelineOp pipeline;
  for (PipelineOp op : module.getOps<PipelineOp>())
    pipeline = op;
  Location fallback = pipeline ? pipeline.getLoc() : module.getLoc();
  SmallVector<Location> locs;
  for (const sched::StageInfo &stage : graph.stages) {
    Location loc = fallback;
    if (pipeline) {
      StageOp match;
      for (StageOp op : pipeline.getBody().front().getOps<StageOp>()) {
        if (op.getSymName() == stage.name) {
          match = op;
          break;
        }
        if (!match && op.getFirstRank() &&
            static_cast<int64_t>(*op.getFirstRank()) == stage.firstRank)
          match = op;
      }
      if (match)
        loc = match.getLoc();
    }
    locs.push_back(loc);
  }
  return locs;
}

struct GenerateSchedulePass
    : public sched_ir::impl::GenerateSchedulePassBase<GenerateSchedulePass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    std::optional<sched::ScheduleKind> scheduleKind =
        symbolizeScheduleKind(kind);
    if (!scheduleKind) {
      module.emitError() << "unknown schedule kind '" << kind << "'; expected "
                         << sched::scheduleKindNames();
      return signalPassFailure();
    }
    llvm::Expected<sched::PipelineGraph> graph =
        sched::buildPipelineGraph(module);
    if (!graph) {
      module.emitError() << llvm::toString(graph.takeError());
      return signalPassFailure();
    }
    if (failed(checkScheduleSize(module, *graph)))
      return signalPassFailure();
    std::vector<sched::Program> programs =
        sched::generateSchedule(*graph, *scheduleKind);

    for (ScheduleOp old :
         llvm::make_early_inc_range(module.getOps<ScheduleOp>()))
      old.erase();
    SmallVector<Location> locs = stageLocations(module, *graph);
    Location loc = module.getLoc();
    for (PipelineOp op : module.getOps<PipelineOp>())
      loc = op.getLoc();
    OpBuilder builder = OpBuilder::atBlockEnd(module.getBody());
    buildSchedule(builder, loc, *graph, programs, *scheduleKind, locs);
    numPrograms += programs.size();
    for (const sched::Program &program : programs)
      numActions += program.actions.size();
  }
};

} // namespace
