//===- StepContextTest.cpp - the C ABI of compiled step functions ---------===//
#include "mllm/runtime/exec/StepContext.h"
#include "mllm/runtime/StepABI.h"
#include "mllm/runtime/exec/Trainer.h"

#include <gtest/gtest.h>

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::exec;

namespace {

/// The one-process program of one microbatch (forward, both backwards, the
/// optimizer step), whose action `failing` fails; counts what runs.
class CountingRunner final : public ProgramRunner {
public:
  explicit CountingRunner(int64_t failing)
      : failing(failing), oneGraph(oneProcessGraph(1, true)) {
    onePrograms.push_back(oneProcessProgram(1, true));
  }
  const sched::PipelineGraph &graph() const override { return oneGraph; }
  const std::vector<sched::Program> &programs() const override {
    return onePrograms;
  }
  const std::string &scheduleKind() const override { return kind; }
  int64_t programIndex() const override { return 0; }
  sched::MemoryPlan memoryPlan() const override { return {}; }
  int64_t recordedArena() const override { return -1; }
  llvm::Error runAction(size_t index) override {
    ran.push_back(static_cast<int64_t>(index));
    if (static_cast<int64_t>(index) == failing)
      return makeError("action " + llvm::Twine(index) + " failed");
    return llvm::Error::success();
  }
  llvm::Error makeError(const llvm::Twine &message) const override {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   message.str());
  }
  int rank() const override { return 0; }
  std::string describe() const override { return "the test's program"; }
  bool parallel() const override { return false; }

  int64_t failing;
  std::vector<int64_t> ran;

private:
  sched::PipelineGraph oneGraph;
  std::vector<sched::Program> onePrograms;
  std::string kind = "linear_1f1b";
};

/// Step functions as hand-written code might be: every action called in
/// order, statuses ignored; with `WrongKind` the second one is called as a
/// backward_weight.
template <bool WrongKind>
int32_t ignoresStatuses(void *ctx) {
  mllm_rt_begin(ctx, 0, 4, 0);
  mllm_rt_forward(ctx, 0, 0, -1);
  if (WrongKind)
    mllm_rt_backward_weight(ctx, 1, 0, -1);
  else
    mllm_rt_backward_input(ctx, 1, 0, -1);
  mllm_rt_backward_weight(ctx, 2, 0, -1);
  mllm_rt_optimizer_step(ctx, 3);
  return MLLM_RT_OK;
}

TEST(StepContext, EveryActionRunsOnceInOrder) {
  CountingRunner runner(/*failing=*/-1);
  StepContext context(runner);
  llvm::Error e = context.run(&ignoresStatuses<false>);
  EXPECT_FALSE(e) << llvm::toString(std::move(e));
  EXPECT_EQ(runner.ran, (std::vector<int64_t>{0, 1, 2, 3}));
}

TEST(StepContext, NothingRunsAfterAFailedAction) {
  CountingRunner runner(/*failing=*/1);
  StepContext context(runner);
  llvm::Error e = context.run(&ignoresStatuses<false>);
  ASSERT_TRUE(static_cast<bool>(e));
  EXPECT_EQ(llvm::toString(std::move(e)), "action 1 failed");
  EXPECT_EQ(runner.ran, (std::vector<int64_t>{0, 1}));
}

TEST(StepContext, NothingRunsAfterAMismatch) {
  CountingRunner runner(/*failing=*/-1);
  StepContext context(runner);
  llvm::Error e = context.run(&ignoresStatuses<true>);
  ASSERT_TRUE(static_cast<bool>(e));
  EXPECT_NE(llvm::toString(std::move(e))
                .find("does not match the plan: action 1 is backward_weight"),
            std::string::npos);
  EXPECT_EQ(runner.ran, (std::vector<int64_t>{0}));
}

} // namespace
