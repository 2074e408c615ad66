//===- DeviceRun.cpp - mllm-run --backend=cuda ----------------------------===//
#include "DeviceRun.h"
#include "EvalGenerate.h"
#include "Report.h"

#ifdef MLLM_HAVE_MPI
#include "Parallel.h"
#include "mllm/runtime/MPIComm.h"
#endif
#ifdef MLLM_HAVE_NCCL_WORLD
#include "NCCLReducer.h"
#endif
#include "mllm/runtime/device/DeviceTrainer.h"
#include "mllm/runtime/exec/Checkpoint.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <map>
#include <numeric>

using namespace mllm;
using namespace mllm::runtime;

int mllm::runOnDevice(exec::Model &model, exec::DataSource &data,
                      const DeviceRunOptions &options, Comm *world) {
  const bool parallel = world && world->worldSize() > 1;
  const int rank = parallel ? world->worldRank() : 0;
  // Rank 0 reports and writes the checkpoints (every rank holds the same
  // weights); a failing rank ends the job, since the others would wait for
  // it in the next collective until the deadline.
  const bool reports = rank == 0;
  auto fail = [&](const llvm::Twine &message) {
#ifdef MLLM_HAVE_MPI
    if (parallel)
      abortJob(llvm::make_error<exec::RankError>(rank, message.str()));
#endif
    llvm::errs() << "mllm-run: error: " + message.str() + "\n";
    return 1;
  };
  // The processes' host group: a step that some may fail alone (a file
  // this one cannot read) ends every process with 1 once all know, as on
  // the CPU backend, instead of aborting the job.
  std::unique_ptr<Group> host;
  // Every process: the host group and the NCCL split of the gradients.
  std::vector<int64_t> everyone(
      static_cast<size_t>(parallel ? world->worldSize() : 0));
  std::iota(everyone.begin(), everyone.end(), int64_t(0));
#ifdef MLLM_HAVE_MPI
  if (parallel) {
    // Stopped by the launcher (another process failed) or interrupted, a
    // process says what it was doing.
    installStopHandler(rank);
    auto group = world->group(everyone);
    if (!group)
      return fail(llvm::toString(group.takeError()));
    host = std::move(*group);
  }
#endif
  // Returns the exit status when `e` (this process's, or another's) ends
  // the run, else 0.
  auto agreed = [&](llvm::Error e) -> int {
#ifdef MLLM_HAVE_MPI
    if (parallel)
      return agreeOnSuccess(*host, rank, std::move(e));
#endif
    return e ? fail(llvm::toString(std::move(e))) : 0;
  };
  if (!options.initFile.empty()) {
    std::vector<std::string> unused, missing;
    if (int rc = agreed(exec::initFromWeights(options.initFile, model.params,
                                              unused, missing)))
      return rc;
    if (reports)
      reportInit(model.plan(), options.initFile, unused, missing, options.json);
  }
  // Data parallelism: NCCL bootstrapped over the launcher's world picks
  // this rank's GPU, sums the gradients; the world sums the loss.
  device::DataParallel dp;
#ifdef MLLM_HAVE_NCCL_WORLD
  std::unique_ptr<cuda::NCCLWorld> nccl;
  std::unique_ptr<cuda::NCCLGroup> gradients;
  std::unique_ptr<NCCLReducer> reducer;
#endif
  if (parallel) {
#ifdef MLLM_HAVE_NCCL_WORLD
    cuda::NCCLOptions ncclOptions;
    ncclOptions.timeout = options.timeout;
    auto made = cuda::NCCLWorld::create(*world, ncclOptions);
    if (!made)
      return fail(llvm::toString(made.takeError()));
    nccl = std::move(*made);
    auto split = nccl->split(everyone);
    if (!split)
      return fail(llvm::toString(split.takeError()));
    gradients = std::move(*split);
    dp.index = rank;
    dp.processes = world->worldSize();
    reducer = std::make_unique<NCCLReducer>(*gradients);
    dp.gradients = reducer.get();
    dp.host = host.get();
#else
    return fail("--backend=cuda under mpirun needs NCCL, and this mllm-run "
                "was built without it (install libnccl-dev and rebuild)");
#endif
  }
  auto made = device::DeviceTrainer::create(model, data, dp);
  if (!made)
    return fail(llvm::toString(made.takeError()));
  device::DeviceTrainer &trainer = **made;
  if (options.registerAttention)
    trainer.setAttentionKernel(kernels::cuda::AttentionKernel::Registers);
  const std::string &dir = options.checkpointDir;
  if (options.resume) {
    if (dir.empty())
      return fail("--resume needs --checkpoint-dir");
    std::string path;
    if (int rc = agreed(loadNewestCheckpoint(
            dir, [&](llvm::StringRef newest) { return trainer.load(newest); },
            path)))
      return rc;
    if (reports)
      reportResume(model.plan(), path, trainer.stepsDone(),
                   trainer.loadedOtherPlan(), options.seed, options.total,
                   options.json);
  }
  if (!dir.empty() && reports)
    if (std::error_code ec = llvm::sys::fs::create_directories(dir))
      return fail("cannot create '" + dir + "': " + ec.message());
  auto checkpoint = [&]() -> llvm::Error {
    llvm::SmallString<256> path(dir);
    llvm::sys::path::append(path, exec::checkpointName(trainer.stepsDone(),
                                                       /*sharded=*/false));
    const auto started = std::chrono::steady_clock::now();
    if (llvm::Error e = trainer.save(path, options.seed))
      return e;
    if (reports)
      finishCheckpoint(dir, trainer.stepsDone(), /*sharded=*/false,
                       options.keepLast, started, options.json);
    return llvm::Error::success();
  };
  // --eval: on the device, over the batches the CPU backend evaluates.
  std::unique_ptr<exec::EvalSet> heldOut;
  if (!options.evalFile.empty()) {
    auto opened =
        exec::EvalSet::open(model, options.evalFile, heldOutOptions(options));
    if (int rc = agreed(optionError("--eval", opened)))
      return rc;
    heldOut = std::move(*opened);
    if (reports)
      reportHeldOut("eval", options.evalFile, heldOut->dataSet(), options.json);
  }
  // --generate's prompts, read before any step.
  std::unique_ptr<exec::Generator> generator;
  if (!options.generateFile.empty()) {
    auto opened = exec::Generator::open(model, options.generateFile,
                                        heldOutOptions(options));
    if (int rc = agreed(optionError("--generate", opened)))
      return rc;
    generator = std::move(*opened);
  }
  // Collective over data-parallel processes: each evaluates its share.
  LateFailures evalLate(options.evalFile, options.json,
                        parallel ? "rank " + std::to_string(rank) + ": " : "",
                        /*heldOut=*/true);
  auto evaluate = [&]() -> llvm::Error {
    auto stats = trainer.evaluate(*heldOut);
    if (!stats)
      return stats.takeError();
    if (reports)
      reportEval(*stats, options.json);
    evalLate.check(&heldOut->dataSet());
    return llvm::Error::success();
  };
  Progress progress(model.plan(), model, options.total, /*threads=*/1,
                    options.json, /*ranks=*/1, /*device=*/true);
  if (reports)
    progress.start(trainer.stepsDone());
  // After the header: a run's events start with `start`.
  if (options.saveInitial && !dir.empty() && reports &&
      trainer.stepsDone() == 0)
    if (llvm::Error e = checkpoint())
      return fail(llvm::toString(std::move(e)));
  const bool trained = trainer.stepsDone() < options.total;
  while (trainer.stepsDone() < options.total) {
    auto stats = trainer.step();
    if (!stats)
      return fail(llvm::toString(stats.takeError()));
    if (reports)
      progress.step(*stats);
    // Every rank has the same loss: all stop here, rank 0 says why, and
    // the others wait for it to have said so, then all end with 1.
    if (stopIfDiverged(*stats, reports)) {
#ifdef MLLM_HAVE_MPI
      if (parallel) {
        noteAgreedFailure();
        llvm::consumeError(world->barrier());
      }
#endif
      return 1;
    }
    const int64_t done = trainer.stepsDone();
    if (!dir.empty() && reports &&
        dueAfter(done, options.total, options.checkpointEvery))
      if (llvm::Error e = checkpoint())
        return fail(llvm::toString(std::move(e)));
    if (heldOut && dueAfter(done, options.total, options.evalEvery))
      if (llvm::Error e = evaluate())
        return fail(llvm::toString(std::move(e)));
  }
  if (heldOut && !trained)
    if (llvm::Error e = evaluate())
      return fail(llvm::toString(std::move(e)));
  if (reports)
    progress.finish();
  // Collective over the processes, each a sample at once; rank 0 prints.
  if (generator) {
    std::unique_ptr<exec::NextToken> next = trainer.nextToken(options.keyCache);
    if (llvm::Error e =
            generate(*generator, options.generateFile, options.maxTokens,
                     options.json, *next, reports))
      return fail("--generate: " + llvm::toString(std::move(e)));
  }
  if (!reports)
    return 0;
  // The arena the steps ran in: planned and measured (equal once a step
  // ran), and what each kind of buffer takes.
  const sched::MemoryPlan &memory = trainer.memoryPlan();
  std::map<std::string, int64_t> kinds;
  for (const sched::Buffer &b : memory.buffers)
    kinds.emplace(sched::bufferKindName(b.kind), b.bytes);
  if (options.json) {
    llvm::json::Object arena{{"event", "arena"},
                             {"arena_bytes", memory.arenaBytes},
                             {"measured_bytes", trainer.measuredArenaBytes()}};
    for (const auto &[kind, bytes] : kinds)
      arena[kind] = bytes;
    llvm::outs() << llvm::json::Value(std::move(arena)) << "\n";
    return 0;
  }
  auto mib = [](int64_t bytes) { return bytes / (1024.0 * 1024.0); };
  llvm::outs() << llvm::format("device arena: %.1f MiB planned, %.1f MiB "
                               "used at the peak;",
                               mib(memory.arenaBytes),
                               mib(trainer.measuredArenaBytes()));
  for (const auto &[kind, bytes] : kinds)
    llvm::outs() << llvm::format(" %s %.1f", kind.c_str(), mib(bytes));
  llvm::outs() << " (MiB; saved and workspace: per microbatch and action)\n";
  return 0;
}
