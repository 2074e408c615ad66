//===- Arena.cpp - the static memory plan per stage, for --explain --------===//
#include "Arena.h"

#include "mllm/Dialect/MLLM/IR/Bounds.h"
#include "mllm/Dialect/MLLM/IR/MLLMOps.h"
#include "mllm/Sched/MemoryIR.h"
#include "mllm/Sched/Programs.h"
#include "mllm/runtime/PlanMemory.h"
#include "mllm/runtime/SendRelease.h"

#include "llvm/Support/Format.h"

using namespace mlir;
using namespace mllm;

static double mib(int64_t bytes) {
  return static_cast<double>(bytes) / (1024.0 * 1024.0);
}

static void printHeader(llvm::raw_ostream &os) {
  os << "\nstatic memory plan per GPU (sched-memory-plan; MiB):\n";
  os << llvm::format("  %-24s %10s %10s %10s %10s %8s\n", "stage", "estimate",
                     "arena", "peak live", "unshared", "buffers");
}

static void printRow(llvm::raw_ostream &os, llvm::StringRef name,
                     int64_t estimate, const sched::MemoryPlan &plan) {
  os << llvm::format("  %-24s %10lld %10.0f %10.0f %10.0f %8zu\n",
                     name.str().c_str(), static_cast<long long>(estimate),
                     mib(plan.arenaBytes), mib(plan.peakLiveBytes()),
                     mib(plan.unsharedBytes()), plan.buffers.size());
}

static void printFooter(llvm::raw_ostream &os) {
  os << "  (arena: the buffers packed greedy by size, first fit; peak "
        "live: the most bytes live at once; unshared: every buffer on its "
        "own. A send lives until the runtime waits for it: where a later "
        "message from its peer proves it arrived, else two sends later on "
        "the same link where the schedule still runs through, else to the "
        "end of the iteration.)\n";
}

void mllm::printArenaTable(ModuleOp module, llvm::raw_ostream &os) {
  for (auto schedule : module.getOps<sched_ir::ScheduleOp>()) {
    sched_ir::ScheduleContents contents = sched_ir::readSchedule(schedule);
    printHeader(os);
    std::vector<std::vector<int64_t>> releases =
        sched::sendReleases(contents.graph, contents.programs);
    for (auto [s, op] : llvm::enumerate(contents.programOps)) {
      std::optional<sched::StageSizes> sizes =
          sched_ir::costModelSizes(module, op);
      // The cost model's figure: static + activations x in flight, as
      // mllm-rank-map recorded it on the stages of these GPUs.
      int64_t estimate = 0;
      for (auto pipeline : module.getOps<PipelineOp>())
        for (auto stage : pipeline.getBody().front().getOps<StageOp>())
          if (stage.getMemory() && stage.getFirstRank() &&
              *stage.getFirstRank() == op.getFirstRank())
            estimate += static_cast<int64_t>(*stage.getMemory());
      printRow(os, op.getSymName(), estimate,
               sched::planMemory(contents.programs[s],
                                 sizes ? *sizes : sched::StageSizes(),
                                 releases[s]));
    }
    printFooter(os);
  }
}

void mllm::printArenaTable(const runtime::Plan &plan, llvm::raw_ostream &os) {
  if (!plan.schedule)
    return;
  const runtime::PlanSchedule &schedule = *plan.schedule;
  // A plan beyond the steps of a schedule in IR records no arenas: their
  // packing grows with the square of a program's microbatches.
  if (schedule.arenaBytes.empty()) {
    os << "\nstatic memory plan per GPU: not computed for more than "
       << bounds::kMaxScheduleSteps
       << " stage x microbatch steps (docs/cli.md, \"Schedules in IR and in "
          "memory\")\n";
    return;
  }
  printHeader(os);
  std::vector<sched::MemoryPlan> plans = runtime::programMemoryPlans(plan);
  for (size_t i = 0; i < schedule.programs.size(); ++i) {
    const sched::StageInfo &info =
        schedule.graph.stages[schedule.programs[i].stage];
    int64_t estimate = 0;
    for (const runtime::PlanStage &stage : plan.stages)
      if (stage.memory && stage.ranks && stage.ranks->first == info.firstRank)
        estimate += stage.memory->total;
    printRow(os, info.name, estimate, plans[i]);
  }
  printFooter(os);
}
