//===- Report.cpp - what mllm-run prints ----------------------------------===//
#include "Report.h"

#include "mllm/runtime/Launcher.h"
#include "mllm/runtime/SafeTensors.h"
#include "mllm/runtime/exec/Checkpoint.h"
#include "mllm/runtime/exec/RankRunner.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>

#include <sys/resource.h>

using namespace mllm;
using namespace mllm::runtime;

int64_t mllm::peakMemoryBytes() {
  struct rusage usage = {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;
}

namespace {

std::string duration(double seconds) {
  auto s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600)
    return llvm::formatv("{0}:{1:d2}:{2:d2}", s / 3600, s / 60 % 60, s % 60);
  return llvm::formatv("{0}:{1:d2}", s / 60, s % 60);
}

/// One write per line: outs() is unbuffered on a terminal (as a rank's
/// stdout under mpirun is), and a line written in pieces is cut short by
/// a signal that ends the run between them.
void writeLine(const std::string &line) {
  llvm::outs() << line;
  llvm::outs().flush();
}

void printJson(const llvm::json::Value &v) {
  std::string line;
  llvm::raw_string_ostream(line) << v << "\n";
  writeLine(line);
}

} // namespace

Progress::Progress(const Plan &plan, const exec::Model &model, int64_t total,
                   int threads, bool json, int ranks, bool device)
    : plan(plan), model(model), total(total), threads(threads), ranks(ranks),
      // A launcher gives each rank a terminal of its own even where the
      // job's output is a file: no bar there.
      json(json), tty(!json && llvm::sys::Process::StandardOutIsDisplayed() &&
                      !runtime::launchedByLauncher()),
      device(device) {}

std::string Progress::schedule() const {
  return plan.schedule ? plan.schedule->kind : "none";
}

void Progress::start(int64_t done) {
  from = done;
  int64_t params = model.totalParams, trainable = model.trainableParams;
  if (json) {
    printJson(llvm::json::Object{{"event", "start"},
                                 {"model", plan.job.model},
                                 {"params", params},
                                 {"trainable_params", trainable},
                                 {"steps", total},
                                 {"from_step", done},
                                 {"threads", threads},
                                 {"ranks", ranks},
                                 {"schedule", schedule()}});
    return;
  }
  auto count = [](int64_t n, llvm::StringRef one, llvm::StringRef many) {
    return std::to_string(n) + " " + (n == 1 ? one : many).str();
  };
  // What a step trains on, named: the batch is their product.
  llvm::outs() << "mllm-run: model '" << plan.job.model << "', " << params
               << " parameters (" << trainable << " trainable), "
               << count(plan.job.dp, "replica", "replicas") << " x "
               << count(plan.data.microbatches, "microbatch", "microbatches")
               << " x " << count(model.sequences, "sequence", "sequences")
               << " of " << model.seqLen << " tokens per step, "
               << count(threads, "thread", "threads");
  const char *where = device ? "CUDA, bf16" : "CPU, fp32";
  if (ranks > 1)
    llvm::outs() << " per rank, " << ranks << " ranks (" << where
                 << "), schedule " << schedule() << "\n";
  else
    llvm::outs() << ", one process (" << where << ")\n";
}

void Progress::step(const exec::StepStats &stats) {
  ++ran;
  seconds += stats.seconds;
  lastLoss = stats.loss;
  double tokensPerSecond = stats.tokens / std::max(stats.seconds, 1e-9);
  double eta = seconds / ran * static_cast<double>(total - stats.step);
  // Batches with their own CP split: the mean imbalance of the splits the
  // balancer made for them, and of the plan's split on the same batches.
  const exec::CPSplitStats &cp = stats.cp;
  double n = static_cast<double>(std::max<int64_t>(cp.batches, 1));
  if (json) {
    llvm::json::Object event{{"event", "step"},
                             {"step", stats.step},
                             {"steps", total},
                             {"loss", finiteOrNull(stats.loss)},
                             {"tokens", stats.tokens},
                             {"tokens_per_s", tokensPerSecond},
                             {"ms", stats.seconds * 1e3},
                             {"eta_s", eta}};
    if (cp.batches)
      event["cp"] =
          llvm::json::Object{{"batches", cp.batches},
                             {"imbalance", cp.imbalance / n},
                             {"plan_imbalance", cp.declaredImbalance / n},
                             {"balance_ms", cp.seconds * 1e3 / n}};
    printJson(std::move(event));
    return;
  }
  std::string bar;
  if (tty) {
    int width = 20;
    auto filled =
        static_cast<int>(width * stats.step / std::max<int64_t>(total, 1));
    bar = "[" + std::string(filled, '#') + std::string(width - filled, '.') +
          "] ";
  }
  std::string line;
  llvm::raw_string_ostream os(line);
  os << bar
     << llvm::format(
            "step %lld/%lld  loss %.6f  tokens/s %.0f  "
            "ms/step %.1f  ETA %s\n",
            static_cast<long long>(stats.step), static_cast<long long>(total),
            std::fabs(stats.loss), // no "-nan"
            tokensPerSecond, stats.seconds * 1e3, duration(eta).c_str());
  if (cp.batches)
    os << llvm::format("  CP split per batch: imbalance %.3f (the "
                       "plan's split: %.3f), %.2f ms to balance\n",
                       cp.imbalance / n, cp.declaredImbalance / n,
                       cp.seconds * 1e3 / n);
  writeLine(line);
}

