//===- DeviceTwin.cpp - the device executor on the CUDA host twin ---------===//
//
// mllm-device-twin PLAN [--steps N] [--save FILE] [--checkpoint FILE]
// [--resume FILE] [--check-grads R] [--data MANIFEST] [--bucket-bytes B]
// [--count-driver]:
// trains PLAN's model, to N steps in all, with device::DeviceTrainer
// linked against the host twin of the CUDA libraries (kernels/lib/cudahost)
// on the CPU, from the same seed and data as `mllm-run PLAN` (synthetic, or
// --data's manifest), and prints one JSON line per step in mllm-run
// --json's form, then the arena it trained in (DeviceTrainer::memoryPlan).
// --save writes the trained weights as a checkpoint's "model.*" tensors,
// --checkpoint a checkpoint (DeviceTrainer::save), --resume starts from
// one, --eval MANIFEST evaluates the trained weights (DeviceTrainer::
// evaluate). Under mpirun every process runs its share of the plan's
// data-parallel replicas (device::DataParallel, the gradients summed over
// an MPI group, which works because the twin's device memory is host
// memory) and rank 0 prints; with the plan's world size and pipeline
// stages, every process runs its rank (device::DeviceRankRunner; then
// --checkpoint names a directory for a sharded checkpoint, and the arena
// event lists every rank's planned and measured bytes too).
// test/runtime/compare_runs.py compares runs.
// Test tool: it checks the executor's logic where no GPU is; the kernels'
// own numerics are the GPU tests'.
//
//===----------------------------------------------------------------------===//
#include "mllm/kernels/cuda/HostTwin.h"
#include "mllm/runtime/PlanIO.h"
#ifdef MLLM_HAVE_MPI
#include "mllm/runtime/MPIComm.h"
#endif
#include "mllm/runtime/SafeTensors.h"
#include "mllm/runtime/cpu/Layer.h"
#include "mllm/runtime/device/DeviceRankRunner.h"
#include "mllm/runtime/device/DeviceTrainer.h"
#include "mllm/runtime/exec/Data.h"
#include "mllm/runtime/exec/Generate.h"
#include "mllm/runtime/exec/ManifestData.h"
#include "mllm/runtime/exec/Trainer.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <numeric>

using namespace mllm;
using namespace mllm::runtime;

static llvm::cl::opt<std::string> planFile(llvm::cl::Positional,
                                           llvm::cl::desc("<plan.yaml>"),
                                           llvm::cl::Required);
static llvm::cl::opt<int64_t> steps("steps", llvm::cl::desc("Steps to train"),
                                    llvm::cl::init(3));
static llvm::cl::opt<std::string>
    saveFile("save", llvm::cl::desc("Write the trained weights here"));
static llvm::cl::opt<std::string>
    checkpointFile("checkpoint",
                   llvm::cl::desc("Write a checkpoint here after training"));
static llvm::cl::opt<std::string>
    resumeFile("resume", llvm::cl::desc("Start from this checkpoint"));
static llvm::cl::opt<double> checkGrads(
    "check-grads",
    llvm::cl::desc("Instead of training: compare the first step's weight "
                   "gradients with the CPU backend's; fail when a tensor's "
                   "differ by more than this share of its norm"),
    llvm::cl::init(0));

/// Where reports go: stdout on rank 0, nowhere on the other ranks.
static llvm::raw_ostream *report = &llvm::outs();
static llvm::raw_ostream &out() { return *report; }

static llvm::cl::opt<int64_t> bucketBytes(
    "bucket-bytes",
    llvm::cl::desc("Under mpirun: post the gradients' sums in buckets of "
                   "this many bytes"),
    llvm::cl::init(int64_t(25) << 20));

static llvm::cl::opt<std::string>
    dataFile("data", llvm::cl::desc("Train on this data set's manifest "
                                    "(docs/data.md) instead of synthetic "
                                    "data, as mllm-run --data"));

static llvm::cl::opt<std::string> traceFile(
    "trace",
    llvm::cl::desc("With pipeline stages: write the last step's actions on "
                   "every rank here, one JSON object per line (rank 0)"));

