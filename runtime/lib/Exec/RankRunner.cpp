//===- RankRunner.cpp - one rank of a parallel run ------------------------===//
#include "RankImpl.h"

#include "mllm/runtime/SendRelease.h"

#include "mllm/runtime/PlanIO.h"

#include "mllm/runtime/exec/Checkpoint.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"

#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::exec;
using sched::ActionKind;

char RankError::ID = 0;

namespace {
char activity[512] = "starting";
} // namespace

void exec::setActivity(const char *format, ...) {
  va_list args;
  va_start(args, format);
  std::vsnprintf(activity, sizeof(activity), format, args);
  va_end(args);
}

const char *exec::currentActivity() { return activity; }

RankRunner::RankRunner(std::unique_ptr<Impl> impl, std::unique_ptr<Model> model,
                       std::unique_ptr<DataSource> data, Comm &comm,
                       uint64_t seed)
    : impl(std::move(impl)), ownedModel(std::move(model)),
      ownedData(std::move(data)), model(*ownedModel), data(*ownedData),
      comm(comm), seed(seed), optimizer(ownedModel->plan().train) {}

RankRunner::~RankRunner() = default;

/// The keys of a gradient message whose forward message carried `keys`: the
/// tensors that need a gradient, or all of them when the plan's message
/// has a tensor for each (a full backward, the linear baseline).
static llvm::Expected<std::vector<FlowKey>>
gradKeys(const Model &model, const std::vector<FlowKey> &keys, size_t count) {
  std::vector<FlowKey> need;
  for (const FlowKey &k : keys)
    if (model.chains[k.chain]->hasBackward(0, k.step))
      need.push_back(k);
  if (need.size() == count)
    return need;
  if (keys.size() == count)
    return keys;
  return llvm::createStringError(
      llvm::inconvertibleErrorCode(),
      llvm::formatv("the plan's gradient message has {0} tensors, the "
                    "runtime sends {1}",
                    count, need.size())
          .str());
}

llvm::Error exec::agreeOnPlan(const Plan &plan, Group &world, int rank) {
  auto error = [](const llvm::Twine &message) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   message.str());
  };
  // Same plan everywhere: its content hash, gathered (first, so that
  // ranks given different plans all stop here).
  char mine[65] = {0};
  std::strncpy(mine, planContentHash(plan).c_str(), 64);
  std::vector<char> hashes(65 * static_cast<size_t>(world.size()));
  if (llvm::Error e = world.allGatherBytes(mine, 65, hashes.data()))
    return error("comparing plans: " + llvm::toString(std::move(e)));
  for (int r = 0; r < world.size(); ++r)
    if (std::strncmp(&hashes[65 * r], mine, 65) != 0)
      return error(
          llvm::formatv("rank {0} read another plan (hash {1}) than "
                        "rank {2} (hash {3}); give every rank the "
                        "same plan file",
                        r, llvm::StringRef(&hashes[65 * r]).take_front(12),
                        rank, llvm::StringRef(mine).take_front(12))
              .str());
  // The GPUs past the last rank with a program idle: not started.
  int64_t ranks = plan.launchRanks();
  if (world.size() != ranks)
    return error(
        llvm::formatv("the plan runs on {0} ranks but the launcher started "
                      "{1}; start it with `mpirun -np {0}` (or srun -n {0}){2}",
                      ranks, world.size(),
                      ranks < plan.job.worldSize
                          ? llvm::formatv(": its stages leave the last {0} of "
                                          "the cluster's {1} GPUs idle",
                                          plan.job.worldSize - ranks,
                                          plan.job.worldSize)
                                .str()
                          : std::string())
            .str());
  if (!plan.schedule)
    return error("the plan has no schedule");
  std::vector<int64_t> rankProgram = plan.schedule->rankProgram();
  for (size_t r = 0; r < rankProgram.size(); ++r)
    if (rankProgram[r] < 0)
      return error(llvm::formatv("rank {0} has no program in the plan (its "
                                 "stages run on {1} ranks); compile the spec "
                                 "for this world size",
                                 r, plan.schedule->rankProgram().size())
                       .str());
  return llvm::Error::success();
}

