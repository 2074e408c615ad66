//===- Trainer.h - training a plan's model in one process -------*- C++ -*-===//
//
// The one-process run: every stage's layers of one replica, in pipeline
// order, on the full sequence (no CP split), over the global batch of all
// data-parallel replicas, with gradient accumulation over every microbatch
// and the optimizer the plan names. It is the reference every parallel run
// must match (docs/runtime.md), and the CPU backend's way to train a small
// spec on a laptop.
//
// An iteration is the actions of a one-stage `sched` program: for each
// microbatch of each replica its forward, input-gradient and weight-gradient
// backward, then the optimizer step. The interpreter runs them in a loop; a
// StepDriver (mllm-run's compiled step function) runs them instead when a
// factory is set (StepDriver.h).
//
// Checkpoints (Checkpoint.h) hold the parameters, the optimizer's moments
// and the step. The synthetic data is a function of (seed, step), so the step
// is the data position and no other RNG state exists; resuming gives
// bit-identical losses.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_EXEC_TRAINER_H
#define MLLM_RUNTIME_EXEC_TRAINER_H

#include "mllm/runtime/exec/Data.h"
#include "mllm/runtime/exec/Model.h"
#include "mllm/runtime/exec/Optimizer.h"
#include "mllm/runtime/exec/StepDriver.h"

#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/Support/Error.h"

#include <map>
#include <memory>

namespace mllm::runtime::exec {

/// The CP splits of a step's batches that had their own (BatchSplit.h).
struct CPSplitStats {
  int64_t batches = 0;
  /// Sums over the batches: the split's max/mean workload, the plan's
  /// split's on the same batch, and the seconds the balancing took.
  double imbalance = 0, declaredImbalance = 0, seconds = 0;
  void add(const BatchLayout &layout) {
    ++batches;
    imbalance += layout.cpImbalance;
    declaredImbalance += layout.cpDeclaredImbalance;
    seconds += layout.cpSeconds;
  }
};

struct StepStats {
  int64_t step = 0; ///< 1-based: the step just finished.
  double loss = 0;  ///< Mean cross-entropy over the counted tokens.
  int64_t tokens = 0;
  double seconds = 0;
  CPSplitStats cp;
};

/// The one-process run as a one-stage schedule: for each of `count`
/// microbatches its forward and (when anything trains) both backwards, then
/// the optimizer step.
sched::Program oneProcessProgram(int64_t count, bool trains);
/// Its pipeline graph: one stage, the whole model, `count` microbatches.
sched::PipelineGraph oneProcessGraph(int64_t count, bool trains);

class Trainer : public ProgramRunner {
public:
  Trainer(Model &model, DataSource &data, uint64_t seed);
  ~Trainer() override;

  /// One optimizer step over the global batch (fails when the data does).
  llvm::Expected<StepStats> step();
  /// Steps finished (the next step's index, 0-based).
  int64_t stepsDone() const { return done; }

  /// Writes a checkpoint (one file, Checkpoint.h) to `path` atomically.
  llvm::Error save(llvm::StringRef path) const;
  /// Restores parameters, optimizer state and the step from a checkpoint of
  /// the same model (a file, or the shards of a parallel run), under this
  /// plan or another (re-sharded by name); refuses another model's, saying
  /// what differs.
  llvm::Error load(llvm::StringRef path);
  /// Whether load() read a checkpoint written under another plan.
  bool loadedOtherPlan() const { return resharded; }

  /// Parameters with a gradient (and optimizer state).
  size_t trainableCount() const { return optimizer.slots().size(); }
  /// The loss of the forwards run since the last step() began (or since
  /// construction): for a caller running the program's actions itself.
  double lossSoFar() const { return stepLoss; }

  // ProgramRunner: the one-process program (its only program).
  const sched::PipelineGraph &graph() const override { return oneGraph; }
  const std::vector<sched::Program> &programs() const override {
    return onePrograms;
  }
  const std::string &scheduleKind() const override { return kind; }
  int64_t programIndex() const override { return 0; }
  sched::MemoryPlan memoryPlan() const override;
  int64_t recordedArena() const override { return -1; }
  llvm::Error runAction(size_t index) override;
  llvm::Error makeError(const llvm::Twine &message) const override;
  int rank() const override { return 0; }
  std::string describe() const override { return "the one-process run"; }
  bool parallel() const override { return false; }

private:
  /// A microbatch between its forward and its last backward.
  struct InFlight {
    MicrobatchData batch;
    MicrobatchContext ctx;
  };
  llvm::Error forward(int64_t id);
  /// Calls `f` with each chain that runs a backward for `m` and its output
  /// gradient, LLM first.
  void eachBackward(InFlight &m,
                    llvm::function_ref<void(Chain &, const Activation &)> f);
  void backwardInput(InFlight &m, int64_t id);
  void backwardWeight(InFlight &m, int64_t id);

  Model &model;
  DataSource &data;
  uint64_t seed;
  int64_t done = 0;
  Optimizer optimizer;
  double stepLoss = 0;
  bool resharded = false;
  sched::PipelineGraph oneGraph;
  std::vector<sched::Program> onePrograms;
  std::string kind = "linear_1f1b";
  /// By global microbatch id (replica * microbatches + microbatch).
  std::map<int64_t, std::unique_ptr<InFlight>> inFlight;
  bool driverMade = false;
  std::unique_ptr<StepDriver> driver;
};

} // namespace mllm::runtime::exec

#endif // MLLM_RUNTIME_EXEC_TRAINER_H