static llvm::cl::opt<std::string>
    evalFile("eval", llvm::cl::desc("After training, evaluate the weights on "
                                    "this held-out manifest, as mllm-run "
                                    "--eval (DeviceTrainer::evaluate)"));

static llvm::cl::opt<std::string> generateFile(
    "generate",
    llvm::cl::desc("After training, generate greedily for every prompt of "
                   "this manifest, as mllm-run --generate "
                   "(DeviceTrainer::nextToken): one JSON object each"));
static llvm::cl::opt<int64_t>
    maxTokens("max-tokens", llvm::cl::desc("With --generate: at most so many"),
              llvm::cl::init(16));
static llvm::cl::opt<bool> noKeyCache(
    "no-kv-cache",
    llvm::cl::desc("With --generate: recompute the LLM over the whole "
                   "sequence for every token (as mllm-run --no-kv-cache)"));

static llvm::cl::opt<bool> countDriver(
    "count-driver",
    llvm::cl::desc("Run each iteration through a step driver "
                   "(exec/StepDriver.h, mllm-run's compiled step functions' "
                   "path) that runs the program's actions in order, and say "
                   "so on stderr once per iteration"));

static int fail(const llvm::Twine &message) {
  llvm::errs() << "mllm-device-twin: " << message << "\n";
  return 1;
}

namespace {
/// --count-driver: the executors' StepDriver path without a JIT.
class CountingDriver final : public exec::StepDriver {
public:
  llvm::Error runActions(exec::ProgramRunner &runner) override {
    const size_t n = runner.program().actions.size();
    for (size_t i = 0; i < n; ++i)
      if (llvm::Error e = runner.runAction(i))
        return e;
    // One write per line: the ranks share stderr.
    llvm::errs() << "mllm-device-twin: rank " + std::to_string(runner.rank()) +
                        ": the step driver ran " + runner.describe() + ": " +
                        std::to_string(n) + " actions\n";
    return llvm::Error::success();
  }
};
} // namespace

/// --check-grads: the first step's loss and weight gradients of the device
/// executor against the CPU Trainer's, from the same seed and data (the
/// CPU run's one-process program without its optimizer step). Gradients
/// are compared before AdamW, which scales every element to about lr and
/// so magnifies rounding in small gradients.
/// The data `model` trains on: --data's manifest, or synthetic data.
static llvm::Expected<std::unique_ptr<exec::DataSource>>
makeData(const exec::Model &model, uint64_t seed) {
  if (dataFile.empty())
    return std::make_unique<exec::SyntheticData>(model, seed);
  data::DataOptions options;
  options.seed = seed;
  auto opened = exec::ManifestData::open(model, dataFile, options,
                                         /*prefetchThreads=*/1);
  if (!opened)
    return opened.takeError();
  return std::unique_ptr<exec::DataSource>(std::move(*opened));
}

