//===- MemoryPlan.cpp - sched-memory-plan and sched-verify-memory ---------===//
//
// The static memory plan of every program (mllm/runtime/MemoryPlan.h),
// recorded on the program (mllm/Sched/MemoryIR.h) and checked.
//
//===----------------------------------------------------------------------===//
#include "mllm/Sched/MemoryIR.h"
#include "mllm/Sched/Programs.h"
#include "mllm/Transforms/Sched/Passes.h"
#include "mllm/runtime/SendRelease.h"

#include "mlir/IR/BuiltinOps.h"

namespace mllm::sched_ir {
#define GEN_PASS_DEF_MEMORYPLANPASS
#define GEN_PASS_DEF_VERIFYMEMORYPLANPASS
#include "mllm/Transforms/Sched/Passes.h.inc"
} // namespace mllm::sched_ir

using namespace mlir;
using namespace mllm;
using namespace mllm::sched_ir;

namespace {

/// Reports a memory-plan error on the action it names, else the program.
void report(ProgramOp op, const std::vector<Operation *> &actions,
            llvm::Error error) {
  llvm::handleAllErrors(
      std::move(error),
      [&](const sched::ScheduleError &e) {
        Operation *at = op;
        if (e.action >= 0 && static_cast<size_t>(e.action) < actions.size())
          at = actions[e.action];
        at->emitError("memory plan of '")
            << op.getSymName() << "': " << e.message;
      },
      [&](const llvm::ErrorInfoBase &e) {
        op.emitError("memory plan of '")
            << op.getSymName() << "': " << e.message();
      });
}

struct MemoryPlanPass
    : public sched_ir::impl::MemoryPlanPassBase<MemoryPlanPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    // Arena offsets are sums of up to every buffer of a program: a
    // schedule in IR has at most bounds::kMaxScheduleSteps (2^16) stage x
    // microbatch steps and a few buffers each, so 1 TiB per buffer keeps
    // the sum below 2^60 (2^50 did not: 8192 live saved buffers of 2^50
    // overflowed int64).
    constexpr int64_t kMaxBytes = int64_t(1) << 40;
    for (auto [name, value] :
         {std::pair<const char *, int64_t>("saved-bytes", savedBytes),
          {"workspace-bytes", workspaceBytes}})
      if (value < 0 || value > kMaxBytes) {
        module.emitError("sched-memory-plan: '")
            << name << "' takes a number of bytes from 0 to " << kMaxBytes
            << ", not " << value;
        return signalPassFailure();
      }
    for (ScheduleOp schedule : module.getOps<ScheduleOp>()) {
      ScheduleContents contents = readSchedule(schedule);
      std::vector<sched::MemoryPlan> plans;
      std::vector<std::vector<int64_t>> releases =
          sched::sendReleases(contents.graph, contents.programs);
      for (auto [s, op] : llvm::enumerate(contents.programOps)) {
        sched::StageSizes sizes;
        std::optional<sched::StageSizes> model = costModelSizes(module, op);
        if (model)
          sizes = *model;
        else
          sizes.savedPerMicrobatch = savedBytes;
        sizes.workspace = workspaceBytes;
        sched::MemoryPlan plan =
            sched::planMemory(contents.programs[s], sizes, releases[s]);
        if (llvm::Error e =
                sched::verifyMemoryPlan(contents.programs[s], plan)) {
          report(op, contents.actionOps[s], std::move(e));
          return signalPassFailure();
        }
        numBuffers += plan.buffers.size();
        op->setAttr(kMemoryAttrName, toMemoryAttr(&getContext(), plan));
        plans.push_back(std::move(plan));
      }
      if (failed(checkScheduleMemory(module, schedule, contents,
                                     std::move(plans))))
        return signalPassFailure();
    }
  }
};

struct VerifyMemoryPlanPass
    : public sched_ir::impl::VerifyMemoryPlanPassBase<VerifyMemoryPlanPass> {
  using Base::Base;

  void runOnOperation() override {
    for (ScheduleOp schedule : getOperation().getOps<ScheduleOp>()) {
      ScheduleContents contents = readSchedule(schedule);
      for (auto [s, op] : llvm::enumerate(contents.programOps)) {
        auto plan = readMemoryPlan(op);
        if (!plan) {
          op.emitError(llvm::toString(plan.takeError()));
          signalPassFailure();
          continue;
        }
        if (!*plan)
          continue;
        if (llvm::Error e =
                sched::verifyMemoryPlan(contents.programs[s], **plan)) {
          report(op, contents.actionOps[s], std::move(e));
          signalPassFailure();
        }
      }
    }
  }
};

} // namespace