void Progress::finish() {
  // A device run's memory is its arena, reported when it is laid out.
  if (ranks > 1 || device) {
    if (json)
      printJson(llvm::json::Object{{"event", "done"},
                                   {"steps", ran},
                                   {"step", from + ran},
                                   {"seconds", seconds},
                                   {"final_loss", finiteOrNull(lastLoss)}});
    else
      writeLine(doneLine() + "\n");
    return;
  }
  // The plan's memory estimate is per GPU of a stage, for the job's
  // precision; this process holds every stage of one replica in fp32.
  int64_t stageMax = 0, replica = 0;
  for (const PlanStage &s : plan.stages)
    if (s.memory) {
      stageMax = std::max(stageMax, s.memory->total);
      replica += s.memory->total;
    }
  double peakMiB = static_cast<double>(peakMemoryBytes()) / (1024.0 * 1024.0);
  if (json) {
    printJson(llvm::json::Object{{"event", "done"},
                                 {"steps", ran},
                                 {"step", from + ran},
                                 {"seconds", seconds},
                                 {"final_loss", finiteOrNull(lastLoss)},
                                 {"peak_memory_mib", peakMiB},
                                 {"plan_stage_max_mib", stageMax},
                                 {"plan_replica_mib", replica}});
    return;
  }
  std::string line = doneLine();
  llvm::raw_string_ostream(line) << llvm::format(
      "; peak memory %.0f MiB measured (this process: every "
      "stage, fp32) vs the plan's %lld MiB for one replica "
      "(%lld MiB on its largest stage, %s)\n",
      peakMiB, static_cast<long long>(replica),
      static_cast<long long>(stageMax), plan.train.precision.c_str());
  writeLine(line);
}

std::string Progress::doneLine() const {
  // A run that only evaluates or generates trained nothing: no loss.
  if (ran == 0)
    return "done: 0 steps";
  return llvm::formatv("done: {0} step{1} in {2:f2} s, final loss {3:f6}", ran,
                       ran == 1 ? "" : "s", seconds, lastLoss)
      .str();
}

llvm::Error mllm::checkDiverged(const runtime::exec::StepStats &stats) {
  if (std::isfinite(stats.loss))
    return llvm::Error::success();
  return llvm::createStringError(
      llvm::formatv("step {0}: the loss is {1}: training diverged, and the "
                    "weights of this step are not usable, so the run stops "
                    "without writing them (earlier checkpoints are kept); "
                    "lower train.lr, or resume an earlier checkpoint with a "
                    "lower one",
                    stats.step, std::isnan(stats.loss) ? "NaN" : "infinite")
          .str());
}

bool mllm::stopIfDiverged(const runtime::exec::StepStats &stats, bool reports) {
  llvm::Error e = checkDiverged(stats);
  if (!e)
    return false;
  if (reports)
    llvm::errs() << "mllm-run: error: " + llvm::toString(std::move(e)) + "\n";
  else
    llvm::consumeError(std::move(e));
  return true;
}

llvm::json::Value mllm::finiteOrNull(double x) {
  return std::isfinite(x) ? llvm::json::Value(x) : llvm::json::Value(nullptr);
}

void mllm::reportRankMemory(const std::vector<RankMemory> &rows, bool json) {
  if (json) {
    llvm::json::Array a;
    for (const RankMemory &r : rows)
      a.push_back(llvm::json::Object{{"rank", r.rank},
                                     {"stage", r.stage},
                                     {"peak_mib", r.peakMiB},
                                     {"plan_mib", r.planMiB},
                                     {"message_arena_bytes", r.messageArena},
                                     {"message_peak_bytes", r.messagePeak}});
    printJson(llvm::json::Object{{"event", "memory"}, {"ranks", std::move(a)}});
    return;
  }
  llvm::outs() << "peak memory per rank (measured, fp32 on the CPU; the "
                  "plan's estimate for a GPU of the stage in its precision):\n";
  size_t width = 24; // The stage column: the longest name.
  for (const RankMemory &r : rows)
    width = std::max(width, r.stage.size());
  for (const RankMemory &r : rows) {
    llvm::outs() << llvm::format("  rank %-4d %-*s %8.0f MiB", r.rank,
                                 static_cast<int>(width), r.stage.c_str(),
                                 r.peakMiB);
    if (r.planMiB >= 0)
      llvm::outs() << llvm::format("   plan %8lld MiB",
                                   static_cast<long long>(r.planMiB));
    if (r.messageArena > 0)
      llvm::outs() << llvm::format("   messages %.1f KiB",
                                   static_cast<double>(r.messageArena) / 1024);
    llvm::outs() << "\n";
  }
}