static int compareGradients(const Plan &plan, uint64_t seed,
                            const exec::Model &deviceModel, double loss) {
  auto cpuModel = exec::Model::build(plan, seed);
  if (!cpuModel)
    return fail(llvm::toString(cpuModel.takeError()));
  auto cpuData = makeData(**cpuModel, seed);
  if (!cpuData)
    return fail(llvm::toString(cpuData.takeError()));
  exec::Trainer cpu(**cpuModel, **cpuData, seed);
  double cpuLoss = 0;
  for (size_t i = 0; i < cpu.program().actions.size(); ++i) {
    if (cpu.program().actions[i].kind == sched::ActionKind::OptimizerStep)
      continue;
    if (llvm::Error e = cpu.runAction(i))
      return fail(llvm::toString(std::move(e)));
  }
  cpuLoss = cpu.lossSoFar();
  // A gradient that is zero in exact arithmetic (a key bias: softmax
  // ignores a shift shared by all keys) leaves only rounding on either
  // side: its difference is measured against 1e-5 of the largest gradient.
  double largest = 0;
  for (const exec::NamedParam &d : deviceModel.params)
    if (cpu::Param<float> *c = (*cpuModel)->findParam(d.name)) {
      double norm = 0;
      for (float x : c->grad.data)
        norm += static_cast<double>(x) * x;
      largest = std::max(largest, std::sqrt(norm));
    }
  const double floor = 1e-5 * largest;
  int bad = 0;
  double worst = 0;
  for (const exec::NamedParam &d : deviceModel.params) {
    cpu::Param<float> *c = (*cpuModel)->findParam(d.name);
    if (!c || c->grad.data.size() != d.param->grad.data.size())
      return fail("no CPU gradient of '" + d.name + "'");
    double diff = 0, ref = 0;
    for (size_t j = 0; j < c->grad.data.size(); ++j) {
      double x = c->grad.data[j], y = d.param->grad.data[j];
      diff += (x - y) * (x - y);
      ref += x * x;
    }
    double scale = std::max(std::sqrt(ref), floor);
    double rel = scale > 0 ? std::sqrt(diff) / scale : (diff > 0 ? 1.0 : 0.0);
    worst = std::max(worst, rel);
    if (rel > checkGrads) {
      ++bad;
      out() << "gradient of '" << d.name << "' differs by " << rel
            << " of its norm " << std::sqrt(ref) << "\n";
    }
  }
  out() << llvm::json::Value(llvm::json::Object{
               {"event", "gradients"},
               {"tensors", static_cast<int64_t>(deviceModel.params.size())},
               {"worst", worst},
               {"loss", loss},
               {"cpu_loss", cpuLoss}})
        << "\n";
  if (std::abs(loss - cpuLoss) > 1e-2 * std::abs(cpuLoss)) {
    out() << "the loss differs: " << loss << " vs " << cpuLoss << "\n";
    return 1;
  }
  return bad ? 1 : 0;
}

/// JSON has no NaN: a diverged loss is null, as in mllm-run --json.
static llvm::json::Value finiteOrNull(double x) {
  return std::isfinite(x) ? llvm::json::Value(x) : llvm::json::Value(nullptr);
}

/// One step, in mllm-run --json's form, and `waits`: the step's cudaMalloc
/// and cudaFree calls (each a wait for the whole device on a GPU, NCCL's
/// transfers in flight included; every rank's, in a parallel run).
static void printStep(const exec::StepStats &stats, double waits) {
  llvm::json::Object step{{"event", "step"},
                          {"step", stats.step},
                          {"loss", finiteOrNull(stats.loss)},
                          {"tokens", stats.tokens},
                          {"whole_device_waits", static_cast<int64_t>(waits)}};
  // Batches that brought their own CP split (real data), as mllm-run's.
  if (stats.cp.batches)
    step["cp"] = llvm::json::Object{{"batches", stats.cp.batches}};
  out() << llvm::json::Value(std::move(step)) << "\n";
}

/// --save: `model`'s weights as a checkpoint's "model.*" tensors.
static int writeWeights(const exec::Model &model) {
  SafeTensorsWriter writer;
  for (const exec::NamedParam &p : model.params)
    writer.add("model." + p.name, p.param->value.shape, p.param->value.data);
  if (llvm::Error e = writer.write(saveFile))
    return fail(llvm::toString(std::move(e)));
  return 0;
}

