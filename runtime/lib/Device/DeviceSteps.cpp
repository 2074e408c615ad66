//===- DeviceSteps.cpp - the device executors under a StepDriver ----------===//
//
// Both device executors show themselves to a StepDriver (mllm-run's compiled
// step functions, exec/StepDriver.h) as the CPU executor of the same program
// does, so the same code runs on either backend and is checked the same way:
// a rank of a pipeline as the plan's program (the plan's message sizes and
// static memory plan, whose arena the plan records), the one-process run as
// its one-stage program with the device's memory plan. The offsets the code
// passes are checked against that arena; the device binds its buffers by its
// own layout (messages at this rank's sizes, DeviceRankRunner::memoryPlan).
//
//===----------------------------------------------------------------------===//
#include "DeviceRankImpl.h"

#include "mllm/runtime/PlanMemory.h"

#include "llvm/Support/FormatVariadic.h"

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::device;

namespace {

class RankProgram final : public exec::ProgramRunner {
public:
  explicit RankProgram(DeviceRankRunner::Impl &s) : s(s) {}
  const sched::PipelineGraph &graph() const override { return s.graph(); }
  const std::vector<sched::Program> &programs() const override {
    return s.plan->schedule->programs;
  }
  const std::string &scheduleKind() const override {
    return s.plan->schedule->kind;
  }
  int64_t programIndex() const override { return s.place.program; }
  sched::MemoryPlan memoryPlan() const override {
    return programMemoryPlan(*s.plan, static_cast<size_t>(s.place.program));
  }
  int64_t recordedArena() const override {
    const std::vector<int64_t> &recorded = s.plan->schedule->arenaBytes;
    auto i = static_cast<size_t>(s.place.program);
    return i < recorded.size() ? recorded[i] : -1;
  }
  llvm::Error runAction(size_t index) override {
    if (index >= s.program.actions.size())
      return s.error(llvm::formatv("stage '{0}' has no action {1}",
                                   graph().stages[s.program.stage].name, index)
                         .str());
    return s.stepAction(index);
  }
  llvm::Error makeError(const llvm::Twine &message) const override {
    return s.error(message);
  }
  int rank() const override { return s.place.rank; }
  std::string describe() const override {
    return "'" + graph().stages[s.program.stage].name + "'";
  }
  bool parallel() const override { return true; }

private:
  DeviceRankRunner::Impl &s;
};

class OneProcessProgram final : public exec::ProgramRunner {
public:
  // The device's program always trains (DeviceModel.cpp).
  explicit OneProcessProgram(DeviceTrainer::Impl &d)
      : d(d), graph_(exec::oneProcessGraph(
                  d.replicas * d.model->plan().data.microbatches, true)),
        programs_{d.program} {}
  const sched::PipelineGraph &graph() const override { return graph_; }
  const std::vector<sched::Program> &programs() const override {
    return programs_;
  }
  const std::string &scheduleKind() const override { return kind; }
  int64_t programIndex() const override { return 0; }
  sched::MemoryPlan memoryPlan() const override { return d.memory; }
  int64_t recordedArena() const override { return -1; }
  llvm::Error runAction(size_t index) override {
    if (index >= d.program.actions.size())
      return makeError(
          llvm::formatv("the one-process program has no action {0}", index));
    return d.stepAction(index);
  }
  // mllm-run names the process of whole replicas (DeviceRun.cpp).
  llvm::Error makeError(const llvm::Twine &message) const override {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   message.str());
  }
  // Whole replicas in several processes: each its own program.
  int rank() const override { return d.parallel.index; }
  std::string describe() const override {
    return d.parallel.processes > 1
               ? llvm::formatv("the program of process {0}'s {1} replica{2}",
                               d.parallel.index, d.replicas,
                               d.replicas == 1 ? "" : "s")
                     .str()
               : "the one-process run";
  }
  bool parallel() const override { return d.parallel.processes > 1; }

private:
  DeviceTrainer::Impl &d;
  sched::PipelineGraph graph_;
  std::vector<sched::Program> programs_;
  std::string kind = "linear_1f1b";
};

} // namespace

std::unique_ptr<exec::ProgramRunner> DeviceRankRunner::Impl::programRunner() {
  return std::make_unique<RankProgram>(*this);
}

std::unique_ptr<exec::ProgramRunner> DeviceTrainer::Impl::programRunner() {
  return std::make_unique<OneProcessProgram>(*this);
}
