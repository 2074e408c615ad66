//===- Parallel.h - mllm-run across the ranks of a launcher -----*- C++ -*-===//
#ifndef MLLM_TOOLS_MLLMRUN_PARALLEL_H
#define MLLM_TOOLS_MLLMRUN_PARALLEL_H

#include "mllm/runtime/Comm.h"
#include "mllm/runtime/Plan.h"
#include "mllm/runtime/data/DataSet.h"
#include "mllm/runtime/exec/RankRunner.h"

#include <string>

namespace mllm {

/// What the command line asks of a run.
struct RunOptions {
  int64_t steps = 0;
  uint64_t seed = 0;
  int threads = 1;
  std::string checkpointDir;
  int64_t checkpointEvery = 0;
  int64_t keepLast = 0; ///< --keep-last (0: keep every checkpoint)
  bool resume = false, saveInitial = false, json = false;
  std::string initFile;
  /// --trace FILE: a Chrome trace of the last step's actions on every rank.
  std::string traceFile;
  /// --data MANIFEST: train on a data set (else synthetic batches).
  std::string dataFile;
  bool strictData = false;
  /// --tokenizer: a SentencePiece model (empty: byte-level).
  std::string tokenizer;
  int dataThreads = 2;
  /// --eval MANIFEST: the held-out loss and accuracy at the end and every
  /// evalEvery steps.
  std::string evalFile;
  int64_t evalEvery = 0;
  /// --generate PROMPTS: greedy generation after training, --max-tokens
  /// per sample at most.
  std::string generateFile;
  int64_t maxTokens = 32;
  bool keyCache = true; ///< --generate keeps keys (not --no-kv-cache)
  /// --inject-fault RANK:ACTION (tests): -1 when unset.
  bool checkMemoryPlan = false;
  int faultRank = -1;
  int64_t faultAction = -1;
};

/// Fails, naming the first option that differs, unless every rank of
/// `world` was started with the same options that change what the ranks
/// do together (--steps, --seed, the files, ...; not --threads or --json).
llvm::Error agreeOnOptions(const RunOptions &options, runtime::Group &world);

/// Writes the measured events of a parallel run's step (rank 0's gathered
/// events) to `path` as mllm-sim --trace writes a simulated iteration.
llvm::Error writeTrace(const runtime::Plan &plan,
                       const std::vector<runtime::exec::RankEvent> &events,
                       llvm::StringRef path);

/// A rank's data source: synthetic batches, or `options.dataFile`'s data
/// set (rank 0 reports it).
runtime::exec::RankRunner::DataFactory rankData(const RunOptions &options,
                                                int rank);
/// The data set rankData() opened in this process, or null (synthetic
/// data, or none opened yet).
const runtime::data::DataSet *rankDataSetRead();

/// Trains `plan` as this rank of `comm`'s world. Returns the exit status;
/// errors are printed with the rank. Errors every rank sees alike (a world
/// of the wrong size, different plans) end each rank normally, and so does
/// a share some ranks cannot build (every rank learns it before its first
/// wait); an error of one rank later aborts the job, so that no peer waits
/// for it.
int runParallel(const runtime::Plan &plan, runtime::Comm &comm,
                const RunOptions &options);

/// The data set options of a run (--strict, the seed of its shuffle).
inline runtime::data::DataOptions dataOptions(const RunOptions &options) {
  runtime::data::DataOptions o;
  o.strict = options.strictData;
  o.seed = options.seed;
  o.tokenizer.sentencePieceModel = options.tokenizer;
  return o;
}

/// Makes SIGTERM and SIGINT print what this rank was doing before it
/// exits (the launcher stops the other ranks when one fails).
void installStopHandler(int rank);

/// A failure of this rank alone: prints it (once: a stop that follows
/// adds nothing) and ends the job, so that no peer waits for this rank.
[[noreturn]] void abortJob(llvm::Error e);

/// Collective over `world`, after a step each rank may fail alone (its
/// share of --init's or --resume's weights, an --eval or --generate file
/// it cannot open): a rank that failed says why, naming itself; then every
/// rank learns whether any failed, and all end normally with 1 instead of
/// aborting the job. Returns 0 when every rank succeeded.
int agreeOnSuccess(runtime::Group &world, int rank, llvm::Error error);
/// Records that every rank knows of the failure that ends this rank's run
/// (agreeOnSuccess does; so does a check every rank makes alike), so that
/// nothing stops the others and a stop adds no message.
void noteAgreedFailure();
/// Whether noteAgreedFailure() was called.
bool failureAgreed();

/// --init's weights for one rank: its `share` of the model read from
/// `file`; the rank that `reports` then checks the `whole` model's
/// coverage (the names reportInit lists in `unused` and `missing`).
llvm::Error initRankShare(const std::string &file,
                          llvm::ArrayRef<runtime::exec::NamedParam> share,
                          llvm::ArrayRef<runtime::exec::NamedParam> whole,
                          bool reports, std::vector<std::string> &unused,
                          std::vector<std::string> &missing);

} // namespace mllm

#endif // MLLM_TOOLS_MLLMRUN_PARALLEL_H
