//===- Parallel.cpp - mllm-run across the ranks of a launcher -------------===//
#include "Parallel.h"

#include "EvalGenerate.h"
#include "Report.h"

#include "mllm/Sim/Trace.h"
#include "mllm/runtime/MPIComm.h"
#include "mllm/runtime/exec/Checkpoint.h"
#include "mllm/runtime/exec/ManifestData.h"
#include "mllm/runtime/exec/RankRunner.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Signals.h"
#include "llvm/Support/xxhash.h"

#include <csignal>
#include <cstring>
#include <unistd.h>

using namespace mllm;
using namespace mllm::runtime;

namespace {

int stopRank = -1;
/// Set once this rank printed its own error: a stop after it adds nothing.
volatile sig_atomic_t reported = 0;

/// The decimal digits of `n` >= 0 into `out` (async-signal-safe).
void formatDecimal(long n, char (&out)[24]) {
  char digits[24];
  int d = 0, len = 0;
  do {
    digits[d++] = static_cast<char>('0' + n % 10);
    n /= 10;
  } while (n && d < 23);
  while (d)
    out[len++] = digits[--d];
  out[len] = 0;
}

void onStop(int sig, siginfo_t *info, void *) {
  // Only async-signal-safe calls: write(2), getppid, _exit, and LLVM's
  // removal of the files registered with RemoveFileOnSignal (a checkpoint's
  // temporary; LLVM's own handler, which this one replaces, does the same).
  llvm::sys::RunInterruptHandlers();
  if (reported)
    _exit(1);
  char text[768];
  char rank[24], sender[24];
  formatDecimal(stopRank < 0 ? 0 : stopRank, rank);
  // The launcher (mpirun, its daemon, slurmstepd: this process's parent)
  // stops every rank when one fails or the job is interrupted. A signal
  // sent by anyone else was meant for this rank: blaming the launcher
  // would send the user looking for another rank's failure.
  const bool sent = info && info->si_code <= 0 && info->si_pid > 0;
  static const char launcher[] = "stopped by the launcher (another rank "
                                 "failed, or the job was interrupted)";
  const char *why[4] = {launcher, "", "", ""};
  if (!sent || info->si_pid != getppid()) {
    why[0] = "interrupted by ";
    why[1] = sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal";
    if (sent) {
      formatDecimal(info->si_pid, sender);
      why[2] = " from process ";
      why[3] = sender;
    }
  }
  const char *parts[] = {"mllm-run: error: rank ",
                         rank,
                         ": ",
                         why[0],
                         why[1],
                         why[2],
                         why[3],
                         " while ",
                         exec::currentActivity(),
                         "\n"};
  size_t len = 0;
  for (const char *p : parts) {
    size_t l = strnlen(p, sizeof(text) - 1 - len);
    std::memcpy(text + len, p, l);
    len += l;
  }
  ssize_t ignored = write(2, text, len);
  (void)ignored;
  // As the one-process run's: 128 + the signal, which a pre-empting
  // scheduler's wrapper tells from an error's 1.
  _exit(128 + sig);
}

int report(llvm::Error e) {
  reported = 1;
  // One write: every rank may report at once into the launcher's pipe, and
  // a message written in pieces interleaves with the others'.
  llvm::errs() << "mllm-run: error: " + llvm::toString(std::move(e)) + "\n";
  llvm::errs().flush();
  return 1;
}

/// Set once every rank knows that the run failed (agreeOnSuccess).
bool agreedFailure = false;

} // namespace

int mllm::agreeOnSuccess(Group &world, int rank, llvm::Error error) {
  const char ok = error ? 0 : 1;
  if (!ok) // Named once: an error of the runner names its rank already.
    report(llvm::handleErrors(
        std::move(error),
        [](std::unique_ptr<exec::RankError> named) -> llvm::Error {
          return llvm::Error(std::move(named));
        },
        [&](const llvm::ErrorInfoBase &other) -> llvm::Error {
          return llvm::make_error<exec::RankError>(rank, other.message());
        }));
  std::vector<char> everyone(static_cast<size_t>(world.size()));
  if (llvm::Error e = world.allGatherBytes(&ok, 1, everyone.data()))
    abortJob(std::move(e));
  if (!llvm::is_contained(everyone, 0))
    return 0;
  noteAgreedFailure();
  return 1;
}

void mllm::noteAgreedFailure() {
  agreedFailure = true;
  // The launcher may stop this rank while another ends first: it has
  // nothing to add then.
  reported = 1;
}

bool mllm::failureAgreed() { return agreedFailure; }

void mllm::abortJob(llvm::Error e) {
  report(std::move(e));
  abortMPI(1);
}