#ifdef MLLM_HAVE_MPI
/// Every parameter of `full` (a whole model, the same on every rank) onto
/// rank 0, each element from the first rank holding it in `mine` (a
/// tensor-parallel shard holds some): its values, or its gradient when
/// `grads`.
static llvm::Error gather(Group &world, exec::Model &full,
                          const std::vector<exec::NamedParam> &mine,
                          bool grads) {
  for (const exec::NamedParam &p : full.params) {
    std::vector<float> &into = grads ? p.param->grad.data : p.param->value.data;
    const size_t n = static_cast<size_t>(p.param->value.numel());
    // Per element: whether this rank holds it, and its value.
    std::vector<float> local(2 * n, 0.0f);
    for (const exec::NamedParam &m : mine)
      if (m.name == p.name) {
        const std::vector<float> &from =
            grads ? m.param->grad.data : m.param->value.data;
        if (from.size() != m.param->value.data.size())
          continue; // frozen: no gradient
        for (const cpu::ShardRun &r :
             cpu::shardRuns(m.param->shard, m.param->value.shape))
          for (int64_t k = 0; k < r.length; ++k) {
            local[2 * (r.full + k)] = 1;
            local[2 * (r.full + k) + 1] = from[r.local + k];
          }
      }
    std::vector<float> all(local.size() * world.size());
    if (llvm::Error e = world.allGatherBytes(
            local.data(), static_cast<int64_t>(local.size() * sizeof(float)),
            all.data()))
      return e;
    std::vector<float> values(n, 0.0f);
    std::vector<bool> found(n, false);
    bool any = false;
    for (int r = 0; r < world.size(); ++r)
      for (size_t i = 0; i < n; ++i)
        if (!found[i] && all[r * local.size() + 2 * i] != 0) {
          found[i] = any = true;
          values[i] = all[r * local.size() + 2 * i + 1];
        }
    if (any) // else frozen everywhere: no gradient
      into = std::move(values);
  }
  return llvm::Error::success();
}

