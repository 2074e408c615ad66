//===- StepContext.h - the C ABI of step functions over a rank --*- C++ -*-===//
//
// The runtime side of mllm/runtime/StepABI.h: the `ctx` a compiled step
// function receives is a StepContext over a ProgramRunner (a rank's
// RankRunner, or the one-process Trainer). Each mllm_rt_* call is checked
// against the program's action at the index the code passes (kind,
// microbatch, peer, tag, bytes, order, arena bounds) and then run by the
// runner's runAction, the interpreter's own code, so a compiled step and an
// interpreted one perform the same numeric steps.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_EXEC_STEPCONTEXT_H
#define MLLM_RUNTIME_EXEC_STEPCONTEXT_H

#include "mllm/runtime/exec/StepDriver.h"

#include <cstdint>
#include <utility>
#include <vector>

namespace mllm::runtime::exec {

/// A compiled step function: `int32_t step(void *ctx)`.
using StepFunction = int32_t (*)(void *);

class StepContext {
public:
  explicit StepContext(ProgramRunner &runner) : runner(runner) {}

  /// Runs `step` once as the actions of the runner's step(): the first error of
  /// an action, an error if the code and the plan disagree, or an error if
  /// the function returned without running every action.
  llvm::Error run(StepFunction step);

  /// The C ABI's names and addresses, for a JIT's symbol map.
  static std::vector<std::pair<const char *, void *>> symbols();

  /// Called by the C ABI functions: action `index` with what the compiled
  /// code passed (-1 where a kind has no such operand). Returns the status.
  int32_t call(sched::ActionKind kind, int64_t index, int64_t mb, int64_t peer,
               int64_t tag, int64_t bytes, int64_t offset);
  int32_t begin(int64_t program, int64_t actions, int64_t arenaBytes);

private:
  int32_t mismatch(const llvm::Twine &message);

  ProgramRunner &runner;
  llvm::Error error = llvm::Error::success();
  int64_t next = 0;
  int64_t arenaBytes = -1;
  bool begun = false;
};

/// The driver a runner's step() uses to run a compiled step function.
class CompiledStepDriver : public StepDriver {
public:
  explicit CompiledStepDriver(StepFunction step) : step(step) {}
  llvm::Error runActions(ProgramRunner &runner) override {
    StepContext context(runner);
    return context.run(step);
  }

private:
  StepFunction step;
};

} // namespace mllm::runtime::exec

#endif // MLLM_RUNTIME_EXEC_STEPCONTEXT_H