llvm::Error mllm::initRankShare(const std::string &file,
                                llvm::ArrayRef<exec::NamedParam> share,
                                llvm::ArrayRef<exec::NamedParam> whole,
                                bool reports, std::vector<std::string> &unused,
                                std::vector<std::string> &missing) {
  if (llvm::Error e = exec::initFromWeights(file, share, unused, missing))
    return e;
  unused.clear();
  missing.clear();
  return reports ? exec::weightsCoverage(file, whole, unused, missing)
                 : llvm::Error::success();
}

/// Writes the measured events as mllm-sim writes a simulated iteration.
llvm::Error mllm::writeTrace(const Plan &plan,
                             const std::vector<exec::RankEvent> &events,
                             llvm::StringRef path) {
  sched::SimResult result;
  result.stages.resize(plan.schedule->graph.stages.size());
  result.worldSize = plan.job.worldSize;
  for (const exec::RankEvent &r : events) {
    sched::Event e;
    e.stage = r.stage;
    e.kind = static_cast<sched::ActionKind>(r.kind);
    e.microbatch = r.microbatch;
    e.peer = r.peer;
    e.rank = r.rank;
    e.start = r.start;
    e.end = r.end;
    result.events.push_back(e);
    result.iterationTime = std::max(result.iterationTime, r.end);
  }
  llvm::sort(result.events, [](const sched::Event &a, const sched::Event &b) {
    return std::tie(a.stage, a.start, a.rank) <
           std::tie(b.stage, b.start, b.rank);
  });
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec);
  if (ec)
    return llvm::createStringError(ec, "cannot write '" + path +
                                           "': " + ec.message());
  sched::writeChromeTrace(plan.schedule->graph, result, os);
  return llvm::Error::success();
}

void mllm::installStopHandler(int rank) {
  stopRank = rank;
  struct sigaction action = {};
  action.sa_sigaction = onStop;
  action.sa_flags = SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
}

namespace {
/// The data set this process's rank reads, where it reads one (for its
/// late decode failures).
const data::DataSet *rankDataSet = nullptr;
} // namespace

const data::DataSet *mllm::rankDataSetRead() { return rankDataSet; }

exec::RankRunner::DataFactory mllm::rankData(const RunOptions &options,
                                             int rank) {
  return [options, rank](const exec::Model &model)
             -> llvm::Expected<std::unique_ptr<exec::DataSource>> {
    if (options.dataFile.empty())
      return std::make_unique<exec::SyntheticData>(model, options.seed);
    auto set = exec::ManifestData::open(
        model, options.dataFile, dataOptions(options), options.dataThreads);
    if (!set)
      return set.takeError();
    rankDataSet = &(*set)->dataSet();
    if (rank == 0)
      reportData(options.dataFile, (*set)->dataSet(), options.json);
    return std::move(*set);
  };
}

/// The options every rank must share, compared once by hash: a rank with
/// more --steps than the others waited for them until --timeout, and one
/// with another --seed trained a model no single process reproduces. Files
/// are compared by whether they are given: a node may read its own copy
/// under another path (the data set's fingerprint and the checkpoints'
/// steps are compared where they are read).
llvm::Error mllm::agreeOnOptions(const RunOptions &o, Group &world) {
  auto flag = [](bool b) { return std::string(b ? "given" : "not given"); };
  const std::pair<const char *, std::string> options[] = {
      {"--steps", std::to_string(o.steps)},
      {"--seed", std::to_string(o.seed)},
      {"--checkpoint-dir", flag(!o.checkpointDir.empty())},
      {"--checkpoint-every", std::to_string(o.checkpointEvery)},
      {"--resume", flag(o.resume)},
      {"--save-initial", flag(o.saveInitial)},
      {"--init", flag(!o.initFile.empty())},
      {"--trace", flag(!o.traceFile.empty())},
      {"--data", flag(!o.dataFile.empty())},
      {"--strict", flag(o.strictData)},
      {"--tokenizer", flag(!o.tokenizer.empty())},
      {"--eval", flag(!o.evalFile.empty())},
      {"--eval-every", std::to_string(o.evalEvery)},
      {"--generate", flag(!o.generateFile.empty())},
      {"--max-tokens", std::to_string(o.maxTokens)},
      {"--no-kv-cache", flag(!o.keyCache)}};
  constexpr size_t n = std::size(options);
  uint64_t mine[n];
  for (size_t i = 0; i < n; ++i)
    mine[i] = llvm::xxh3_64bits(options[i].second);
  std::vector<uint64_t> all(n * static_cast<size_t>(world.size()));
  if (llvm::Error e = world.allGatherBytes(mine, sizeof(mine), all.data()))
    return e;
  for (int r = 0; r < world.size(); ++r)
    for (size_t i = 0; i < n; ++i)
      if (all[r * n + i] != mine[i])
        return llvm::createStringError(
            llvm::inconvertibleErrorCode(),
            "rank " + std::to_string(r) + " was started with another " +
                options[i].first + " than this rank ('" + options[i].second +
                "' here): start every rank with the same options");
  return llvm::Error::success();
}

