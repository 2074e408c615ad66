//===- Evaluate.h - held-out loss and token accuracy ------------*- C++ -*-===//
//
// Evaluation of a model on a held-out data set (`mllm-run --eval`): every
// sample of the manifest once (epoch 0 of its packing), the forward only
// (no gradient, no optimizer state touched), and per counted target token
// its cross-entropy and whether the argmax of the logits is the target.
// The loss is the mean over the counted tokens of the whole set, the
// accuracy the fraction of them predicted exactly (docs/runtime.md,
// "Evaluation and generation").
//
// The logits come from the LM head's weight applied to the LLM's last
// hidden states here, not from the LM head layer (which returns only the
// loss sum), so the loss is an independent computation of the same
// cross-entropy the training step reports (test/mllm-run/eval.test checks
// the two agree on the same batch).
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_EXEC_EVALUATE_H
#define MLLM_RUNTIME_EXEC_EVALUATE_H

#include "mllm/runtime/Comm.h"
#include "mllm/runtime/data/DataSet.h"
#include "mllm/runtime/exec/ManifestData.h"
#include "mllm/runtime/exec/Model.h"

#include "llvm/Support/Error.h"

#include <chrono>
#include <map>

namespace mllm::runtime::exec {

/// The forward of `batch` through every encoder and the LLM up to (not
/// including) its LM head: `hidden` is the head's input, [sequences x
/// seq_len, llm hidden]. Keeps no state for a backward. `id` names the
/// microbatch's state in the chains while it runs (unused by training
/// between steps).
void forwardToHead(Model &model, const MicrobatchData &batch,
                   Activation &hidden, int64_t id = -1);

/// The LM head's weight, [vocab, hidden] (its own, or the token embedding's
/// when tied).
const cpu::Param<float> &headWeight(Model &model);

struct EvalStats {
  int64_t step = 0;    ///< Steps trained when evaluated.
  double loss = 0;     ///< Mean cross-entropy per counted token.
  double accuracy = 0; ///< Counted tokens whose argmax is the target.
  int64_t tokens = 0;  ///< Counted target tokens.
  int64_t correct = 0; ///< Of those, predicted exactly.
  int64_t samples = 0; ///< Samples evaluated.
  int64_t batches = 0; ///< Packed microbatches.
  double seconds = 0;
};

/// Collective over `group`: `counts` becomes the group's sum (exact: the
/// counts are integers in double, the loss sums add in group order).
llvm::Error sumCounts(Group &group, cpu::HeadEval &counts);

/// How an evaluation or a generation spreads its work over a parallel
/// run's replicas, the plan's microbatches at a time: in round r, replica d
/// runs item (r M + j) dp + d as its microbatch j (a held-out batch; a
/// generation's sample in slot j dp + d), so the replicas share the items
/// and every rank of a replica runs the same ones.
struct Rounds {
  int64_t microbatches = 1, dp = 1;
  explicit Rounds(const Plan &plan)
      : microbatches(plan.data.microbatches), dp(plan.job.dp) {}
  /// Items per round: the slots of a generation.
  int64_t width() const { return microbatches * dp; }
  int64_t count(int64_t items) const { return (items + width() - 1) / width(); }
  int64_t item(int64_t round, int64_t mb, int64_t replica) const {
    return (round * microbatches + mb) * dp + replica;
  }
  int64_t replicaOf(int64_t slot) const { return slot % dp; }
  int64_t microbatchOf(int64_t slot) const { return slot / dp; }
};

class EvalSet;
/// An evaluation's statistics from the counts over all of `set`, at step
/// `step`, begun at `start`.
EvalStats evalStats(const cpu::HeadEval &counts, const EvalSet &set,
                    int64_t step, std::chrono::steady_clock::time_point start);

/// A held-out set as an evaluation reads it: every sample of the manifest
/// once (epoch 0 of its packing) in the plan's microbatches, with the CP
/// split of each batch where the plan's LLM is context-parallel (as the
/// training data's, ManifestData). Whoever runs the forward reads it: the
/// one-process Evaluator, a rank of a parallel run, the device executors.
class EvalSet {
public:
  /// Opens `manifest` for `model`'s plan (the data set's problems are
  /// counted and reported as for training; strict stops at the first).
  static llvm::Expected<std::unique_ptr<EvalSet>>
  open(const Model &model, llvm::StringRef manifest,
       const data::DataOptions &options);

  /// How many packed microbatches, the k-th, and how many samples it packs.
  /// The batches read are kept while their media are under 256 MiB, so
  /// evaluating every N steps decodes once.
  int64_t batchCount() const;
  llvm::Expected<MicrobatchData> batch(int64_t k);
  int64_t samplesIn(int64_t k) const;
  /// Samples in the whole set.
  int64_t sampleCount() const;

  const data::DataSet &dataSet() const { return *set; }

private:
  EvalSet(const Model &model, std::unique_ptr<data::DataSet> set)
      : model(model), set(std::move(set)) {}

  const Model &model;
  std::unique_ptr<data::DataSet> set;
  std::map<int64_t, MicrobatchData> cache;
  size_t cachedFloats = 0;
  bool cacheable = true;
};

/// The evaluation of a whole model in one process.
class Evaluator {
public:
  static llvm::Expected<std::unique_ptr<Evaluator>>
  open(Model &model, llvm::StringRef manifest,
       const data::DataOptions &options);

  /// Evaluates the model's current weights on the whole set.
  llvm::Expected<EvalStats> run();

  EvalSet &set() { return *batches; }
  const data::DataSet &dataSet() const { return batches->dataSet(); }

private:
  Evaluator(Model &model, std::unique_ptr<EvalSet> batches)
      : model(model), batches(std::move(batches)) {}

  Model &model;
  std::unique_ptr<EvalSet> batches;
};

} // namespace mllm::runtime::exec

#endif // MLLM_RUNTIME_EXEC_EVALUATE_H