llvm::Error exec::agreeOnStep(Group &world, int64_t step) {
  std::vector<int64_t> steps(static_cast<size_t>(world.size()));
  if (llvm::Error e =
          world.allGatherBytes(&step, sizeof(int64_t), steps.data()))
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "comparing the ranks' steps: " +
                                       llvm::toString(std::move(e)));
  for (size_t r = 0; r < steps.size(); ++r)
    if (steps[r] != steps[0])
      return llvm::createStringError(
          llvm::inconvertibleErrorCode(),
          llvm::formatv("rank {0} is at step {1} but rank 0 at step {2}; "
                        "give every rank the same --checkpoint-dir (on a "
                        "shared file system)",
                        r, steps[r], steps[0])
              .str());
  return llvm::Error::success();
}

TiedHead exec::tiedHead(const Plan &plan, int rank,
                        const RankLayout::Coord &coord) {
  const PlanPart &llm = plan.llm();
  const PlanStage *first = nullptr, *last = nullptr;
  for (const PlanStage &st : plan.stages)
    if (st.part == llm.name) {
      if (st.begin == 0)
        first = &st;
      if (st.end == llm.blocks)
        last = &st;
    }
  bool tied = llvm::any_of(llm.groups, [](const PlanLayerGroup &g) {
    return g.kind == "lm_head" && g.config.tied;
  });
  bool embeddingTrains = llvm::any_of(llm.groups, [](const PlanLayerGroup &g) {
    return g.kind == "token_embedding" && g.weightGrad;
  });
  auto holds = [&](const PlanStage *st) {
    return st && st->ranks && st->ranks->coordOf(rank).has_value();
  };
  TiedHead result;
  result.embedding = holds(first);
  result.head = holds(last);
  if (tied && embeddingTrains && first && last && first != last &&
      result.embedding != result.head) {
    const PlanStage *other = result.embedding ? last : first;
    result.peer = other->ranks->rank(coord.d, coord.c, coord.t);
  }
  return result;
}

llvm::Expected<std::vector<std::vector<int64_t>>>
exec::contextShares(const Plan &plan, const sched::StageInfo &stage) {
  const PlanCPAssignment *assignment = nullptr;
  for (const PlanCPAssignment &a : plan.cpAssignments)
    if (a.part == plan.llm().name)
      assignment = &a;
  if (!assignment || static_cast<int64_t>(assignment->ranks.size()) != stage.cp)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "stage '" + stage.name +
            "' is context-parallel but the plan has no CP assignment of its "
            "tokens for " +
            llvm::Twine(stage.cp) + " ranks");
  std::vector<std::vector<int64_t>> shares;
  for (const auto &ranges : assignment->ranks) {
    std::vector<int64_t> &tokens = shares.emplace_back();
    for (auto [begin, end] : ranges)
      for (int64_t t = begin; t < end; ++t)
        tokens.push_back(t);
  }
  return shares;
}