int mllm::runParallel(const Plan &plan, Comm &comm, const RunOptions &options) {
  int rank = comm.worldRank();
  installStopHandler(rank);
  auto runner = exec::RankRunner::create(plan, options.seed, comm,
                                         rankData(options, rank));
  auto world = comm.group([&] {
    std::vector<int64_t> all(comm.worldSize());
    for (int i = 0; i < comm.worldSize(); ++i)
      all[i] = i;
    return all;
  }());
  if (!world)
    abortJob(world.takeError());
  // A rank may fail alone to build its share (a layer its TP shard
  // refuses): every rank learns it here, before any waits for it.
  const char built = runner ? 1 : 0;
  std::vector<char> everyone(static_cast<size_t>(comm.worldSize()));
  if (llvm::Error e = (*world)->allGatherBytes(&built, 1, everyone.data()))
    abortJob(std::move(e));
  if (!runner)
    return report(runner.takeError());
  if (llvm::is_contained(everyone, 0))
    return 1; // The failing ranks said why.
  // Every rank compares, so every rank stops: nobody waits for a peer.
  if (llvm::Error e = agreeOnOptions(options, **world))
    return report(
        llvm::make_error<exec::RankError>(rank, llvm::toString(std::move(e))));
  exec::RankRunner &r = **runner;
  if (options.faultRank >= 0)
    r.injectFault(options.faultRank, options.faultAction);
  if (options.checkMemoryPlan)
    r.checkMemoryPlan();

  if (!options.initFile.empty()) {
    std::vector<std::string> unused, missing;
    if (int rc = agreeOnSuccess(**world, rank,
                                initRankShare(options.initFile, r.params(),
                                              r.theModel().params, rank == 0,
                                              unused, missing)))
      return rc;
    if (rank == 0)
      reportInit(plan, options.initFile, unused, missing, options.json);
  }
  if (options.resume) {
    // This rank alone may have none (directories that are not shared), or
    // fail to load its shard: every rank learns it and ends.
    std::string path;
    llvm::Error e = loadNewestCheckpoint(
        options.checkpointDir,
        [&](llvm::StringRef newest) { return r.load(newest); }, path);
    if (int rc = agreeOnSuccess(**world, rank, std::move(e)))
      return rc;
    if (rank == 0)
      reportResume(plan, path, r.stepsDone(), r.loadedOtherPlan(), options.seed,
                   options.steps, options.json);
  }
  // Every rank, also one with no step left, compares its step first.
  if (llvm::Error e = r.agreeOnStart())
    return report(std::move(e));
  if (!options.checkpointDir.empty() && rank == 0)
    if (std::error_code ec =
            llvm::sys::fs::create_directories(options.checkpointDir))
      abortJob(llvm::make_error<exec::RankError>(
          rank,
          "cannot create '" + options.checkpointDir + "': " + ec.message()));
  // Every rank writes its shard; rank 0 reports once all are in place.
  auto checkpoint = [&]() {
    const auto started = std::chrono::steady_clock::now();
    if (llvm::Error e = r.save(options.checkpointDir))
      abortJob(std::move(e));
    if (rank == 0)
      finishCheckpoint(options.checkpointDir, r.stepsDone(), /*sharded=*/true,
                       options.keepLast, started, options.json);
  };
  // --eval: every rank reads the held-out set (rank 0 reports it) and
  // runs its share of each evaluation.
  std::unique_ptr<exec::EvalSet> heldOut;
  if (!options.evalFile.empty()) {
    auto opened = exec::EvalSet::open(r.theModel(), options.evalFile,
                                      dataOptions(options));
    if (int rc = agreeOnSuccess(**world, rank, optionError("--eval", opened)))
      return rc;
    heldOut = std::move(*opened);
    if (rank == 0)
      reportHeldOut("eval", options.evalFile, heldOut->dataSet(), options.json);
  }
  // --generate's prompts, read before any step (a bad file ends the run
  // before it trains).
  std::unique_ptr<exec::Generator> generator;
  if (!options.generateFile.empty()) {
    auto opened = exec::Generator::open(r.theModel(), options.generateFile,
                                        dataOptions(options));
    if (int rc =
            agreeOnSuccess(**world, rank, optionError("--generate", opened)))
      return rc;
    generator = std::move(*opened);
  }
  // Each rank evaluates its share, so each says what it left out.
  LateFailures evalLate(options.evalFile, options.json,
                        "rank " + std::to_string(rank) + ": ",
                        /*heldOut=*/true);
  auto evaluate = [&] {
    auto stats = r.evaluate(*heldOut);
    if (!stats)
      abortJob(stats.takeError());
    if (rank == 0)
      reportEval(*stats, options.json);
    evalLate.check(&heldOut->dataSet());
  };

  Progress progress(plan, r.theModel(), options.steps, options.threads,
                    options.json, comm.worldSize());
  if (rank == 0)
    progress.start(r.stepsDone());
  // After the header: a run's events start with `start`.
  if (options.saveInitial && !options.checkpointDir.empty() &&
      r.stepsDone() == 0)
    checkpoint();
  LateFailures late(options.dataFile, options.json,
                    "rank " + std::to_string(rank) + ": ");
  bool trained = false;
  while (r.stepsDone() < options.steps) {
    trained = true;
    bool traced =
        !options.traceFile.empty() && r.stepsDone() + 1 == options.steps;
    if (traced)
      r.traceNextStep();
    auto stats = r.step();
    if (!stats)
      abortJob(stats.takeError());
    if (traced) {
      auto events = r.gatherTrace();
      if (!events)
        abortJob(events.takeError());
      if (rank == 0)
        if (llvm::Error e = writeTrace(plan, *events, options.traceFile))
          abortJob(std::move(e));
    }
    if (rank == 0)
      progress.step(*stats);
    // Every rank has the same loss: all stop here, rank 0 says why.
    if (llvm::Error e = checkDiverged(*stats)) {
      if (rank == 0)
        return report(std::move(e));
      llvm::consumeError(std::move(e));
      return 1;
    }
    late.check(rankDataSetRead());
    if (!options.checkpointDir.empty() &&
        dueAfter(r.stepsDone(), options.steps, options.checkpointEvery))
      checkpoint();
    if (heldOut && dueAfter(r.stepsDone(), options.steps, options.evalEvery))
      evaluate();
  }
  // With no step to train: the weights as they are.
  if (heldOut && !trained)
    evaluate();
  if (rank == 0)
    progress.finish();
  late.finish(rankDataSetRead());
  // --generate: every rank runs the same Generator; rank 0 prints.
  if (generator) {
    auto next = r.nextToken(options.keyCache);
    if (!next)
      abortJob(next.takeError());
    if (llvm::Error e =
            generate(*generator, options.generateFile, options.maxTokens,
                     options.json, **next, rank == 0)) {
      if (e.isA<exec::RankError>())
        abortJob(std::move(e));
      abortJob(llvm::make_error<exec::RankError>(
          rank, "--generate: " + llvm::toString(std::move(e))));
    }
  }
  // Measured peak memory of every rank next to its stage's estimate.
  double peak = static_cast<double>(peakMemoryBytes()) / (1024.0 * 1024.0);
  std::vector<double> peaks(comm.worldSize());
  if (llvm::Error e =
          (*world)->allGatherBytes(&peak, sizeof(double), peaks.data()))
    abortJob(std::move(e));
  int64_t arena[2] = {r.messageArenaBytes(), r.messageArenaPeak()};
  std::vector<int64_t> arenas(2 * static_cast<size_t>(comm.worldSize()));
  if (llvm::Error e =
          (*world)->allGatherBytes(arena, sizeof(arena), arenas.data()))
    abortJob(std::move(e));
  if (rank == 0) {
    // Each rank under its schedule stage's name, as its step function's
    // line names it (colocated encoders: 'vision+audio_s0').
    std::vector<int64_t> programOf =
        plan.schedule ? plan.schedule->rankProgram() : std::vector<int64_t>();
    std::vector<RankMemory> rows;
    for (int i = 0; i < comm.worldSize(); ++i) {
      std::string names;
      int64_t planMiB = -1;
      for (const PlanStage &s : plan.stages)
        if (s.ranks && s.ranks->coordOf(i)) {
          names += (names.empty() ? "" : "+") + s.name;
          if (s.memory)
            planMiB = std::max<int64_t>(planMiB, 0) + s.memory->total;
        }
      if (static_cast<size_t>(i) < programOf.size() && programOf[i] >= 0)
        names = plan.schedule->graph
                    .stages[plan.schedule->programs[programOf[i]].stage]
                    .name;
      rows.push_back(
          {i, names, peaks[i], planMiB, arenas[2 * i], arenas[2 * i + 1]});
    }
    reportRankMemory(rows, options.json);
  }
  return 0;
}
