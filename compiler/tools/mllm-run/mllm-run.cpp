//===- mllm-run.cpp - train the model of a plan ---------------------------===//
//
// Trains the model of a spec (compiled in-process through the shared
// driver), of its .mlir, or of a plan file, on the CPU backend. Without
// mpirun it runs the whole plan in one process: the reference every
// parallel run matches (docs/runtime.md). Exit codes: 0 success, 1 user
// error (diagnostic printed), 2 internal error.
//
//===----------------------------------------------------------------------===//
#ifdef MLLM_HAVE_JIT
#include "JITDriver.h"
#endif
#include "DeviceRun.h"
#include "EvalGenerate.h"
#include "Parallel.h"
#include "ProfileWriter.h"
#include "Report.h"

#ifdef MLLM_HAVE_MPI
#include "mllm/runtime/MPIComm.h"
#endif
#ifdef MLLM_HAVE_CUDA_BACKEND
#include "mllm/runtime/CUDABackend.h"
#endif
#include "mllm/Dialect/MLLM/IR/MLLMOps.h"
#include "mllm/Driver/Driver.h"
#include "mllm/Support/SourceLineHandler.h"
#include "mllm/Tools/RegisterMllm.h"
#include "mllm/kernels/SequenceLayout.h"
#include "mllm/kernels/cpu/Threads.h"
#include "mllm/runtime/exec/Checkpoint.h"
#include "mllm/runtime/exec/ManifestData.h"
#include "mllm/runtime/exec/Measure.h"
#include "mllm/runtime/exec/Trainer.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/Signals.h"

#include <cmath>
#include <csignal>
#include <numeric>
#include <optional>
#include <thread>

#include <unistd.h>

using namespace mllm;
using namespace mllm::runtime;
namespace cl = llvm::cl;

