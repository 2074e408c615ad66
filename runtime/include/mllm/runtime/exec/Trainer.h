//===- Trainer.h - training a plan's model in one process -------*- C++ -*-===//
//
// The one-process run: every stage's layers of one replica, in pipeline
// order, on the full sequence (no CP split), over the global batch of all
// data-parallel replicas, with gradient accumulation over every microbatch
// and the optimizer the plan names. It is the reference every parallel run
// must match (docs/runtime.md), and the CPU backend's way to train a small
// spec on a laptop.
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

#include "llvm/Support/Error.h"

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

class Trainer {
public:
  Trainer(Model &model, DataSource &data, uint64_t seed);

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

private:
  llvm::Error runMicrobatch(int64_t replica, int64_t mb);

  Model &model;
  DataSource &data;
  uint64_t seed;
  int64_t done = 0;
  Optimizer optimizer;
  double stepLoss = 0;
  bool resharded = false;
};

} // namespace mllm::runtime::exec

#endif // MLLM_RUNTIME_EXEC_TRAINER_H