void mllm::reportData(const std::string &file, const data::DataSet &set,
                      bool json) {
  const data::Problems &problems = set.problems();
  if (json) {
    llvm::json::Array examples;
    for (const std::string &e : problems.examples())
      examples.push_back(e);
    printJson(llvm::json::Object{{"event", "data"},
                                 {"file", file},
                                 {"samples", set.size()},
                                 {"skipped", problems.summary()},
                                 {"examples", std::move(examples)}});
    return;
  }
  llvm::outs() << "mllm-run: data '" << file << "': " << set.size()
               << (set.size() == 1 ? " sample" : " samples");
  std::string skipped = problems.summary();
  if (!skipped.empty())
    llvm::outs() << "; " << skipped;
  llvm::outs() << "\n";
  for (const std::string &e : problems.examples())
    llvm::outs() << "  " << e << "\n";
  if (problems.total() > static_cast<int64_t>(problems.examples().size()))
    llvm::outs() << "  ... and "
                 << problems.total() -
                        static_cast<int64_t>(problems.examples().size())
                 << " more (the first ones are listed; --strict stops at "
                    "the first)\n";
}

namespace {
/// One write per line: the ranks of a parallel run share the terminal, and
/// a line written in pieces interleaves with the others'.
void warn(const std::string &message) {
  llvm::errs() << "mllm-run: warning: " + message + "\n";
  llvm::errs().flush();
}
void note(const std::string &message) {
  llvm::errs() << "mllm-run: note: " + message + "\n";
  llvm::errs().flush();
}
} // namespace

void mllm::LateFailures::check(const data::DataSet *set) {
  if (!set || set->lateFailures() == 0)
    return;
  std::vector<std::string> examples = set->lateFailureExamples();
  for (; shown < examples.size(); ++shown) {
    if (json) {
      printJson(llvm::json::Object{{"event", "data_failure"},
                                   {"message", prefix + examples[shown]}});
      continue;
    }
    warn(prefix + examples[shown] +
         (heldOut ? "; the sample is left out of the evaluation's loss and "
                    "accuracy (--strict stops instead)"
                  : "; the sample teaches nothing (--strict stops instead)"));
  }
}

void mllm::LateFailures::finish(const data::DataSet *set) {
  check(set);
  if (!set || set->lateFailures() == 0)
    return;
  const int64_t n = set->lateFailedSamples(), reads = set->lateFailures();
  if (json) {
    printJson(llvm::json::Object{{"event", "data_failures"},
                                 {"file", file},
                                 {"samples", n},
                                 {"reads", reads}});
    return;
  }
  warn(llvm::formatv("{0}data '{1}': {2} sample{3} ({4} read{5}) failed to "
                     "decode when read and taught nothing",
                     prefix, file, n, n == 1 ? "" : "s", reads,
                     reads == 1 ? "" : "s")
           .str());
}

void mllm::reportInit(const runtime::Plan &plan, const std::string &file,
                      const std::vector<std::string> &unused,
                      const std::vector<std::string> &missing, bool json) {
  if (std::optional<std::string> differ =
          runtime::exec::checkpointLayersDiffer(file, plan))
    warn("'" + file + "' was written for a model whose layers differ (" +
         *differ +
         "): its weights load by name and shape but may mean something "
         "else here");
  if (json) {
    llvm::json::Array u, m;
    for (const std::string &s : unused)
      u.push_back(s);
    for (const std::string &s : missing)
      m.push_back(s);
    printJson(llvm::json::Object{{"event", "init"},
                                 {"file", file},
                                 {"unused", std::move(u)},
                                 {"not_in_file", std::move(m)}});
    return;
  }
  std::string line;
  llvm::raw_string_ostream os(line);
  os << "mllm-run: initialised from '" << file << "'";
  if (!missing.empty())
    os << "; " << missing.size()
       << " parameters keep their initial values (not in the file, e.g. '"
       << missing.front() << "')";
  if (!unused.empty())
    os << "; " << unused.size()
       << " tensors of the file are not parameters of this model (e.g. '"
       << unused.front() << "')";
  os << "\n";
  writeLine(line);
}

