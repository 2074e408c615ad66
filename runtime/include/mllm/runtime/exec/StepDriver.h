//===- StepDriver.h - running a program's actions in order ------*- C++ -*-===//
//
// Every executor, a rank of a parallel run (RankRunner) and the one-process
// run (Trainer) on the CPU and their device counterparts (DeviceRankRunner,
// DeviceTrainer), performs an iteration as the actions of a `sched` program.
// A ProgramRunner is what they show of themselves to a StepDriver, which
// runs those actions in place of the interpreter's loop: mllm-run's
// compiled step functions (StepContext.h), lowered from the same schedule
// the ProgramRunner describes.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_EXEC_STEPDRIVER_H
#define MLLM_RUNTIME_EXEC_STEPDRIVER_H

#include "mllm/runtime/MemoryPlan.h"
#include "mllm/runtime/Schedule.h"

#include "llvm/Support/Error.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace mllm::runtime::exec {

class ProgramRunner {
public:
  virtual ~ProgramRunner();

  /// The schedule the program belongs to: its pipeline graph, every
  /// program and the schedule kind (what the lowering rebuilds as IR).
  virtual const sched::PipelineGraph &graph() const = 0;
  virtual const std::vector<sched::Program> &programs() const = 0;
  virtual const std::string &scheduleKind() const = 0;
  /// The program this runner executes, and its index in programs().
  const sched::Program &program() const { return programs()[programIndex()]; }
  virtual int64_t programIndex() const = 0;
  /// The program's static memory plan, and the arena the plan file records
  /// for it (-1: none recorded).
  virtual sched::MemoryPlan memoryPlan() const = 0;
  virtual int64_t recordedArena() const = 0;
  /// Runs action `index` of the program; errors name where it failed.
  virtual llvm::Error runAction(size_t index) = 0;
  /// An error of this runner: under a launcher it names the rank.
  virtual llvm::Error makeError(const llvm::Twine &message) const = 0;
  /// The rank in the launcher's world (0 for the one-process run), and
  /// what the program is, for messages: "step function of 'llm_s1'".
  virtual int rank() const = 0;
  virtual std::string describe() const = 0;
  /// Whether the runner is one of a launcher's processes (its messages
  /// name its rank) rather than a run on its own.
  virtual bool parallel() const = 0;
};

/// Runs the actions of a ProgramRunner's program, in order, by calling its
/// runAction: a compiled step function (mllm-run's JIT).
class StepDriver {
public:
  virtual ~StepDriver();
  virtual llvm::Error runActions(ProgramRunner &runner) = 0;
};

/// Makes every RankRunner and Trainer created from now on in this process
/// run its steps through the driver `factory` returns for it (nullptr: the
/// interpreter). A factory error ends the runner's creation with it.
using StepDriverFactory =
    std::function<llvm::Expected<std::unique_ptr<StepDriver>>(
        const ProgramRunner &runner)>;
void setStepDriverFactory(StepDriverFactory factory);
/// The driver the factory set makes for `runner`; null when none is set.
llvm::Expected<std::unique_ptr<StepDriver>>
makeStepDriver(const ProgramRunner &runner);

} // namespace mllm::runtime::exec

#endif // MLLM_RUNTIME_EXEC_STEPDRIVER_H