/// Under mpirun with one process per rank of the plan (pipeline stages,
/// TP shards): one rank of it (device::DeviceRankRunner), messages and
/// collectives over MPI.
static int runPipeline(const Plan &plan, Comm &world) {
  const uint64_t seed = plan.train.seed;
  const int rank = world.worldRank();
  if (rank != 0)
    report = &llvm::nulls();
  std::vector<int64_t> ranks(static_cast<size_t>(world.worldSize()));
  std::iota(ranks.begin(), ranks.end(), int64_t(0));
  auto everyone = world.group(ranks);
  if (!everyone)
    return fail(llvm::toString(everyone.takeError()));
  // Every rank gives the same answer before any rank waits for another.
  if (llvm::Error e = exec::agreeOnPlan(plan, **everyone, rank))
    return fail("rank " + llvm::Twine(rank) + ": " +
                llvm::toString(std::move(e)));
  auto place = device::placeRank(plan, rank);
  if (!place)
    return fail(llvm::toString(place.takeError()));
  device::RankGroups groups;
  groups.messages = &world;
  groups.world = everyone->get();
  groups.bucketBytes = bucketBytes;
  std::unique_ptr<Group> replicas, tied;
  std::unique_ptr<device::GroupReducer> reducer;
  if (place->replicas.size() > 1) {
    auto g = world.group(place->replicas);
    if (!g)
      return fail(llvm::toString(g.takeError()));
    replicas = std::move(*g);
    reducer = std::make_unique<device::GroupReducer>(*replicas);
    groups.replicas = replicas.get();
    groups.gradients = reducer.get();
  }
  if (!place->tied.empty()) {
    auto g = world.group(place->tied);
    if (!g)
      return fail(llvm::toString(g.takeError()));
    tied = std::move(*g);
    groups.tied = tied.get();
  }
  // A TP or CP group: its ranks, and their collectives over MPI.
  struct Collective {
    std::unique_ptr<Group> group;
    std::unique_ptr<device::GroupCollectives> collectives;
  };
  auto collective =
      [&](const std::vector<int64_t> &ranks) -> llvm::Expected<Collective> {
    Collective c;
    if (ranks.size() <= 1)
      return std::move(c);
    auto g = world.group(ranks);
    if (!g)
      return g.takeError();
    c.group = std::move(*g);
    c.collectives = std::make_unique<device::GroupCollectives>(*c.group);
    return std::move(c);
  };
  auto tpGroup = collective(place->shards);
  if (!tpGroup)
    return fail(llvm::toString(tpGroup.takeError()));
  auto cpGroup = collective(place->contexts);
  if (!cpGroup)
    return fail(llvm::toString(cpGroup.takeError()));
  groups.shards = tpGroup->collectives.get();
  groups.shardsHost = tpGroup->group.get();
  groups.contexts = cpGroup->collectives.get();
  groups.contextsHost = cpGroup->group.get();
  auto runner = device::DeviceRankRunner::create(
      plan, seed, groups,
      [&](const exec::Model &model) { return makeData(model, seed); });
  if (!runner)
    return fail(llvm::toString(runner.takeError()));
  device::DeviceRankRunner &r = **runner;
  // The check mllm-run makes before NCCL's first message, on the same
  // list: every pair's messages in one order and size at both ends.
  if (llvm::Error e = cuda::exchangeAndCheckPairOrder(world, r.messages()))
    return fail(llvm::toString(std::move(e)));
  if (!resumeFile.empty())
    if (llvm::Error e = r.load(resumeFile))
      return fail(llvm::toString(std::move(e)));
  if (llvm::Error e = r.agreeOnStart())
    return fail(llvm::toString(std::move(e)));
  // A whole model, into which rank 0 gathers every rank's tensors.
  auto full = exec::Model::build(plan, seed);
  if (!full)
    return fail(llvm::toString(full.takeError()));
  if (checkGrads > 0) {
    auto loss = r.accumulateGradients();
    if (!loss)
      return fail(llvm::toString(loss.takeError()));
    if (llvm::Error e = r.downloadGradients())
      return fail(llvm::toString(std::move(e)));
    if (llvm::Error e = gather(**everyone, **full, r.params(), true))
      return fail(llvm::toString(std::move(e)));
    return rank == 0 ? compareGradients(plan, seed, **full, *loss) : 0;
  }
  while (r.stepsDone() < steps) {
    const bool traced = !traceFile.empty() && r.stepsDone() + 1 == steps;
    if (traced)
      r.traceNextStep();
    const int64_t before = kernels::cuda::twin::deviceWideCalls();
    auto stats = r.step();
    if (!stats)
      return fail(llvm::toString(stats.takeError()));
    double waits =
        static_cast<double>(kernels::cuda::twin::deviceWideCalls() - before);
    if (llvm::Error e = (*everyone)->allReduceSum(&waits, 1))
      return fail(llvm::toString(std::move(e)));
    printStep(*stats, waits);
    if (!traced)
      continue;
    auto events = r.gatherTrace();
    if (!events)
      return fail(llvm::toString(events.takeError()));
    if (rank != 0)
      continue;
    std::error_code ec;
    llvm::raw_fd_ostream os(traceFile, ec);
    if (ec)
      return fail("cannot write '" + traceFile + "': " + ec.message());
    for (const exec::RankEvent &e : *events)
      os << llvm::json::Value(llvm::json::Object{
                {"rank", e.rank},
                {"stage", e.stage},
                {"kind",
                 sched::toString(static_cast<sched::ActionKind>(e.kind))},
                {"microbatch", e.microbatch},
                {"start", e.start},
                {"end", e.end}})
         << "\n";
  }
  // Rank 0's arena: planned, measured, its messages' share; and every
  // rank's planned and measured bytes and its first activation received
  // and sent (under CP a rank's share of the tokens, which may exceed
  // rank 0's).
  const sched::MemoryPlan &memory = r.memoryPlan();
  llvm::json::Object arena{{"event", "arena"},
                           {"arena_bytes", memory.arenaBytes},
                           {"measured_bytes", r.measuredArenaBytes()}};
  for (const sched::Buffer &b : memory.buffers)
    if (!arena.get(sched::bufferKindName(b.kind)))
      arena[sched::bufferKindName(b.kind)] = b.bytes;
  int64_t mine[4] = {memory.arenaBytes, r.measuredArenaBytes(), 0, 0};
  for (const sched::Buffer &b : memory.buffers) {
    int64_t *first = b.kind == sched::BufferKind::RecvAct   ? &mine[2]
                     : b.kind == sched::BufferKind::SendAct ? &mine[3]
                                                            : nullptr;
    if (first && !*first)
      *first = b.bytes;
  }
  std::vector<int64_t> all(4 * static_cast<size_t>(world.worldSize()));
  if (llvm::Error e =
          (*everyone)->allGatherBytes(mine, sizeof(mine), all.data()))
    return fail(llvm::toString(std::move(e)));
  llvm::json::Array perRank;
  for (size_t i = 0; i < all.size(); i += 4)
    perRank.push_back(llvm::json::Object{{"arena_bytes", all[i]},
                                         {"measured_bytes", all[i + 1]},
                                         {"recv_act", all[i + 2]},
                                         {"send_act", all[i + 3]}});
  arena["ranks"] = std::move(perRank);
  out() << llvm::json::Value(llvm::json::Object{
               {"event", "gradient_sums"}, {"posted", r.gradientSumsPosted()}})
        << "\n";
  out() << llvm::json::Value(std::move(arena)) << "\n";
  // --checkpoint DIR: the CPU backend's sharded checkpoint in DIR.
  if (!checkpointFile.empty())
    if (llvm::Error e = r.save(checkpointFile, seed))
      return fail(llvm::toString(std::move(e)));
  if (saveFile.empty())
    return 0;
  if (llvm::Error e = r.downloadParams())
    return fail(llvm::toString(std::move(e)));
  if (llvm::Error e = gather(**everyone, **full, r.params(), false))
    return fail(llvm::toString(std::move(e)));
  return rank == 0 ? writeWeights(**full) : 0;
}
#endif