void mllm::finishCheckpoint(const std::string &dir, int64_t step, bool sharded,
                            int64_t keepLast,
                            std::chrono::steady_clock::time_point started,
                            bool json) {
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started)
          .count();
  llvm::SmallString<256> path(dir);
  llvm::sys::path::append(path, runtime::exec::checkpointName(step, sharded));
  std::vector<std::string> removed;
  std::string failure;
  if (keepLast > 0)
    removed =
        runtime::exec::removeOlderCheckpoints(dir, keepLast, path, failure);
  if (!failure.empty())
    warn("--keep-last: " + failure + "; the run goes on");
  llvm::sort(removed); // Oldest first (the names are zero-padded).
  if (json) {
    llvm::json::Array names;
    for (const std::string &name : removed)
      names.push_back(name);
    printJson(llvm::json::Object{{"event", "checkpoint"},
                                 {"step", step},
                                 {"path", path.str()},
                                 {"seconds", seconds},
                                 {"removed", std::move(names)}});
    return;
  }
  std::string line;
  llvm::raw_string_ostream os(line);
  os << llvm::formatv("checkpoint: step {0} in '{1}' ({2})", step, path,
                      seconds < 1
                          ? llvm::formatv("{0:f0} ms", seconds * 1e3).str()
                          : llvm::formatv("{0:f1} s", seconds).str());
  if (!removed.empty())
    os << "; removed " << llvm::join(removed, ", ") << " (--keep-last "
       << keepLast << ")";
  os << "\n";
  writeLine(line);
}

namespace {
/// Why --resume could not load the newest checkpoint `path`, with the way
/// on when the file itself does not read.
std::string resumeFailure(const std::string &path, std::string message) {
  if (!llvm::sys::fs::is_regular_file(path))
    return message; // A sharded checkpoint's shards say for themselves.
  auto file = runtime::SafeTensorsFile::open(path);
  if (file)
    return message;
  llvm::consumeError(file.takeError());
  return message +
         "; the newest checkpoint does not read (a copy cut "
         "short?): move '" +
         llvm::sys::path::filename(path).str() + "' out of '" +
         llvm::sys::path::parent_path(path).str() +
         "' to resume from the one before it";
}
} // namespace

llvm::Error mllm::loadNewestCheckpoint(
    const std::string &dir,
    llvm::function_ref<llvm::Error(llvm::StringRef)> load, std::string &path) {
  path = runtime::exec::newestCheckpoint(dir);
  if (path.empty())
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "--resume: no checkpoint in '" + dir + "'");
  return llvm::handleErrors(
      load(path),
      [&](std::unique_ptr<runtime::exec::RankError> named) -> llvm::Error {
        named->message = resumeFailure(path, named->message);
        return llvm::Error(std::move(named));
      },
      [&](const llvm::ErrorInfoBase &other) -> llvm::Error {
        return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                       resumeFailure(path, other.message()));
      });
}

void mllm::reportResume(const runtime::Plan &plan, const std::string &file,
                        int64_t step, bool otherPlan, uint64_t seed,
                        int64_t total, bool json) {
  if (step >= total)
    note(llvm::formatv("'{0}' is at step {1}, and --steps {2} is the step to "
                       "train to, not a number of steps to add: nothing to "
                       "train (--steps {3} trains {4} more)",
                       file, step, total, step + std::max<int64_t>(total, 1),
                       std::max<int64_t>(total, 1))
             .str());
  std::optional<uint64_t> trained = runtime::exec::checkpointSeed(file);
  if (trained && *trained != seed)
    warn(llvm::formatv("'{0}' was trained with seed {1}, this run's is {2}: "
                       "the batches from step {3} on are not the ones the "
                       "interrupted run would have trained on (pass --seed "
                       "{1} to continue it exactly)",
                       file, *trained, seed, step + 1)
             .str());
  if (std::optional<std::string> differ =
          runtime::exec::checkpointSettingsDiffer(file, plan))
    warn("'" + file + "' was trained under other settings than this run's (" +
         *differ +
         "): training continues from its weights and optimizer state under "
         "this run's");
  if (json) {
    printJson(llvm::json::Object{{"event", "resume"},
                                 {"file", file},
                                 {"step", step},
                                 {"other_plan", otherPlan}});
    return;
  }
  std::string line;
  llvm::raw_string_ostream os(line);
  os << "mllm-run: resumed from '" << file << "' after step " << step;
  if (otherPlan)
    os << " (written under another plan of the same model: re-sharded by "
          "parameter name)";
  os << "\n";
  writeLine(line);
}
