//===- Report.h - what mllm-run prints --------------------------*- C++ -*-===//
//
// One line per step (step/total, loss, tokens/s, ms/step, ETA), a progress
// bar when standard output is a terminal, or one JSON object per line with
// --json; at the end, the measured peak memory next to the plan's estimate.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_TOOLS_MLLMRUN_REPORT_H
#define MLLM_TOOLS_MLLMRUN_REPORT_H

#include "mllm/runtime/data/DataSet.h"
#include "mllm/runtime/exec/Trainer.h"

#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/Support/JSON.h"

#include <chrono>
#include <limits>
#include <string>
#include <vector>

namespace mllm {

/// After step `done` of a run to `total`: whether something done every
/// `every` steps (0: only at the end) is due, a checkpoint or an
/// evaluation.
inline bool dueAfter(int64_t done, int64_t total, int64_t every) {
  return done == total || (every > 0 && done % every == 0);
}

class Progress {
public:
  /// `ranks` > 1: a parallel run (printed by rank 0). `device`: the CUDA
  /// backend's run (bf16 on GPUs; its arena is reported on its own).
  Progress(const runtime::Plan &plan, const runtime::exec::Model &model,
           int64_t total, int threads, bool json, int ranks = 1,
           bool device = false);
  /// The header, before the first step (`from`: steps already done).
  void start(int64_t from);
  void step(const runtime::exec::StepStats &stats);
  /// The summary: steps, time, peak memory vs the plan's estimate.
  void finish();

private:
  /// "done: N steps in S s, final loss L" (the loss only where a step ran).
  std::string doneLine() const;
  /// The kind of the schedule the ranks run ("none" without one).
  std::string schedule() const;

  const runtime::Plan &plan;
  const runtime::exec::Model &model;
  int64_t total, from = 0, ran = 0;
  int threads, ranks;
  bool json, tty, device;
  double seconds = 0;
  double lastLoss = std::numeric_limits<double>::quiet_NaN(); ///< None yet
};

/// `x`, or null where it is NaN or infinite (JSON has neither): a
/// diverged loss.
llvm::json::Value finiteOrNull(double x);

/// An error when the step's loss is not finite: the optimizer step has
/// made the weights unusable, so a run stops there, before it writes them
/// into a checkpoint (every rank sees the same loss, so every rank stops).
llvm::Error checkDiverged(const runtime::exec::StepStats &stats);
/// checkDiverged for a rank of a job whose ranks all see the loss: true
/// when the run must stop; the rank that `reports` prints why.
bool stopIfDiverged(const runtime::exec::StepStats &stats, bool reports);

/// Peak resident memory of this process, bytes.
int64_t peakMemoryBytes();

/// One rank's measured peak memory next to the plan's estimate for a GPU
/// of its stage.
struct RankMemory {
  int rank;
  std::string stage;
  double peakMiB;
  int64_t planMiB; ///< -1: the plan has no estimate.
  /// The rank's message arena in its last step: planned size and measured
  /// peak, in bytes.
  int64_t messageArena = 0, messagePeak = 0;
};
void reportRankMemory(const std::vector<RankMemory> &rows, bool json);

/// What opening a data set found: usable samples, what was skipped.
void reportData(const std::string &file, const runtime::data::DataSet &set,
                bool json);

/// Samples that passed the header check but failed to decode when their
/// batch was read (docs/data.md §2): zeroed and masked, so they teach
/// nothing. check() after each step prints each new example (the data
/// set keeps the first few) as a warning; finish() the count. `prefix`
/// names the rank of a parallel run ("rank 3: "). `heldOut`: the data set
/// is --eval's, whose failed samples are left out of the figures.
class LateFailures {
public:
  LateFailures(std::string file, bool json, std::string prefix = "",
               bool heldOut = false)
      : file(std::move(file)), prefix(std::move(prefix)), json(json),
        heldOut(heldOut) {}
  void check(const runtime::data::DataSet *set);
  void finish(const runtime::data::DataSet *set);

private:
  std::string file, prefix;
  bool json;
  bool heldOut;
  size_t shown = 0;
};

/// After the checkpoint of `step` (sharded: a directory of shards) is in
/// `dir`, begun at `started`: removes the older ones --keep-last
/// (`keepLast` > 0) no longer keeps, and says both (a `checkpoint` event).
/// The process that reports calls it, once every rank's shard is written.
void finishCheckpoint(const std::string &dir, int64_t step, bool sharded,
                      int64_t keepLast,
                      std::chrono::steady_clock::time_point started, bool json);

/// Warns, too, when `file` says it was written for other layers than
/// `plan`'s: its weights load by name and shape but mean something else.
void reportInit(const runtime::Plan &plan, const std::string &file,
                const std::vector<std::string> &unused,
                const std::vector<std::string> &missing, bool json);
/// The error of `opened`, if any, as the option's: "OPTION: why".
template <typename T>
llvm::Error optionError(llvm::StringRef option, llvm::Expected<T> &opened) {
  if (opened)
    return llvm::Error::success();
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 option + ": " +
                                     llvm::toString(opened.takeError()));
}
/// --resume: the newest checkpoint in `dir` (its name in `path`) given to
/// `load`. An error says why, with the way on when the file itself does
/// not read (a copy cut short: the run would otherwise stop at it every
/// time); a runner's error keeps its rank.
llvm::Error
loadNewestCheckpoint(const std::string &dir,
                     llvm::function_ref<llvm::Error(llvm::StringRef)> load,
                     std::string &path);
/// `otherPlan`: the checkpoint was written under another plan of `plan`'s
/// model (re-sharded by name). Warns when the checkpoint was trained with
/// another seed than this run's `seed`: its batches are not the ones the
/// interrupted run would have trained on; when it was trained under other
/// settings (exec::checkpointSettingsDiffer), which; and when `step`
/// already reaches `total`, the steps to train to.
void reportResume(const runtime::Plan &plan, const std::string &file,
                  int64_t step, bool otherPlan, uint64_t seed, int64_t total,
                  bool json);

} // namespace mllm

#endif // MLLM_TOOLS_MLLMRUN_REPORT_H