namespace {

cl::OptionCategory category("mllm-run options");
cl::opt<std::string> inputFile(cl::Positional,
                               cl::desc("<spec.mllm | job.mlir | plan.yaml>"),
                               cl::Required, cl::cat(category));
cl::opt<int64_t> steps("steps",
                       cl::desc("Optimizer steps to run (default: the "
                                "spec's train.steps)"),
                       cl::init(-1), cl::cat(category));
cl::opt<int64_t> seedOption("seed",
                            cl::desc("Seed of the initial weights and the "
                                     "synthetic data (default: the spec's)"),
                            cl::init(-1), cl::cat(category));
/// `--threads`: LLVM's shared library already registers an option of that
/// name (unused by us), so mllm-run adopts it instead of a second one.
cl::Option *registeredThreads() {
  auto &options = cl::getRegisteredOptions();
  auto it = options.find("threads");
  return it == options.end() ? nullptr : it->second;
}

int threadsOption() {
  cl::Option *option = registeredThreads();
  if (auto *o = dynamic_cast<cl::opt<int> *>(option))
    return o->getValue();
  if (auto *o = dynamic_cast<cl::opt<unsigned> *>(option))
    return static_cast<int>(o->getValue());
  return 0;
}

bool threadsGiven() {
  cl::Option *option = registeredThreads();
  return option && option->getNumOccurrences() > 0;
}

void adoptThreadsOption() {
  if (cl::Option *option = registeredThreads()) {
    option->setDescription("CPU threads (default: all the machine's)");
    option->addCategory(category);
  }
}
cl::opt<std::string>
    checkpointDir("checkpoint-dir",
                  cl::desc("Write checkpoints (safetensors) into DIR"),
                  cl::value_desc("dir"), cl::init(""), cl::cat(category));
cl::opt<int64_t> checkpointEvery(
    "checkpoint-every",
    cl::desc("With --checkpoint-dir: a checkpoint every N steps (default: "
             "only after the last step)"),
    cl::init(0), cl::cat(category));
cl::opt<int64_t> keepLast(
    "keep-last",
    cl::desc("With --checkpoint-dir: keep the N newest checkpoints, removing "
             "older ones once a new one is written (default: keep all)"),
    cl::value_desc("N"), cl::init(0), cl::cat(category));
cl::opt<bool> resume("resume",
                     cl::desc("Continue from the newest checkpoint in "
                              "--checkpoint-dir"),
                     cl::init(false), cl::cat(category));
cl::opt<std::string>
    initFile("init", cl::desc("Initialise from released weights (safetensors)"),
             cl::value_desc("file"), cl::init(""), cl::cat(category));
cl::opt<bool> emitJson("json", cl::desc("One JSON object per line"),
                       cl::init(false), cl::cat(category));
cl::opt<bool> saveInitial(
    "save-initial",
    cl::desc("With --checkpoint-dir: also write the initial weights (step 0)"),
    cl::init(false), cl::cat(category));
cl::opt<std::string> dumpBatches(
    "dump-batches",
    cl::desc("Write every microbatch the run trains on, and the sequence's "
             "layout, to FILE (safetensors; docs/runtime.md)"),
    cl::value_desc("file"), cl::init(""), cl::cat(category));

cl::opt<double> timeoutSeconds(
    "timeout",
    cl::desc("Parallel runs: seconds any wait for another rank may take "
             "before the run fails, naming the rank, action and peer "
             "(default 300)"),
    cl::init(300), cl::cat(category));
cl::opt<std::string> injectFault(
    "inject-fault",
    cl::desc("Testing: RANK:ACTION kills rank RANK before action ACTION of "
             "its program in the first step"),
    cl::value_desc("rank:action"), cl::init(""), cl::Hidden, cl::cat(category));

cl::opt<bool> checkMemoryPlan(
    "check-memory-plan",
    cl::desc("Testing: under mpirun, every rank checks after each step that "
             "it used each message buffer of its arena, freed each send's "
             "where its program's static memory plan says, and that the "
             "arena's measured peak is its planned size"),
    cl::init(false), cl::Hidden, cl::cat(category));

cl::opt<std::string> traceFile(
    "trace",
    cl::desc("Parallel runs: write a Chrome trace of the last step's "
             "actions on every rank (the layout of mllm-sim --trace)"),
    cl::value_desc("file"), cl::init(""), cl::cat(category));
cl::opt<std::string> profileFile(
    "profile-out",
    cl::desc("Measure every layer group's forward, input-gradient and "
             "weight-gradient time on this machine and write them as a cost "
             "profile (mllmc --profile FILE plans with them)"),
    cl::value_desc("file"), cl::init(""), cl::cat(category));

cl::opt<std::string> dataFile(
    "data",
    cl::desc("Train on a data set: a JSONL manifest of samples with their "
             "text and media files (docs/data.md); default: synthetic "
             "batches"),
    cl::value_desc("manifest.jsonl"), cl::init(""), cl::cat(category));
cl::opt<bool> strictData(
    "strict",
    cl::desc("With --data: stop at the first bad sample instead of skipping "
             "and counting it"),
    cl::init(false), cl::cat(category));
cl::opt<std::string> tokenizerModel(
    "tokenizer",
    cl::desc("Tokenise the text of --data, --eval and --generate with this "
             "SentencePiece model (the LLM's own .model file); default: one "
             "token per byte"),
    cl::value_desc("file.model"), cl::init(""), cl::cat(category));
cl::opt<int> dataThreads("data-threads",
                         cl::desc("With --data: threads that decode and pack "
                                  "batches ahead of the step, per data-"
                                  "parallel replica read (default 2)"),
                         cl::init(2), cl::cat(category));

cl::opt<std::string> evalFile(
    "eval",
    cl::desc("Evaluate on a held-out data set (a JSONL manifest): the mean "
             "loss per target token and the token accuracy, without "
             "gradients, at the end (and every --eval-every steps)"),
    cl::value_desc("manifest.jsonl"), cl::init(""), cl::cat(category));
cl::opt<int64_t> evalEvery("eval-every",
                           cl::desc("With --eval: also evaluate every N steps"),
                           cl::init(0), cl::cat(category));
cl::opt<std::string> generateFile(
    "generate",
    cl::desc("Greedy generation: continue the text of every sample of a "
             "JSONL manifest after its media, and print it (the weights of "
             "--init or --resume; trains only with --steps)"),
    cl::value_desc("prompts.jsonl"), cl::init(""), cl::cat(category));
cl::opt<int64_t> maxTokens("max-tokens",
                           cl::desc("With --generate: tokens per sample at "
                                    "most (default 32)"),
                           cl::init(32), cl::cat(category));
cl::opt<bool> noKeyCache(
    "no-kv-cache",
    cl::desc("With --generate: recompute the LLM over the whole sequence "
             "for every token instead of keeping the earlier tokens' keys "
             "and values"),
    cl::init(false), cl::cat(category));

cl::opt<std::string> backend(
    "backend",
    cl::desc("cpu (default) or cuda: train on GPUs with the device executor "
             "(docs/cuda.md §9): one process trains a whole replica; under "
             "mpirun, one process per data-parallel replica or one per rank "
             "of the plan (its pipeline, tensor and context-parallel "
             "shares)"),
    cl::init("cpu"), cl::cat(category));

cl::opt<std::string> attentionKernel(
    "attention-kernel",
    cl::desc("With --backend=cuda: staged (default) or registers, the "
             "register-tile attention kernels (docs/cuda.md §2)"),
    cl::init("staged"), cl::cat(category));

cl::opt<bool> interpret(
    "interpret",
    cl::desc("Run the program (each rank's, or the one-process run's) with the "
             "interpreter instead of a step function compiled with ORC "
             "(docs/runtime.md)"),
    cl::init(false), cl::cat(category));
cl::opt<std::string> stepFunctions(
    "step-functions",
    cl::desc("Under mpirun: compile each rank's step function from this file "
             "(mllmc --emit=llvm) instead of lowering the plan"),
    cl::value_desc("file.mlir"), cl::init(""), cl::cat(category));

int fail(int rc, const llvm::Twine &message) {
  // One write: under mpirun every rank may report the same error, and the
  // pieces of unbuffered writes interleave (as Report.cpp's errors).
  llvm::errs() << ("mllm-run: error: " + message + "\n").str();
  return rc;
}

/// --timeout's largest value: some 3 years, far inside the clocks' range.
constexpr double kMaxTimeoutSeconds = 1e8;

/// The numeric options' ranges, before anything runs: a value out of range
/// is the user's error, never a silent default.
int checkNumbers() {
  auto atLeast = [](const cl::opt<int64_t> &o, int64_t low,
                    llvm::StringRef what,
                    llvm::StringRef note = "") -> std::optional<std::string> {
    if (!o.getNumOccurrences() || o.getValue() >= low)
      return std::nullopt;
    return llvm::formatv("--{0} takes {1} >= {2}{3}, not {4}", o.ArgStr, what,
                         low, note, o.getValue())
        .str();
  };
  for (const std::optional<std::string> &problem :
       {atLeast(steps, 0, "a number of optimizer steps"),
        atLeast(seedOption, 0, "a seed"),
        atLeast(checkpointEvery, 0, "a number of steps",
                " (0: only after the last step)"),
        atLeast(keepLast, 1, "a number of checkpoints"),
        atLeast(evalEvery, 0, "a number of steps", " (0: only at the end)"),
        atLeast(maxTokens, 1, "a number of tokens per sample")})
    if (problem)
      return fail(1, *problem);
  // Past some thousands the system refuses threads, which std::thread
  // reports by throwing (an abort here).
  if (dataThreads < 1 || dataThreads > 1024)
    return fail(1, llvm::formatv("--data-threads takes a number of threads "
                                 "from 1 to 1024, not {0}",
                                 dataThreads.getValue()));
  if (threadsGiven() && threadsOption() < 1)
    return fail(1, llvm::formatv("--threads takes a number of threads >= 1 "
                                 "(without it: all the machine's), not {0}",
                                 threadsOption()));
  // OpenMP aborts the process when it cannot start the threads.
  const int maxThreads = std::max(1024u, std::thread::hardware_concurrency());
  if (threadsOption() > maxThreads)
    return fail(1, llvm::formatv("--threads takes at most {0} threads, not "
                                 "{1}",
                                 maxThreads, threadsOption()));
  if (!(timeoutSeconds > 0) || std::isnan(timeoutSeconds))
    return fail(1, llvm::formatv("--timeout takes a number of seconds > 0, "
                                 "not {0}",
                                 timeoutSeconds.getValue()));
  // Beyond the clocks' range (inf included): no deadline in practice.
  timeoutSeconds.setValue(std::min<double>(timeoutSeconds, kMaxTimeoutSeconds));
  return 0;
}

/// Options that only mean something with another one: given alone they
/// would be ignored without a word.
int checkCombinations() {
  auto needs = [](const cl::Option &o, bool present,
                  llvm::StringRef what) -> int {
    if (!o.getNumOccurrences() || present)
      return 0;
    return fail(1, llvm::formatv("--{0} works with {1}: add it, or drop "
                                 "--{0}",
                                 o.ArgStr, what));
  };
  const bool checkpoints = !checkpointDir.empty();
  for (int rc :
       {needs(saveInitial, checkpoints, "--checkpoint-dir DIR"),
        needs(checkpointEvery, checkpoints, "--checkpoint-dir DIR"),
        needs(keepLast, checkpoints, "--checkpoint-dir DIR"),
        needs(dataThreads, !dataFile.empty(), "--data FILE"),
        needs(strictData,
              !dataFile.empty() || !evalFile.empty() || !generateFile.empty(),
              "--data, --eval or --generate"),
        needs(tokenizerModel,
              !dataFile.empty() || !evalFile.empty() || !generateFile.empty(),
              "--data, --eval or --generate"),
        needs(evalEvery, !evalFile.empty(), "--eval FILE"),
        needs(maxTokens, !generateFile.empty(), "--generate FILE"),
        needs(noKeyCache, !generateFile.empty(), "--generate FILE")})
    if (rc)
      return rc;
  // Both set the weights; the checkpoint would win without a word.
  if (resume && !initFile.empty())
    return fail(1, "--init and --resume both set the starting weights: "
                   "--resume continues the newest checkpoint of "
                   "--checkpoint-dir (drop --init), --init starts a new run "
                   "from released weights (drop --resume)");
  if (!checkpoints)
    return 0;
  // A file there would fail the first checkpoint, after the steps it saves.
  if (llvm::sys::fs::exists(checkpointDir) &&
      !llvm::sys::fs::is_directory(checkpointDir))
    return fail(1, "--checkpoint-dir '" + checkpointDir +
                       "' is a file, not a directory; name a directory");
  // Another run's checkpoints would be overwritten step by step, and a
  // later --resume would continue whichever is newest.
  std::string newest = exec::newestCheckpoint(checkpointDir);
  if (!resume && !newest.empty())
    return fail(1, "--checkpoint-dir '" + checkpointDir +
                       "' holds another run's checkpoints (the newest: '" +
                       llvm::sys::path::filename(newest) +
                       "'): add --resume to continue that run, or name an "
                       "empty directory");
  return 0;
}

/// `path` absolute, with links and dots resolved as far as it exists
/// (a file or directory not made yet keeps its name under its parent's real
/// path); "" for "".
std::string canonicalPath(llvm::StringRef path) {
  if (path.empty())
    return "";
  llvm::SmallString<256> real;
  if (!llvm::sys::fs::real_path(path, real))
    return std::string(real);
  llvm::SmallString<256> absolute(path);
  llvm::sys::fs::make_absolute(absolute);
  llvm::sys::path::remove_dots(absolute, /*remove_dot_dot=*/true);
  llvm::StringRef parent = llvm::sys::path::parent_path(absolute);
  if (parent.empty() || parent == absolute)
    return std::string(absolute);
  llvm::SmallString<256> joined(canonicalPath(parent));
  llvm::sys::path::append(joined, llvm::sys::path::filename(absolute));
  return std::string(joined);
}

/// The files a run writes never replace one it reads (the spec or plan,
/// data, weights, a checkpoint), nor each other; and a path option given
/// an empty value (`--data "$UNSET"`) is an error, not the option unset.
int checkOutputs(const DriverOptions &options) {
  using PathOption = const cl::opt<std::string> *;
  for (PathOption o : std::initializer_list<PathOption>{
           &checkpointDir, &initFile, &dumpBatches, &traceFile, &profileFile,
           &dataFile, &evalFile, &generateFile, &stepFunctions, &tokenizerModel,
           &options.profile})
    if (o->getNumOccurrences() && o->getValue().empty())
      return fail(1, "--" + o->ArgStr + " was given an empty value: name a " +
                         o->ValueStr + ", or drop the option");
  std::vector<std::string> inputs = {
      inputFile,       dataFile,      evalFile,      generateFile,
      options.profile, stepFunctions, tokenizerModel};
  // Weights and checkpoints: files, or directories of them.
  for (const std::string &dir : {initFile.getValue(), checkpointDir.getValue()})
    if (llvm::sys::fs::is_directory(dir)) {
      std::error_code ec;
      for (llvm::sys::fs::recursive_directory_iterator it(dir, ec), end;
           it != end && !ec; it.increment(ec))
        inputs.push_back(it->path());
    } else {
      inputs.push_back(dir);
    }
  llvm::erase_if(inputs, [](const std::string &p) { return p.empty(); });
  std::vector<std::string> outputs;
  // The checkpoint directory's names are the run's to write, lock and
  // rotate, those it has not written yet too (an output named like the
  // next checkpoint or '.lock' replaced it, with exit 0): step-N files and
  // shard directories, their temporaries, '.lock' and the write probe.
  // Other files may sit beside them.
  std::string checkpoints = canonicalPath(checkpointDir);
  auto runOwns = [&](llvm::StringRef path) {
    // The name directly under the directory that `path` is, or is inside.
    std::string sep = llvm::sys::path::get_separator().str();
    if (checkpoints.empty() || !path.consume_front(checkpoints + sep))
      return false;
    llvm::StringRef name = path.split(sep).first;
    return name == ".lock" || name.starts_with("step-") ||
           name.starts_with(".step-") || name.starts_with(".mllm-run-");
  };
  for (PathOption o : {&dumpBatches, &traceFile, &profileFile})
    if (!o->getValue().empty()) {
      if (llvm::Error e = checkOutputNotInput(o->getValue(), inputs))
        return fail(1, "--" + o->ArgStr + ": " + llvm::toString(std::move(e)));
      if (runOwns(canonicalPath(o->getValue())))
        return fail(1, "--" + o->ArgStr + " '" + o->getValue() +
                           "' is a name of --checkpoint-dir '" + checkpointDir +
                           "' that the run writes (its checkpoints, "
                           "'.lock'): name another file");
      if (llvm::is_contained(outputs, o->getValue()))
        return fail(1, "--" + o->ArgStr + " '" + o->getValue() +
                           "' is also another option's output: give each "
                           "its own file");
      outputs.push_back(o->getValue());
    }
  return 0;
}

/// SIGINT and SIGTERM of a one-process run: the first asks the training
/// loop to stop after its step (and checkpoint it), as a job scheduler's
/// pre-emption wants; a second stops at once, removing a checkpoint's
/// temporary as LLVM's own handler would.
volatile sig_atomic_t interrupts = 0, interruptSignal = 0;

void onInterrupt(int sig) {
  if (interrupts++ == 0) {
    interruptSignal = sig;
    static const char text[] =
        "mllm-run: interrupted: stopping after this step (again to stop "
        "now)\n";
    ssize_t ignored = write(2, text, sizeof text - 1);
    (void)ignored;
    return;
  }
  llvm::sys::RunInterruptHandlers();
  _exit(128 + sig);
}

void installInterruptHandler() {
  struct sigaction action = {};
  action.sa_handler = onInterrupt;
  action.sa_flags = SA_RESTART;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

/// The steps to train to where the command line sets them: --steps, or
/// none for --generate alone (generation from given weights trains only
/// when asked to); else the spec's train.steps.
std::optional<int64_t> stepsFromCommandLine() {
  if (steps >= 0)
    return steps.getValue();
  if (!generateFile.empty())
    return 0;
  return std::nullopt;
}

int runMain(mlir::MLIRContext &context, const DriverOptions &options,
            Comm *comm) {
  std::string error;
  auto input = mllm::openInputFile(inputFile, error);
  if (!input)
    return fail(1, error);
  llvm::SourceMgr srcMgr;
  srcMgr.AddNewSourceBuffer(std::move(input), llvm::SMLoc());
  SourceLineHandler handler(srcMgr, &context);
  Plan plan;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  if (int rc =
          loadPlan(context, srcMgr, inputFile, options, plan, error, &module)) {
    if (!error.empty())
      llvm::errs() << error << "\n";
    return rc;
  }
  uint64_t seed = seedOption >= 0 ? static_cast<uint64_t>(seedOption)
                                  : static_cast<uint64_t>(plan.train.seed);
  int64_t total = stepsFromCommandLine().value_or(plan.train.steps);
  // A layout with no next-token target (bidirectional text from hand-made
  // IR, a prefix_lm prefix over all the text) trains on a loss of 0. A
  // layout the checks refuse is the model's to report.
  auto noTargets = [&]() {
    auto spec = runtime::sequenceSpec(plan);
    if (!spec) {
      llvm::consumeError(spec.takeError());
      return false;
    }
    if (!kernels::checkSequenceSpec(*spec).empty())
      return false;
    std::vector<kernels::LayoutSpan> spans;
    kernels::buildSequenceLayout(*spec, &spans);
    return kernels::targetPositions(spans).empty();
  };
  if (total > 0 && dataFile.empty() && noTargets())
    return fail(1, "the plan's data layout gives no token a next-token "
                   "target (text mask '" +
                       plan.data.textMask + "' over " +
                       llvm::Twine(plan.data.textTokens) +
                       " text tokens per sample): training would change "
                       "nothing; " +
                       (plan.data.textMask == "causal"
                            ? "give each sample at least 2 text tokens"
                            : "use a causal text mask or more text tokens"));
  int nThreads =
      threadsOption() > 0
          ? threadsOption()
          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  kernels::cpu::setNumThreads(nThreads);

  if (!profileFile.empty() && (!comm || comm->worldRank() == 0)) {
    auto timings = exec::measureLayers(plan, seed, /*repeats=*/5);
    if (!timings)
      return fail(1, llvm::toString(timings.takeError()));
    std::string device =
        llvm::formatv("cpu, {0} thread{1}", nThreads, nThreads == 1 ? "" : "s");
    if (llvm::Error e = writeProfile(profileFile, *timings, device))
      return fail(1, llvm::toString(std::move(e)));
    if (!emitJson)
      llvm::outs() << "mllm-run: wrote the measured times of "
                   << timings->size() << " layer groups to '" << profileFile
                   << "'\n";
  }

  // One run per checkpoint directory (which also finds an unwritable one
  // before the steps). Then a checkpoint killed mid-write (SIGKILL, a node
  // lost) left its temporaries; one process clears them before any rank
  // writes.
  if (!checkpointDir.empty() && (!comm || comm->worldRank() == 0)) {
    if (llvm::Error e = exec::lockCheckpointDir(checkpointDir))
      return fail(1, llvm::toString(std::move(e)));
    for (const std::string &name :
         exec::removeCheckpointLeftovers(checkpointDir))
      llvm::errs() << "mllm-run: note: removed '" << name << "' from '"
                   << checkpointDir
                   << "', left by a checkpoint that was interrupted\n";
  }
  // Written after the last step: a path that cannot be written would cost
  // the run.
  if (!dumpBatches.empty()) {
    llvm::SmallString<256> probe(dumpBatches.getValue());
    probe += ".probe-%%%%%%%%";
    int fd;
    llvm::SmallString<256> made;
    if (std::error_code ec = llvm::sys::fs::createUniqueFile(probe, fd, made))
      return fail(1, "--dump-batches '" + dumpBatches +
                         "' cannot be written (" + ec.message() +
                         "): name a file in a directory that exists and "
                         "this user can write");
    llvm::sys::Process::SafelyCloseFileDescriptor(fd);
    llvm::sys::fs::remove(made);
  }

  // Under mpirun, --backend=cuda runs whole replicas on each GPU (one
  // process per data-parallel replica, or per group of them: runOnDevice),
  // or, with the plan's world size, each rank's share of its stage (a
  // pipeline stage, a TP shard, a CP share) on its GPU
  // (runPipelineOnDevice).
  const bool deviceParallel =
      backend == "cuda" && comm && comm->worldSize() > 1;
  const bool devicePipeline =
      deviceParallel && comm->worldSize() != plan.job.dp &&
      comm->worldSize() == plan.launchRanks() && plan.schedule;
  if (deviceParallel && !devicePipeline &&
      plan.job.dp % comm->worldSize() != 0) {
    const int64_t perReplica =
        plan.launchRanks() / std::max<int64_t>(1, plan.job.dp);
    std::string how =
        perReplica > 1
            ? llvm::formatv("one process per rank (`mpirun -np {0}`), or ",
                            plan.launchRanks())
                  .str()
            : std::string();
    return fail(1,
                llvm::formatv("--backend=cuda runs this plan (dp = {0}, {1} "
                              "rank(s) per replica) with {2}whole replicas "
                              "on each GPU: a number of processes that "
                              "divides {0} (`mpirun -np {0}`: one replica "
                              "each), not {3}",
                              plan.job.dp, perReplica, how, comm->worldSize()));
  }
#ifdef MLLM_HAVE_DEVICE
  // --backend=cuda's settings, for one process or a pipeline's ranks.
  auto deviceOptions = [&]() {
    DeviceRunOptions device;
    device.total = total;
    device.json = emitJson;
    device.seed = seed;
    device.checkpointDir = checkpointDir;
    device.initFile = initFile;
    device.checkpointEvery = checkpointEvery;
    device.keepLast = keepLast;
    device.saveInitial = saveInitial;
    device.resume = resume;
    device.evalFile = evalFile;
    device.evalEvery = evalEvery;
    device.generateFile = generateFile;
    device.maxTokens = maxTokens;
    device.keyCache = !noKeyCache;
    device.strictData = strictData;
    device.tokenizer = tokenizerModel;
    device.traceFile = traceFile;
    device.dataFile = dataFile;
    device.timeout =
        std::chrono::milliseconds(static_cast<int64_t>(timeoutSeconds * 1e3));
    device.registerAttention = attentionKernel == "registers";
    return device;
  };
#endif
  // A one-process run (on either backend) compiles its own program.
  auto compileOneProcess = [&]() -> llvm::Error {
#ifdef MLLM_HAVE_JIT
    if (!stepFunctions.empty())
      return llvm::createStringError(
          llvm::inconvertibleErrorCode(),
          "--step-functions holds the programs of a parallel run's ranks "
          "(one process per rank of the plan, under mpirun or srun); a "
          "one-process run, or one of whole replicas, compiles its own "
          "program");
    if (!interpret)
      useCompiledSteps(context, emitJson);
#endif
    return llvm::Error::success();
  };
#ifdef MLLM_HAVE_MPI
  // The settings of a run over ranks, CPU or device.
  auto runOptions = [&]() {
    RunOptions run;
    run.steps = total;
    run.seed = seed;
    run.threads = nThreads;
    run.checkpointDir = checkpointDir;
    run.checkpointEvery = checkpointEvery;
    run.keepLast = keepLast;
    run.resume = resume;
    run.saveInitial = saveInitial;
    run.json = emitJson;
    run.initFile = initFile;
    run.traceFile = traceFile;
    run.dataFile = dataFile;
    run.strictData = strictData;
    run.tokenizer = tokenizerModel;
    run.dataThreads = dataThreads;
    run.evalFile = evalFile;
    run.evalEvery = evalEvery;
    run.generateFile = generateFile;
    run.maxTokens = maxTokens;
    run.keyCache = !noKeyCache;
    run.checkMemoryPlan = checkMemoryPlan;
    return run;
  };
  // The device ranks compare their options as the CPU ranks do
  // (runParallel), before anything waits on a peer. Returns the exit code.
  [[maybe_unused]] auto agreeAcrossRanks = [&]() -> int {
    std::vector<int64_t> everyone(static_cast<size_t>(comm->worldSize()));
    std::iota(everyone.begin(), everyone.end(), 0);
    auto world = comm->group(everyone);
    llvm::Error agreed =
        world ? agreeOnOptions(runOptions(), **world) : world.takeError();
    if (!agreed)
      return 0;
    return fail(1, "rank " + std::to_string(comm->worldRank()) + ": " +
                       llvm::toString(std::move(agreed)));
  };
#endif
#ifdef MLLM_HAVE_DEVICE_PIPELINE
  if (devicePipeline) {
    if (!dumpBatches.empty())
      return fail(1, "--dump-batches is for one-process runs");
#ifdef MLLM_HAVE_JIT
    if (!interpret)
      useCompiledSteps(context, emitJson, stepFunctions);
#endif
    RunOptions run = runOptions();
    if (int rc = agreeAcrossRanks())
      return rc;
    return runPipelineOnDevice(plan, deviceOptions(), *comm,
                               rankData(run, comm->worldRank()));
  }
#endif
#ifdef MLLM_HAVE_MPI
  if (comm && comm->worldSize() > 1 && !deviceParallel) {
    if (!dumpBatches.empty())
      return fail(1, "--dump-batches is for one-process runs");
    RunOptions run = runOptions();
    if (resume && checkpointDir.empty())
      return fail(1, "--resume needs --checkpoint-dir");
    if (!injectFault.empty()) {
      auto [r, a] = llvm::StringRef(injectFault).split(':');
      if (r.getAsInteger(10, run.faultRank) ||
          a.getAsInteger(10, run.faultAction))
        return fail(1, "--inject-fault takes RANK:ACTION");
    }
#ifdef MLLM_HAVE_JIT
    if (!interpret)
      useCompiledSteps(context, emitJson, stepFunctions);
#endif
    return runParallel(plan, *comm, run);
  }
#endif
  if (!traceFile.empty())
    return fail(1, deviceParallel
                       ? "--trace with --backend=cuda records the ranks of a "
                         "pipeline (one process per rank of the plan); leave "
                         "it out with one process per replica"
                       : "--trace records the ranks of a parallel run (start "
                         "it with mpirun or srun); mllm-sim --trace shows the "
                         "plan's predicted iteration");

  // A refusal points at its part (or the data block) of the spec when
  // there is one; else the error is said after `fallback`. `prefix` names
  // the option whose file it concerns.
  auto refuse = [&](llvm::Error error, const std::string &prefix,
                    const std::string &fallback) {
    std::string message;
    mlir::Operation *at = nullptr;
    llvm::handleAllErrors(
        std::move(error),
        [&](const exec::RefusalError &e) {
          message = e.message;
          if (module && e.part == exec::RefusalError::kDataBlock)
            for (auto d : module->getOps<DataOp>())
              at = d;
          else if (module && !e.part.empty())
            for (auto m : module->getOps<ModelOp>())
              at = mlir::SymbolTable::lookupSymbolIn(m, e.part);
        },
        [&](const llvm::ErrorInfoBase &e) { message = e.message(); });
    if (at) {
      at->emitError(prefix + message);
      return 1;
    }
    return fail(1, fallback + prefix + message);
  };
  auto model = exec::Model::build(plan, seed);
  if (!model)
    return refuse(model.takeError(), "", inputFile + ": ");
  exec::SyntheticData synthetic(**model, seed);
  std::unique_ptr<exec::ManifestData> manifest;
  if (!dataFile.empty()) {
    RunOptions run;
    run.seed = seed;
    run.strictData = strictData;
    run.tokenizer = tokenizerModel;
    auto opened = exec::ManifestData::open(**model, dataFile, dataOptions(run),
                                           dataThreads);
    if (!opened)
      return refuse(opened.takeError(), "", "");
    manifest = std::move(*opened);
    // Whole replicas on several GPUs each read it; rank 0 reports.
    if (!comm || comm->worldRank() == 0)
      reportData(dataFile, manifest->dataSet(), emitJson);
  }
  exec::DataSource &source =
      manifest ? static_cast<exec::DataSource &>(*manifest) : synthetic;
  exec::RecordingData recording(**model, source);
  exec::DataSource &data =
      dumpBatches.empty() ? source : static_cast<exec::DataSource &>(recording);
#ifdef MLLM_HAVE_DEVICE
  if (backend == "cuda") {
    if (!dumpBatches.empty() && deviceParallel)
      return fail(1, "--dump-batches is for one-process runs");
    if (llvm::Error e = compileOneProcess())
      return fail(1, llvm::toString(std::move(e)));
#ifdef MLLM_HAVE_MPI
    if (deviceParallel)
      if (int rc = agreeAcrossRanks())
        return rc;
#endif
    int rc = runOnDevice(**model, data, deviceOptions(),
                         deviceParallel ? comm : nullptr);
    if (manifest)
      LateFailures(dataFile, emitJson,
                   deviceParallel
                       ? "rank " + std::to_string(comm->worldRank()) + ": "
                       : "")
          .finish(&manifest->dataSet());
    if (rc == 0 && !dumpBatches.empty())
      if (llvm::Error e = recording.write(dumpBatches))
        return fail(1, llvm::toString(std::move(e)));
    return rc;
  }
#endif
  exec::Trainer trainer(**model, data, seed);
  if (llvm::Error e = compileOneProcess())
    return fail(1, llvm::toString(std::move(e)));

  if (!initFile.empty()) {
    std::vector<std::string> unused, missing;
    if (llvm::Error e =
            exec::initFromWeights(initFile, (*model)->params, unused, missing))
      return fail(1, llvm::toString(std::move(e)));
    reportInit(plan, initFile, unused, missing, emitJson);
  }
  if (resume) {
    if (checkpointDir.empty())
      return fail(1, "--resume needs --checkpoint-dir");
    std::string path;
    if (llvm::Error e = loadNewestCheckpoint(
            checkpointDir,
            [&](llvm::StringRef newest) { return trainer.load(newest); }, path))
      return fail(1, llvm::toString(std::move(e)));
    reportResume(plan, path, trainer.stepsDone(), trainer.loadedOtherPlan(),
                 seed, total, emitJson);
  }
  std::unique_ptr<exec::Evaluator> evaluator;
  if (!evalFile.empty()) {
    RunOptions run;
    run.seed = seed;
    run.strictData = strictData;
    run.tokenizer = tokenizerModel;
    auto opened = exec::Evaluator::open(**model, evalFile, dataOptions(run));
    if (!opened)
      return refuse(opened.takeError(), "--eval: ", "");
    evaluator = std::move(*opened);
    reportHeldOut("eval", evalFile, evaluator->dataSet(), emitJson);
  }
  std::unique_ptr<exec::Generator> generator;
  if (!generateFile.empty()) {
    RunOptions run;
    run.seed = seed;
    run.strictData = strictData;
    run.tokenizer = tokenizerModel;
    auto opened =
        exec::Generator::open(**model, generateFile, dataOptions(run));
    if (!opened)
      return refuse(opened.takeError(), "--generate: ", "");
    generator = std::move(*opened);
  }
  LateFailures evalLate(evalFile, emitJson, "", /*heldOut=*/true);
  auto evaluate = [&]() -> llvm::Error {
    auto stats = evaluator->run();
    if (!stats)
      return stats.takeError();
    stats->step = trainer.stepsDone();
    reportEval(*stats, emitJson);
    evalLate.check(&evaluator->dataSet());
    return llvm::Error::success();
  };
  if (!checkpointDir.empty())
    if (std::error_code ec = llvm::sys::fs::create_directories(checkpointDir))
      return fail(1, "cannot create '" + checkpointDir + "': " + ec.message());

  auto checkpoint = [&]() -> llvm::Error {
    llvm::SmallString<256> path(checkpointDir);
    llvm::sys::path::append(path, exec::checkpointName(trainer.stepsDone(),
                                                       /*sharded=*/false));
    const auto started = std::chrono::steady_clock::now();
    if (llvm::Error e = trainer.save(path))
      return e;
    finishCheckpoint(checkpointDir, trainer.stepsDone(), /*sharded=*/false,
                     keepLast, started, emitJson);
    return llvm::Error::success();
  };

  Progress progress(plan, **model, total, nThreads, emitJson);
  progress.start(trainer.stepsDone());
  // After the header: a run's events start with `start`.
  if (saveInitial && !checkpointDir.empty() && trainer.stepsDone() == 0)
    if (llvm::Error e = checkpoint())
      return fail(1, llvm::toString(std::move(e)));
  LateFailures late(dataFile, emitJson);
  const runtime::data::DataSet *dataSet =
      manifest ? &manifest->dataSet() : nullptr;
  // Evaluated inside the loop when it ran a step; else once after it.
  bool trained = trainer.stepsDone() < total;
  installInterruptHandler();
  while (trainer.stepsDone() < total) {
    auto stats = trainer.step();
    if (!stats)
      return fail(1, llvm::toString(stats.takeError()));
    progress.step(*stats);
    if (llvm::Error e = checkDiverged(*stats))
      return fail(1, llvm::toString(std::move(e)));
    late.check(dataSet);
    const int64_t done = trainer.stepsDone();
    if (!checkpointDir.empty() && dueAfter(done, total, checkpointEvery))
      if (llvm::Error e = checkpoint())
        return fail(1, llvm::toString(std::move(e)));
    if (evaluator && dueAfter(done, total, evalEvery))
      if (llvm::Error e = evaluate())
        return fail(1, llvm::toString(std::move(e)));
    if (interrupts && done < total) {
      std::string saved = "; no --checkpoint-dir, so its steps are not kept";
      if (!checkpointDir.empty()) {
        if (!dueAfter(done, total, checkpointEvery))
          if (llvm::Error e = checkpoint())
            return fail(1, llvm::toString(std::move(e)));
        saved = "; its checkpoint is in '" + checkpointDir.getValue() +
                "': continue with --resume";
      }
      llvm::outs().flush();
      llvm::errs() << "mllm-run: interrupted after step " +
                          std::to_string(done) + " of " +
                          std::to_string(total) + saved + "\n";
      return 128 + interruptSignal;
    }
  }
  // Past the loop nothing would look at a first signal: any stops at once.
  interrupts = 1;
  progress.finish();
  late.finish(dataSet);
  if (evaluator && trainer.stepsDone() >= total && !trained)
    if (llvm::Error e = evaluate())
      return fail(1, llvm::toString(std::move(e)));
  if (generator) {
    exec::CPUNextToken next(**model, /*cacheKeys=*/!noKeyCache);
    if (llvm::Error e =
            generate(*generator, generateFile, maxTokens, emitJson, next))
      return fail(1, "--generate: " + llvm::toString(std::move(e)));
  }
  if (!dumpBatches.empty())
    if (llvm::Error e = recording.write(dumpBatches))
      return fail(1, llvm::toString(std::move(e)));
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  DriverOptions options(category);
  adoptThreadsOption();
  hideUnrelatedOptions(category, llvm::ArrayRef<const char *>(argv, argc));
  setVersionPrinter("mllm-run");
  if (!parseCommandLine(
          argc, argv,
          "mllm-run - train the model of a plan on the CPU, or on a GPU with "
          "--backend=cuda\n\n"
          "  mllm-run spec.mllm                 compile and train (one "
          "process)\n"
          "  mllm-run plan.yaml --steps 100     train a plan from mllmc "
          "--emit=plan\n"
          "  mllm-run spec.mllm --checkpoint-dir ckpt [--resume]\n"
          "  mllm-run spec.mllm --json          one JSON object per step\n"
          "  mpirun -np N mllm-run plan.yaml    one rank per GPU of the "
          "plan\n\n"
          "Exit status: 0 ok, 1 error in the input, 2 internal error.\n"))
    return 1;
  if (!checkRepeatedOptions(category, "mllm-run"))
    return 1;
  if (int rc = checkNumbers())
    return rc;
  if (int rc = checkCombinations())
    return rc;
  if (!checkProfile(options, "mllm-run"))
    return 1;
  if (int rc = checkOutputs(options))
    return rc;
  // A named pipe blocks the read until a writer opens it: said, so that a
  // run waiting for one does not look hung (a shell's <(...) has its
  // writer already).
  for (const cl::opt<std::string> *o : {&dataFile, &evalFile, &generateFile}) {
    llvm::sys::fs::file_status status;
    llvm::StringRef path = o->getValue();
    if (!path.empty() && !path.starts_with("/dev/fd/") &&
        !path.starts_with("/proc/") && !llvm::sys::fs::status(path, status) &&
        status.type() == llvm::sys::fs::file_type::fifo_file)
      llvm::errs() << "mllm-run: note: --" + o->ArgStr + " '" + path +
                          "' is a named pipe: reading it waits until a "
                          "writer opens it\n";
  }
  if (attentionKernel != "staged" && attentionKernel != "registers")
    return fail(1, "--attention-kernel takes staged or registers, not '" +
                       attentionKernel + "'");
  if (attentionKernel.getNumOccurrences() && backend != "cuda")
    return fail(1, "--attention-kernel picks the CUDA backend's attention "
                   "kernels: add --backend=cuda");
  if (backend != "cpu") {
    if (backend != "cuda")
      return fail(1, "--backend takes cpu or cuda, not '" + backend + "'");
#ifdef MLLM_HAVE_CUDA_BACKEND
    if (llvm::Error e = runtime::checkCudaBackend())
      return fail(1, llvm::toString(std::move(e)));
#ifndef MLLM_HAVE_DEVICE
    return fail(1, "--backend=cuda: mllm-run was built without the device "
                   "executor");
#endif
#else
    return fail(1, "--backend=cuda: mllm-run was built without CUDA");
#endif
  }
  registerAllMllmPasses();
  registerAllSchedPasses();
  mlir::DialectRegistry registry;
  registerAllMllmDialects(registry);
  registerSchedDialect(registry);
  mlir::MLIRContext context(registry);
  context.loadAllAvailableDialects();
  context.printOpOnDiagnostic(false);
  std::unique_ptr<Comm> comm;
#ifdef MLLM_HAVE_MPI
  // Started by mpirun/srun: join the world (a world of one rank is the
  // one-process run).
  if (launchedByLauncher()) {
    auto world = initMPI(
        &argc, &argv,
        std::chrono::milliseconds(static_cast<int64_t>(timeoutSeconds * 1e3)));
    if (!world)
      return fail(2, llvm::toString(world.takeError()));
    comm = std::move(*world);
  }
#endif
  // The spec's diagnostics count the steps this run trains.
  options.trainSteps = stepsFromCommandLine();
  int rc = runMain(context, options, comm.get());
#ifdef MLLM_HAVE_MPI
  // A device rank that failed ends the job: the others would wait for it
  // in NCCL until the deadline (the CPU ranks abort on their own), unless
  // every rank knows of the failure and ends with it.
  if (rc != 0 && backend == "cuda" && comm && comm->worldSize() > 1 &&
      !failureAgreed())
    abortMPI(rc);
#endif
  return finishStandardOutput("mllm-run", rc);
}
