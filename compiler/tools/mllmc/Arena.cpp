//===- Arena.cpp - the static memory plan per stage, for --explain --------===//
#include "Arena.h"

#include "mllm/Dialect/MLLM/IR/MLLMOps.h"
#include "mllm/Sched/MemoryIR.h"
#include "mllm/Sched/Programs.h"

#include "llvm/Support/Format.h"

using namespace mlir;
using namespace mllm;

static double mib(int64_t bytes) {
  return static_cast<double>(bytes) / (1024.0 * 1024.0);
}

void mllm::printArenaTable(ModuleOp module, llvm::raw_ostream &os) {
  for (auto schedule : module.getOps<sched_ir::ScheduleOp>()) {
    sched_ir::ScheduleContents contents = sched_ir::readSchedule(schedule);
    os << "\nstatic memory plan per GPU (sched-memory-plan; MiB):\n";
    os << llvm::format("  %-24s %10s %10s %10s %10s %8s\n", "stage", "estimate",
                       "arena", "peak live", "unshared", "buffers");
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
      sched::MemoryPlan plan =
          sched::planMemory(contents.graph, contents.programs, s,
                            sizes ? *sizes : sched::StageSizes());
      os << llvm::format("  %-24s %10lld %10.0f %10.0f %10.0f %8zu\n",
                         op.getSymName().str().c_str(),
                         static_cast<long long>(estimate), mib(plan.arenaBytes),
                         mib(plan.peakLiveBytes()), mib(plan.unsharedBytes()),
                         plan.buffers.size());
    }
    os << "  (arena: the buffers packed greedy by size, first fit; peak "
          "live: the most bytes live at once; unshared: every buffer on its "
          "own. A send lives until the runtime waits for it: where a later "
          "message from its peer proves it arrived, else to the end of the "
          "iteration.)\n";
  }
}
