//===- DevicePlace.cpp - where a rank runs in a parallel plan
//--------------===//
//
// device::placeRank: a rank's program, its stage's groups (replicas, TP
// shards, CP ranks, the tied head's pair) and every message pair of the
// plan, after the checks of what the device executor does not run, which
// every rank answers alike before any collective.
//
//===----------------------------------------------------------------------===//
#include "mllm/runtime/device/DeviceRankRunner.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <set>

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::device;

static llvm::Error fail(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

/// An error when `plan` asks for what the device executor's ranks do not
/// run (the same answer on every rank).
static llvm::Error runsPlan(const Plan &plan) {
  const PlanSchedule &schedule = *plan.schedule;
  // CP splits the LLM's sequences only: an encoder on a CP stage (the chain
  // layout) is not run.
  for (const sched::StageInfo &st : schedule.graph.stages)
    if (st.cp > 1 && llvm::StringRef(st.name).contains('+'))
      return fail(llvm::formatv(
          "stage '{0}' runs an encoder's layers with the LLM's at cp = {1}; "
          "the device executor runs context parallelism on stages of the "
          "LLM alone so far",
          st.name, st.cp));
  // Refused alike under CP: conformer blocks (their convolution needs
  // neighbouring tokens), and a stage the plan gives no assignment of its
  // tokens.
  for (const sched::StageInfo &st : schedule.graph.stages) {
    if (st.cp <= 1)
      continue;
    if (llvm::any_of(plan.llm().groups, [](const PlanLayerGroup &g) {
          return g.kind == "conformer_block";
        }))
      return fail(llvm::formatv("stage '{0}' runs conformer blocks with cp = "
                                "{1}; their convolution needs neighbouring "
                                "tokens (the CPU backend refuses it too)",
                                st.name, st.cp));
    if (auto shares = exec::contextShares(plan, st); !shares)
      return shares.takeError();
  }
  // A tied head's copy is the embedding's shard of the same rows: both
  // stages split the vocabulary alike (one tp per part).
  const PlanPart &llm = plan.llm();
  const bool tiedHead = llvm::any_of(llm.groups, [](const PlanLayerGroup &g) {
    return g.kind == "lm_head" && g.config.tied;
  });
  const sched::StageInfo *embeddingStage = nullptr, *headStage = nullptr;
  for (const sched::StageInfo &g : schedule.graph.stages) {
    llvm::SmallVector<llvm::StringRef> names;
    llvm::StringRef(g.name).split(names, '+');
    for (const PlanStage &st : plan.stages)
      if (st.part == llm.name && llvm::is_contained(names, st.name)) {
        if (st.begin == 0)
          embeddingStage = &g;
        if (st.end == llm.blocks)
          headStage = &g;
      }
  }
  if (tiedHead && embeddingStage && headStage &&
      embeddingStage->tp != headStage->tp)
    return fail(llvm::formatv(
        "the LLM's first stage '{0}' runs with tp = {1} and its last '{2}' "
        "with tp = {3}; the tied LM head needs the embedding's split",
        embeddingStage->name, embeddingStage->tp, headStage->name,
        headStage->tp));
  return llvm::Error::success();
}

llvm::Expected<RankPlace> device::placeRank(const Plan &plan, int rank) {
  if (!plan.schedule)
    return fail("the plan has no schedule");
  const PlanSchedule &schedule = *plan.schedule;
  std::vector<int64_t> programOfRank = schedule.rankProgram();
  if (rank < 0 || rank >= static_cast<int>(programOfRank.size()) ||
      programOfRank[rank] < 0)
    return fail(llvm::formatv("rank {0} has no program in the plan", rank));
  // Every rank answers alike, before any collective.
  if (llvm::Error e = runsPlan(plan))
    return std::move(e);
  RankPlace place;
  place.rank = rank;
  place.program = programOfRank[rank];
  const sched::StageInfo &stage =
      schedule.graph.stages[schedule.programs[place.program].stage];
  RankLayout layout = stage.rankLayout();
  std::optional<RankLayout::Coord> coord = layout.coordOf(rank);
  if (!coord)
    return fail(llvm::formatv("rank {0} is not a rank of its stage '{1}'", rank,
                              stage.name));
  place.coord = *coord;
  place.replicas = place.shards = place.contexts = {rank};
  for (const std::vector<int64_t> &g : layout.gradSyncGroups())
    if (llvm::is_contained(g, static_cast<int64_t>(rank)))
      place.replicas = g;
  if (stage.tp > 1)
    for (const std::vector<int64_t> &g : layout.tpGroups())
      if (llvm::is_contained(g, static_cast<int64_t>(rank)))
        place.shards = g;
  if (stage.cp > 1)
    for (const std::vector<int64_t> &g : layout.cpGroups())
      if (llvm::is_contained(g, static_cast<int64_t>(rank)))
        place.contexts = g;
  exec::TiedHead tied = exec::tiedHead(plan, rank, place.coord);
  if (tied.peer >= 0)
    place.tied = {std::min<int64_t>(rank, tied.peer),
                  std::max<int64_t>(rank, tied.peer)};
  // Every rank's sends, with the ranks of both ends.
  std::set<std::pair<int, int>> pairs;
  for (size_t r = 0; r < programOfRank.size(); ++r) {
    if (programOfRank[r] < 0)
      continue;
    const sched::Program &p = schedule.programs[programOfRank[r]];
    std::optional<RankLayout::Coord> c =
        schedule.graph.stages[p.stage].rankLayout().coordOf(
            static_cast<int64_t>(r));
    if (!c)
      continue;
    for (const sched::Action &a : p.actions)
      if (sched::isSend(a.kind))
        for (int64_t to :
             exec::messagePeers(schedule.graph.stages[p.stage], *c,
                                schedule.graph.stages[a.peer], a.kind))
          pairs.insert({static_cast<int>(r), static_cast<int>(to)});
  }
  place.peers.assign(pairs.begin(), pairs.end());
  return place;
}