/// Everything a rank decides before it builds its share of the model: the
/// checks every rank answers alike, its program and place in its stage,
/// and its groups.
static llvm::Error prepare(RankRunner::Impl &s, const Plan &plan, Comm &comm) {
  s.plan = &plan;
  s.rank = comm.worldRank();
  auto error = [&](const llvm::Twine &message) {
    return llvm::make_error<RankError>(s.rank, message.str());
  };
  // Every check before the first message gives every rank the same answer,
  // so every rank prints it and none waits for a peer that gave up.
  std::vector<int64_t> all(comm.worldSize());
  for (int r = 0; r < comm.worldSize(); ++r)
    all[r] = r;
  auto world = comm.group(all);
  if (!world)
    return error(llvm::toString(world.takeError()));
  s.world = std::move(*world);
  if (llvm::Error e = agreeOnPlan(plan, *s.world, s.rank))
    return error(llvm::toString(std::move(e)));
  s.graph = &plan.schedule->graph;
  std::vector<int64_t> rankProgram = plan.schedule->rankProgram();
  const std::vector<sched::Program> &programs = plan.schedule->programs;
  s.programOf.assign(s.graph->stages.size(), -1);
  for (size_t i = 0; i < programs.size(); ++i)
    s.programOf[programs[i].stage] = static_cast<int64_t>(i);
  s.program = rankProgram[s.rank];
  s.prog = &programs[s.program];
  s.sendRelease =
      sched::sendReleases(*s.graph, programs, static_cast<size_t>(s.program));
  for (size_t i = 0; i < s.prog->actions.size(); ++i)
    if (sched::isBackward(s.prog->actions[i].kind))
      s.lastBackward[s.prog->actions[i].microbatch] = static_cast<int64_t>(i);
  s.stage = &s.graph->stages[s.prog->stage];
  std::optional<RankLayout::Coord> coord =
      s.stage->rankLayout().coordOf(s.rank);
  if (!coord)
    return error("not a rank of its own stage '" + s.stage->name + "'");
  s.coord = *coord;

  // Groups, each created by its members only, in the same order on all.
  RankLayout layout = s.stage->rankLayout();
  auto groupOf = [&](const std::vector<std::vector<int64_t>> &groups,
                     std::unique_ptr<Group> &into) -> llvm::Error {
    for (const std::vector<int64_t> &g : groups)
      if (llvm::is_contained(g, static_cast<int64_t>(s.rank))) {
        auto made = comm.group(g);
        if (!made)
          return made.takeError();
        into = std::move(*made);
      }
    return llvm::Error::success();
  };
  if (s.stage->tp > 1)
    if (llvm::Error e = groupOf(layout.tpGroups(), s.tp))
      return error(llvm::toString(std::move(e)));
  if (s.stage->cp > 1)
    if (llvm::Error e = groupOf(layout.cpGroups(), s.cp))
      return error(llvm::toString(std::move(e)));
  if (llvm::any_of(s.prog->actions, [](const sched::Action &a) {
        return a.kind == ActionKind::AllReduceGrads;
      }))
    if (llvm::Error e = groupOf(layout.gradSyncGroups(), s.gradSync))
      return error(llvm::toString(std::move(e)));

  // A tied LM head on another stage than the token embedding: the two
  // copies' gradients are summed at the optimizer step.
  TiedHead tied = tiedHead(plan, s.rank, s.coord);
  s.holdsEmbedding = tied.embedding;
  s.holdsHead = tied.head;
  if (tied.peer >= 0) {
    std::vector<int64_t> members = {std::min<int64_t>(s.rank, tied.peer),
                                    std::max<int64_t>(s.rank, tied.peer)};
    auto g = comm.group(members);
    if (!g)
      return error(llvm::toString(g.takeError()));
    s.tied = std::move(*g);
  }
  return llvm::Error::success();
}

llvm::Expected<std::unique_ptr<RankRunner>>
RankRunner::create(const Plan &plan, uint64_t seed, Comm &comm,
                   const DataFactory &makeData) {
  auto impl = std::make_unique<Impl>();
  if (llvm::Error e = prepare(*impl, plan, comm))
    return std::move(e);
  Impl &s = *impl;
  // This rank's share of the model: its stage's weights, split as its
  // TP and CP groups say.
  int rank = s.rank;
  Model::Keep keep = [&plan, rank](llvm::StringRef part, int64_t unit) {
    for (const PlanStage &st : plan.stages)
      if (st.part == part && st.ranks && st.ranks->coordOf(rank) &&
          unit >= st.begin && unit < st.end)
        return true;
    return false;
  };
  Model::Sharding sharding;
  llvm::SmallVector<llvm::StringRef> parts;
  llvm::StringRef(s.stage->part).split(parts, '+');
  if (s.tp)
    for (llvm::StringRef part : parts)
      sharding.tp[part.str()] = {s.coord.t, s.stage->tp, s.tp.get()};
  if (s.cp) {
    auto shares = contextShares(plan, *s.stage);
    if (!shares)
      return llvm::make_error<RankError>(s.rank,
                                         llvm::toString(shares.takeError()));
    sharding.cp.group = s.cp.get();
    sharding.cp.tokens = std::move(*shares);
  }
  auto model = Model::build(plan, seed, keep, &sharding);
  if (!model)
    return llvm::make_error<RankError>(s.rank,
                                       llvm::toString(model.takeError()));
  auto data = makeData(**model);
  if (!data)
    return llvm::make_error<RankError>(s.rank,
                                       llvm::toString(data.takeError()));
  std::unique_ptr<RankRunner> runner(new RankRunner(
      std::move(impl), std::move(*model), std::move(*data), comm, seed));
  if (llvm::Error e = runner->setUp())
    return std::move(e);
  auto made = makeStepDriver(*runner);
  if (!made)
    return made.takeError();
  runner->driver = std::move(*made);
  return std::move(runner);
}

