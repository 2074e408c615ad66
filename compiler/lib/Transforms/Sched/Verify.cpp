//===- Verify.cpp - sched-verify: schedules run to completion -------------===//
//
// Rebuilds the per-stage programs of every sched.schedule and proves with
// the schedule library's verifier that they pair up and cannot deadlock.
//
//===----------------------------------------------------------------------===//
#include "mllm/Sched/Programs.h"
#include "mllm/Transforms/Sched/Passes.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"

#include <cstring>

namespace mllm::sched_ir {
#define GEN_PASS_DEF_VERIFYSCHEDULEPASS
#include "mllm/Transforms/Sched/Passes.h.inc"
} // namespace mllm::sched_ir

using namespace mlir;
using namespace mllm;
using namespace mllm::sched_ir;

namespace {

/// Where to report the verifier's message: the action it names ("stage
/// 'NAME' ... action I", as a stuck or misplaced action is described), else
/// the program it names first ('NAME'), else the schedule.
Operation *stuckOp(ScheduleOp schedule, const ScheduleContents &contents,
                   StringRef message) {
  Operation *at = schedule;
  size_t first = StringRef::npos, stage = 0;
  for (auto [s, program] : llvm::enumerate(contents.programOps)) {
    size_t pos =
        message.find(("'" + ProgramOp(program).getSymName() + "'").str());
    if (pos < first) {
      first = pos;
      stage = s;
      at = program;
    }
  }
  if (first == StringRef::npos)
    return at;
  // The action index, if it follows the name before any other name.
  StringRef rest = message.drop_front(first + 1);
  rest = rest.drop_front(rest.find('\'') + 1);
  size_t action = rest.find("action ");
  if (action == StringRef::npos || rest.take_front(action).contains('\''))
    return at;
  StringRef digits = rest.drop_front(action + strlen("action "));
  digits = digits.take_while([](char c) { return llvm::isDigit(c); });
  size_t index;
  if (!digits.getAsInteger(10, index) &&
      index < contents.actionOps[stage].size())
    return contents.actionOps[stage][index];
  return at;
}

struct VerifySchedulePass
    : public sched_ir::impl::VerifySchedulePassBase<VerifySchedulePass> {
  using Base::Base;

  void runOnOperation() override {
    for (ScheduleOp schedule : getOperation().getOps<ScheduleOp>()) {
      ScheduleContents contents = readSchedule(schedule);
      if (llvm::Error error =
              sched::verifySchedule(contents.graph, contents.programs)) {
        std::string message = llvm::toString(std::move(error));
        stuckOp(schedule, contents, message)->emitError(message);
        signalPassFailure();
      }
    }
  }
};

} // namespace
