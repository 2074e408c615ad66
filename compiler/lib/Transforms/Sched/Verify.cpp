//===- Verify.cpp - sched-verify: schedules run to completion -------------===//
//
// Rebuilds the per-stage programs of every sched.schedule and proves with
// the schedule library's verifier that they pair up and cannot deadlock.
//
//===----------------------------------------------------------------------===//
#include "mllm/Dialect/MLLM/IR/Bounds.h"
#include "mllm/Dialect/MLLM/IR/MLLMOps.h"
#include "mllm/Sched/MemoryIR.h"
#include "mllm/Sched/Programs.h"
#include "mllm/Transforms/Sched/Passes.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/STLExtras.h"

namespace mllm::sched_ir {
#define GEN_PASS_DEF_VERIFYSCHEDULEPASS
#include "mllm/Transforms/Sched/Passes.h.inc"
} // namespace mllm::sched_ir

using namespace mlir;
using namespace mllm;
using namespace mllm::sched_ir;

namespace {

/// Where to report a verifier error: the action it names, else the program,
/// else the schedule.
Operation *blamedOp(ScheduleOp schedule, const ScheduleContents &contents,
                    const sched::ScheduleError &error) {
  if (error.stage < 0 ||
      static_cast<size_t>(error.stage) >= contents.programOps.size())
    return schedule;
  const auto &actions = contents.actionOps[error.stage];
  if (error.action >= 0 && static_cast<size_t>(error.action) < actions.size())
    return actions[error.action];
  return contents.programOps[error.stage];
}

struct VerifySchedulePass
    : public sched_ir::impl::VerifySchedulePassBase<VerifySchedulePass> {
  using Base::Base;

  void runOnOperation() override {
    for (ScheduleOp schedule : getOperation().getOps<ScheduleOp>()) {
      // The microbatch count is the data layout's; this copy must agree.
      for (DataOp data : getOperation().getOps<DataOp>())
        if (data.getMicrobatches() != schedule.getMicrobatches()) {
          schedule.emitError("the schedule runs ")
              << schedule.getMicrobatches()
              << " microbatches but 'mllm.data' has " << data.getMicrobatches();
          return signalPassFailure();
        }
      // The schedule library allocates per stage and microbatch: the
      // sched.schedule verifier bounds both; this pass may run on IR that
      // was not verified (--verify-each=0), so check again before reading.
      auto programs =
          static_cast<int64_t>(llvm::range_size(schedule.getBody().front()));
      if (schedule.getMicrobatches() >
              static_cast<uint64_t>(bounds::kMaxMicrobatches) ||
          !bounds::scheduleSteps(
              programs, static_cast<int64_t>(schedule.getMicrobatches()))) {
        schedule.emitError("the schedule has ")
            << programs << " programs x " << schedule.getMicrobatches()
            << " microbatches; at most " << bounds::kMaxScheduleSteps
            << " can be verified";
        return signalPassFailure();
      }
      ScheduleContents contents = readSchedule(schedule);
      if (llvm::Error error =
              sched::verifySchedule(contents.graph, contents.programs)) {
        llvm::handleAllErrors(
            std::move(error),
            [&](const sched::ScheduleError &e) {
              blamedOp(schedule, contents, e)->emitError(e.message);
            },
            [&](const llvm::ErrorInfoBase &e) {
              schedule->emitError(e.message());
            });
        return signalPassFailure();
      }
      // Every schedule kind is checked against the GPU's memory with one
      // rule, on the programs' static memory plans.
      if (failed(checkScheduleMemory(getOperation(), schedule, contents, {})))
        return signalPassFailure();
    }
  }
};

} // namespace
