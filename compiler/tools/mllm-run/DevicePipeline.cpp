//===- DevicePipeline.cpp - mllm-run --backend=cuda across stages ---------===//
//
// One rank of a pipeline on its GPU (device::DeviceRankRunner): NCCL
// bootstrapped over the launcher's world, a channel per directed pair of
// stage ranks, the per-pair order of the messages checked at load and at
// every post, the replicas' and the tied head's sums, the TP shards'
// all-reduces and the CP ranks' K/V exchange on NCCL groups.
//
//===----------------------------------------------------------------------===//
#include "DeviceRun.h"
#include "EvalGenerate.h"
#include "NCCLReducer.h"
#include "Parallel.h"
#include "Report.h"

#include "mllm/runtime/MPIComm.h"
#include "mllm/runtime/cuda/PairOrder.h"
#include "mllm/runtime/device/DeviceRankRunner.h"
#include "mllm/runtime/exec/Checkpoint.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include <numeric>

using namespace mllm;
using namespace mllm::runtime;

int mllm::runPipelineOnDevice(const Plan &plan, const DeviceRunOptions &options,
                              Comm &world,
                              const exec::RankRunner::DataFactory &makeData) {
  const int rank = world.worldRank();
  const bool reports = rank == 0;
  // Stopped by the launcher (another rank failed) or interrupted, a rank
  // says what it was doing, as the CPU backend's ranks do.
  installStopHandler(rank);
  // Errors of the runner name their rank already.
  const std::string me = "rank " + std::to_string(rank) + ": ";
  auto fail = [&](const llvm::Twine &message) -> int {
    std::string text = message.str();
    if (llvm::StringRef(text).starts_with(me))
      text = text.substr(me.size());
    abortJob(llvm::make_error<exec::RankError>(rank, text));
  };
  if (options.resume && options.checkpointDir.empty())
    return fail("--resume needs --checkpoint-dir");
  std::vector<int64_t> everyone(static_cast<size_t>(world.worldSize()));
  std::iota(everyone.begin(), everyone.end(), int64_t(0));
  auto all = world.group(everyone);
  if (!all)
    return fail(llvm::toString(all.takeError()));
  // Every rank gives the same answer (the same plan, the world's size)
  // before any rank waits for another.
  if (llvm::Error e = exec::agreeOnPlan(plan, **all, rank)) {
    llvm::errs() << "mllm-run: error: " + me + llvm::toString(std::move(e)) +
                        "\n";
    noteAgreedFailure();
    return 1;
  }
  auto place = device::placeRank(plan, rank);
  if (!place)
    return fail(llvm::toString(place.takeError()));
  cuda::NCCLOptions ncclOptions;
  ncclOptions.timeout = options.timeout;
  auto nccl = cuda::NCCLWorld::create(world, ncclOptions);
  if (!nccl)
    return fail(llvm::toString(nccl.takeError()));
  cuda::NCCLWorld &n = **nccl;
  // Point-to-point: a channel per direction of every pair (the per-pair
  // order is checked once the runner has sized the messages).
  if (llvm::Error e = n.connectPeers(place->peers))
    return fail(llvm::toString(std::move(e)));
  // The groups, collective over the world in one order on every rank: the
  // stages' replicas (a partition of the ranks), the tied pairs, then the
  // stages' TP groups and CP groups (partitions).
  auto replicas = n.split(place->replicas);
  if (!replicas)
    return fail(llvm::toString(replicas.takeError()));
  auto tied = n.split(place->tied);
  if (!tied)
    return fail(llvm::toString(tied.takeError()));
  auto shards = n.split(place->shards);
  if (!shards)
    return fail(llvm::toString(shards.takeError()));
  auto contexts = n.split(place->contexts);
  if (!contexts)
    return fail(llvm::toString(contexts.takeError()));
  device::RankGroups groups;
  groups.messages = &n;
  groups.world = all->get();
  std::unique_ptr<Group> replicaHost;
  std::unique_ptr<NCCLReducer> reducer;
  if (place->replicas.size() > 1) {
    auto host = world.group(place->replicas);
    if (!host)
      return fail(llvm::toString(host.takeError()));
    replicaHost = std::move(*host);
    reducer = std::make_unique<NCCLReducer>(**replicas);
    groups.replicas = replicaHost.get();
    groups.gradients = reducer.get();
  }
  if (!place->tied.empty())
    groups.tied = tied->get();
  // A TP or CP group: its collectives on the NCCL split, its ranks on the
  // host too.
  struct Collective {
    std::unique_ptr<Group> host;
    std::unique_ptr<NCCLShardCollectives> device;
  };
  auto collective = [&](const std::vector<int64_t> &ranks,
                        cuda::NCCLGroup &split) -> llvm::Expected<Collective> {
    Collective c;
    if (ranks.size() <= 1)
      return std::move(c);
    auto host = world.group(ranks);
    if (!host)
      return host.takeError();
    c.host = std::move(*host);
    c.device = std::make_unique<NCCLShardCollectives>(split);
    return std::move(c);
  };
  auto tpGroup = collective(place->shards, **shards);
  if (!tpGroup)
    return fail(llvm::toString(tpGroup.takeError()));
  auto cpGroup = collective(place->contexts, **contexts);
  if (!cpGroup)
    return fail(llvm::toString(cpGroup.takeError()));
  groups.shards = tpGroup->device.get();
  groups.shardsHost = tpGroup->host.get();
  groups.contexts = cpGroup->device.get();
  groups.contextsHost = cpGroup->host.get();
  auto made =
      device::DeviceRankRunner::create(plan, options.seed, groups, makeData);
  if (!made)
    return fail(llvm::toString(made.takeError()));
  device::DeviceRankRunner &runner = **made;
  if (options.registerAttention)
    runner.setAttentionKernel(kernels::cuda::AttentionKernel::Registers);
  // The per-pair order every rank posts in, with the sizes both ends of a
  // message give it, checked over the world before the first message.
  const std::vector<cuda::P2PMessage> mine = runner.messages();
  if (llvm::Error e = cuda::exchangeAndCheckPairOrder(world, mine))
    return fail(llvm::toString(std::move(e)));
  // Weights from a file or a checkpoint, as the CPU backend's ranks read
  // them (every rank reads its own; a shared file system). A rank that
  // cannot load its share says so, and every rank ends with 1, as on the
  // CPU backend.
  if (!options.initFile.empty()) {
    std::vector<std::string> unused, missing;
    llvm::Error e =
        initRankShare(options.initFile, runner.params(), runner.model().params,
                      reports, unused, missing);
    if (!e)
      e = runner.uploadParams();
    if (int rc = agreeOnSuccess(**all, rank, std::move(e)))
      return rc;
    if (reports)
      reportInit(plan, options.initFile, unused, missing, options.json);
  }
  const std::string &dir = options.checkpointDir;
  if (options.resume) {
    std::string path;
    if (int rc = agreeOnSuccess(
            **all, rank,
            loadNewestCheckpoint(
                dir,
                [&](llvm::StringRef newest) { return runner.load(newest); },
                path)))
      return rc;
    if (reports)
      reportResume(plan, path, runner.stepsDone(), runner.loadedOtherPlan(),
                   options.seed, options.total, options.json);
  }
  // Every rank, also one with no step left, compares its step first.
  if (llvm::Error e = runner.agreeOnStart())
    return fail(llvm::toString(std::move(e)));
  if (!dir.empty() && reports)
    if (std::error_code ec = llvm::sys::fs::create_directories(dir))
      return fail("cannot create '" + dir + "': " + ec.message());
  auto checkpoint = [&]() -> llvm::Error {
    const auto started = std::chrono::steady_clock::now();
    if (llvm::Error e = runner.save(dir, options.seed))
      return e;
    if (reports)
      finishCheckpoint(dir, runner.stepsDone(), /*sharded=*/true,
                       options.keepLast, started, options.json);
    return llvm::Error::success();
  };
  // --eval: every rank reads the held-out set (rank 0 reports it) and
  // runs its share; each round's messages are a subsequence of `mine`.
  std::unique_ptr<exec::EvalSet> heldOut;
  if (!options.evalFile.empty()) {
    auto opened = exec::EvalSet::open(runner.model(), options.evalFile,
                                      heldOutOptions(options));
    if (int rc = agreeOnSuccess(**all, rank, optionError("--eval", opened)))
      return rc;
    heldOut = std::move(*opened);
    if (reports)
      reportHeldOut("eval", options.evalFile, heldOut->dataSet(), options.json);
  }
  // --generate's prompts, read before any step.
  std::unique_ptr<exec::Generator> generator;
  if (!options.generateFile.empty()) {
    auto opened = exec::Generator::open(runner.model(), options.generateFile,
                                        heldOutOptions(options));
    if (int rc = agreeOnSuccess(**all, rank, optionError("--generate", opened)))
      return rc;
    generator = std::move(*opened);
  }
  LateFailures evalLate(options.evalFile, options.json, me, /*heldOut=*/true);
  auto evaluate = [&]() -> llvm::Error {
    auto stats = runner.evaluate(
        *heldOut, [&](llvm::ArrayRef<cuda::P2PMessage> messages) {
          n.expectMessages(messages);
        });
    if (!stats)
      return stats.takeError();
    if (reports)
      reportEval(*stats, options.json);
    evalLate.check(&heldOut->dataSet());
    return llvm::Error::success();
  };
  Progress progress(plan, runner.model(), options.total, /*threads=*/1,
                    options.json, world.worldSize(), /*device=*/true);
  if (reports)
    progress.start(runner.stepsDone());
  // After the header: a run's events start with `start`.
  if (options.saveInitial && !dir.empty() && runner.stepsDone() == 0)
    if (llvm::Error e = checkpoint())
      return fail(llvm::toString(std::move(e)));
  bool trained = false;
  while (runner.stepsDone() < options.total) {
    trained = true;
    // Each iteration posts the same messages again.
    n.expectMessages(mine);
    const bool traced =
        !options.traceFile.empty() && runner.stepsDone() + 1 == options.total;
    if (traced)
      runner.traceNextStep();
    auto stats = runner.step();
    if (!stats)
      return fail(llvm::toString(stats.takeError()));
    if (traced) {
      auto events = runner.gatherTrace();
      if (!events)
        return fail(llvm::toString(events.takeError()));
      if (reports)
        if (llvm::Error e = writeTrace(plan, *events, options.traceFile))
          return fail(llvm::toString(std::move(e)));
    }
    if (reports)
      progress.step(*stats);
    // Every rank has the same loss: all stop here, rank 0 says why, and
    // the others wait for it to have said so, then all end with 1.
    if (stopIfDiverged(*stats, reports)) {
      noteAgreedFailure();
      llvm::consumeError(world.barrier());
      return 1;
    }
    const int64_t done = runner.stepsDone();
    if (!dir.empty() && dueAfter(done, options.total, options.checkpointEvery))
      if (llvm::Error e = checkpoint())
        return fail(llvm::toString(std::move(e)));
    if (heldOut && dueAfter(done, options.total, options.evalEvery))
      if (llvm::Error e = evaluate())
        return fail(llvm::toString(std::move(e)));
  }
  // With no step to train: the weights as they are.
  if (heldOut && !trained)
    if (llvm::Error e = evaluate())
      return fail(llvm::toString(std::move(e)));
  if (reports)
    progress.finish();
  // While the runner, which holds the data set, lives.
  LateFailures(options.dataFile, options.json, me).finish(rankDataSetRead());
  // --generate: every rank runs the same generator; rank 0 prints. Each
  // round's messages are a subsequence of `mine`, as an evaluation's.
  if (generator) {
    auto next = runner.nextToken(
        [&](llvm::ArrayRef<cuda::P2PMessage> messages) {
          n.expectMessages(messages);
        },
        options.keyCache);
    if (!next)
      return fail(llvm::toString(next.takeError()));
    if (llvm::Error e =
            generate(*generator, options.generateFile, options.maxTokens,
                     options.json, **next, reports))
      return fail(e.isA<exec::RankError>()
                      ? llvm::toString(std::move(e))
                      : "--generate: " + llvm::toString(std::move(e)));
  }
  if (!reports)
    return 0;
  const sched::MemoryPlan &memory = runner.memoryPlan();
  if (options.json) {
    llvm::outs() << llvm::json::Value(llvm::json::Object{
                        {"event", "arena"},
                        {"arena_bytes", memory.arenaBytes},
                        {"measured_bytes", runner.measuredArenaBytes()}})
                 << "\n";
    return 0;
  }
  llvm::outs() << llvm::format(
      "device arena of rank 0: %.1f MiB planned, %.1f MiB used at the peak\n",
      memory.arenaBytes / (1024.0 * 1024.0),
      runner.measuredArenaBytes() / (1024.0 * 1024.0));
  return 0;
}