int main(int argc, char **argv) {
  llvm::cl::ParseCommandLineOptions(argc, argv, "mllm-device-twin\n");
  if (countDriver)
    exec::setStepDriverFactory(
        [](const exec::ProgramRunner &)
            -> llvm::Expected<std::unique_ptr<exec::StepDriver>> {
          return std::make_unique<CountingDriver>();
        });
  auto plan = readPlanFile(planFile);
  if (!plan)
    return fail(llvm::toString(plan.takeError()));
  uint64_t seed = plan->train.seed;
  auto model = exec::Model::build(*plan, seed);
  if (!model)
    return fail(llvm::toString(model.takeError()));
  auto data = makeData(**model, seed);
  if (!data)
    return fail(llvm::toString(data.takeError()));
  device::DataParallel parallel;
#ifdef MLLM_HAVE_MPI
  // Under mpirun: one process per share of the replicas, one group of all
  // of them for the gradients and the loss.
  std::unique_ptr<Comm> world;
  std::unique_ptr<Group> everyone;
  std::unique_ptr<device::GroupReducer> reducer;
  if (launchedByLauncher()) {
    auto comm = initMPI(&argc, &argv, std::chrono::seconds(60));
    if (!comm)
      return fail(llvm::toString(comm.takeError()));
    world = std::move(*comm);
    // As mllm-run: one process per replica (or per share of them), or one
    // per rank of the plan (pipeline stages, TP shards; a pipeline's wrong
    // world size is refused there).
    if (plan->schedule && world->worldSize() != plan->job.dp &&
        (world->worldSize() == plan->job.worldSize ||
         plan->schedule->programs.size() > 1)) {
      if (!evalFile.empty() || !generateFile.empty())
        return fail("--eval and --generate are not supported with pipeline "
                    "stages (mllm-run-twin runs them)");
      return runPipeline(*plan, *world);
    }
    std::vector<int64_t> ranks(static_cast<size_t>(world->worldSize()));
    std::iota(ranks.begin(), ranks.end(), int64_t(0));
    auto group = world->group(ranks);
    if (!group)
      return fail(llvm::toString(group.takeError()));
    everyone = std::move(*group);
    parallel.index = world->worldRank();
    parallel.processes = world->worldSize();
    reducer = std::make_unique<device::GroupReducer>(*everyone);
    parallel.gradients = reducer.get();
    parallel.host = everyone.get();
    parallel.bucketBytes = bucketBytes;
    if (parallel.index != 0)
      report = &llvm::nulls();
  }
#endif
  auto trainer = device::DeviceTrainer::create(**model, **data, parallel);
  if (!trainer)
    return fail(llvm::toString(trainer.takeError()));
  if (checkGrads > 0) {
    auto loss = (*trainer)->accumulateGradients();
    if (!loss)
      return fail(llvm::toString(loss.takeError()));
    if (llvm::Error e = (*trainer)->downloadGradients())
      return fail(llvm::toString(std::move(e)));
    return compareGradients(*plan, seed, **model, *loss);
  }
  if (!resumeFile.empty())
    if (llvm::Error e = (*trainer)->load(resumeFile))
      return fail(llvm::toString(std::move(e)));
  while ((*trainer)->stepsDone() < steps) {
    const int64_t before = kernels::cuda::twin::deviceWideCalls();
    auto stats = (*trainer)->step();
    if (!stats)
      return fail(llvm::toString(stats.takeError()));
    printStep(*stats, static_cast<double>(
                          kernels::cuda::twin::deviceWideCalls() - before));
  }
  // The arena: its planned size, the highest byte the steps used, and one
  // buffer of each kind (saved and workspace buffers repeat per microbatch
  // and action).
  const sched::MemoryPlan &memory = (*trainer)->memoryPlan();
  llvm::json::Object arena{{"event", "arena"},
                           {"arena_bytes", memory.arenaBytes},
                           {"measured_bytes", (*trainer)->measuredArenaBytes()},
                           {"unshared_bytes", memory.unsharedBytes()}};
  for (const sched::Buffer &b : memory.buffers)
    if (!arena.get(sched::bufferKindName(b.kind)))
      arena[sched::bufferKindName(b.kind)] = b.bytes;
  out() << llvm::json::Value(
               llvm::json::Object{{"event", "gradient_sums"},
                                  {"posted", (*trainer)->gradientSumsPosted()}})
        << "\n";
  out() << llvm::json::Value(std::move(arena)) << "\n";
  if (!evalFile.empty()) {
    data::DataOptions options;
    options.seed = seed;
    auto evaluator = exec::EvalSet::open(**model, evalFile, options);
    if (!evaluator)
      return fail(llvm::toString(evaluator.takeError()));
    auto stats = (*trainer)->evaluate(**evaluator);
    if (!stats)
      return fail(llvm::toString(stats.takeError()));
    out() << llvm::json::Value(
                 llvm::json::Object{{"event", "eval"},
                                    {"step", stats->step},
                                    {"loss", finiteOrNull(stats->loss)},
                                    {"accuracy", stats->accuracy},
                                    {"tokens", stats->tokens},
                                    {"samples", stats->samples}})
          << "\n";
  }
  // Generation is collective over the processes (a sample each at once);
  // rank 0 writes.
  if (!generateFile.empty()) {
    data::DataOptions options;
    options.seed = seed;
    auto generator = exec::Generator::open(**model, generateFile, options);
    if (!generator)
      return fail(llvm::toString(generator.takeError()));
    std::unique_ptr<exec::NextToken> next =
        (*trainer)->nextToken(/*cacheKeys=*/!noKeyCache);
    if (llvm::Error e =
            (*generator)->run(maxTokens, *next, [&](const exec::Generation &g) {
              if (parallel.index != 0)
                return;
              llvm::json::Array tokens;
              for (int64_t t : g.tokens)
                tokens.push_back(t);
              out() << llvm::json::Value(llvm::json::Object{
                           {"event", "generate"},
                           {"line", g.line},
                           {"text", llvm::json::fixUTF8(g.text)},
                           {"tokens", std::move(tokens)},
                           {"stop", g.stop}})
                    << "\n";
            }))
      return fail(llvm::toString(std::move(e)));
    // What ran, as mllm-run's generate_work event (without the timing).
    if (std::optional<exec::GenerationWork> w = next->work();
        w && parallel.index == 0)
      out() << llvm::json::Value(
                   llvm::json::Object{{"event", "generate_work"},
                                      {"rounds", w->rounds},
                                      {"llm_rows", w->rows},
                                      {"encoder_runs", w->encoderRuns},
                                      {"kv_cache", w->keyCache},
                                      {"cache_dropped", w->dropped}})
            << "\n";
  }
  // Every process holds the same weights; rank 0 writes them.
  if (parallel.index != 0)
    return 0;
  if (!checkpointFile.empty())
    if (llvm::Error e = (*trainer)->save(checkpointFile, seed))
      return fail(llvm::toString(std::move(e)));
  if (saveFile.empty())
    return 0;
  if (llvm::Error e = (*trainer)->downloadParams())
    return fail(llvm::toString(std::move(e)));
  return writeWeights(**model);
}