llvm::Error RankRunner::setUp() {
  Impl &s = *impl;
  const Plan &plan = model.plan();
  auto error = [&](const llvm::Twine &message) {
    return llvm::make_error<RankError>(s.rank, message.str());
  };
  auto flows = planFlows(model);
  if (!flows)
    return error(llvm::toString(flows.takeError()));
  s.flows = std::move(*flows);
  const std::vector<sched::Program> &programs = plan.schedule->programs;
  // The plan's messages against the runtime's tensors, for every program.
  for (size_t i = 0; i < programs.size(); ++i)
    for (size_t a = 0; a < programs[i].actions.size(); ++a) {
      const sched::Action &act = programs[i].actions[a];
      if (!sched::isComm(act.kind))
        continue;
      bool sent = sched::isSend(act.kind);
      // The forward message of this edge: sent by the earlier stage.
      const StageFlow &sender = (act.kind == ActionKind::SendActivation ||
                                 act.kind == ActionKind::RecvGrad)
                                    ? s.flows[i]
                                    : s.flowOfStage(act.peer);
      std::vector<FlowKey> keys = sender.sends;
      if (sched::isGradMessage(act.kind)) {
        auto g = gradKeys(model, keys, act.shape.size());
        if (!g)
          return error(llvm::formatv("stage '{0}' action {1} ({2}): {3}",
                                     s.graph->stages[programs[i].stage].name, a,
                                     describeAction(*s.graph, act),
                                     llvm::toString(g.takeError()))
                           .str());
        keys = *g;
      }
      if (keys.size() != act.shape.size())
        return error(llvm::formatv("stage '{0}' action {1} ({2}): the plan's "
                                   "message has {3} tensors, the runtime {4} "
                                   "{5}",
                                   s.graph->stages[programs[i].stage].name, a,
                                   describeAction(*s.graph, act),
                                   act.shape.size(), sent ? "sends" : "expects",
                                   keys.size())
                         .str());
    }

  const StageFlow &flow = s.flow();
  size_t llm = model.chains.size() - 1;
  s.lossRank =
      s.coord.t == 0 && llvm::any_of(flow.ranges, [&](const StageRange &r) {
        return r.chain == llm && r.last == model.llm().size();
      });

  // This rank's parameters: those of its steps (names from the model).
  std::map<cpu::Param<float> *, std::string> names;
  for (const NamedParam &p : model.params)
    names[p.param] = p.name;
  for (const StageRange &r : flow.ranges)
    for (size_t i = r.first; i < r.last; ++i)
      if (cpu::Layer<float> *layer = model.chains[r.chain]->step(i).layer())
        for (cpu::Param<float> *p : layer->params())
          owned.push_back({names[p], p});
  if (model.tiedEmbedding && s.holdsHead && !s.holdsEmbedding)
    owned.push_back({names[model.tiedEmbedding], model.tiedEmbedding});
  for (const NamedParam &p : owned)
    optimizer.add(p.param, p.name);

  return llvm::Error::success();
}
