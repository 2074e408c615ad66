//===- RankFlow.cpp - what each stage of a plan runs and passes on --------===//
//
// A program's stage is a graph stage: one part's pipeline stage, or the
// stages of several colocated encoders ("vision+audio"). Its ranges are the
// steps of the partition units of the plan's `stages` entries on the same
// ranks. The tensors a stage sends on are what it and the stages before it
// produced minus what it consumed: in the multimodal graph exactly its own
// outputs, in the linear baseline also the encoder tokens travelling
// through it to the LLM.
//
//===----------------------------------------------------------------------===//
#include "mllm/runtime/exec/RankRunner.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"

#include <algorithm>

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::exec;

static llvm::Error fail(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

/// The plan stage of part `part` running on the ranks of graph stage `g`.
static const PlanStage *planStageOf(const Plan &plan, llvm::StringRef part,
                                    const sched::StageInfo &g) {
  for (const PlanStage &s : plan.stages)
    if (s.part == part && s.ranks && s.ranks->first == g.firstRank)
      return &s;
  // Without rank layouts: the stage index is the graph stage's suffix.
  std::optional<int64_t> index = sched::partStageIndex(g.name);
  if (!index)
    return nullptr;
  for (const PlanStage &s : plan.stages)
    if (s.part == part && s.index == *index)
      return &s;
  return nullptr;
}

llvm::Expected<std::vector<StageFlow>> exec::planFlows(const Model &model) {
  const Plan &plan = model.plan();
  if (!plan.schedule)
    return fail("the plan has no schedule (compile it with mllmc "
                "--emit=plan)");
  const sched::PipelineGraph &graph = plan.schedule->graph;
  const std::vector<sched::Program> &programs = plan.schedule->programs;
  std::vector<int64_t> programOf(graph.stages.size(), -1);
  for (size_t i = 0; i < programs.size(); ++i) {
    if (programs[i].stage < 0 ||
        programs[i].stage >= static_cast<int>(graph.stages.size()))
      return fail("program " + llvm::Twine(i) + " names no stage");
    programOf[programs[i].stage] = static_cast<int64_t>(i);
  }
  auto chainOf = [&](llvm::StringRef part) -> int64_t {
    for (size_t c = 0; c < model.chains.size(); ++c)
      if (model.chains[c]->part() == part)
        return static_cast<int64_t>(c);
    return -1;
  };
  size_t llm = model.chains.size() - 1;

  std::vector<StageFlow> flows(programs.size());
  for (size_t i = 0; i < programs.size(); ++i) {
    const sched::StageInfo &g = graph.stages[programs[i].stage];
    StageFlow &flow = flows[i];
    llvm::SmallVector<llvm::StringRef> parts;
    llvm::StringRef(g.part).split(parts, '+');
    for (llvm::StringRef part : parts) {
      int64_t c = chainOf(part);
      const PlanPart *planPart = plan.findPart(part);
      const PlanStage *stage = planStageOf(plan, part, g);
      if (c < 0 || !planPart || !stage)
        return fail("stage '" + g.name + "': no part or stage '" + part +
                    "' in the plan");
      int64_t units =
          model.stepUnits[c].empty() ? 0 : model.stepUnits[c].back() + 1;
      if (units != planPart->blocks)
        return fail("part '" + part + "' has " + llvm::Twine(units) +
                    " partition units in the runtime's model but " +
                    llvm::Twine(planPart->blocks) + " in the plan");
      auto [first, last] = model.stepsOfUnits(c, stage->begin, stage->end);
      if (first >= last)
        return fail("stage '" + stage->name + "' holds no layers");
      flow.ranges.push_back({static_cast<size_t>(c), first, last});
      size_t size = model.chains[c]->size();
      if (!(static_cast<size_t>(c) == llm && last == size))
        flow.produced.push_back({c, static_cast<int64_t>(last)});
      if (first > 0)
        flow.consumed.push_back({c, static_cast<int64_t>(first)});
      if (static_cast<size_t>(c) == llm && model.fanInStep >= 0 &&
          static_cast<size_t>(model.fanInStep) >= first &&
          static_cast<size_t>(model.fanInStep) < last)
        for (size_t e = 0; e < llm; ++e)
          flow.consumed.push_back(
              {static_cast<int64_t>(e),
               static_cast<int64_t>(model.chains[e]->size())});
    }
    llvm::sort(flow.produced);
    llvm::sort(flow.consumed);
  }

  // Sends, in stage order (activations only go to later stages, which the
  // schedule verifier guarantees).
  std::vector<bool> visited(programs.size(), false);
  for (size_t s = 0; s < graph.stages.size(); ++s) {
    int64_t i = programOf[s];
    if (i < 0)
      continue;
    StageFlow &flow = flows[i];
    std::set<FlowKey> have(flow.produced.begin(), flow.produced.end());
    std::set<int64_t> from, to;
    for (const sched::Action &a : programs[i].actions) {
      if (a.kind == sched::ActionKind::RecvActivation)
        from.insert(a.peer);
      if (a.kind == sched::ActionKind::SendActivation)
        to.insert(a.peer);
    }
    for (int64_t peer : from) {
      int64_t p = peer >= 0 && peer < static_cast<int64_t>(programOf.size())
                      ? programOf[peer]
                      : -1;
      if (p < 0 || !visited[p])
        return fail("stage '" + graph.stages[s].name +
                    "' receives activations from a stage that does not run "
                    "before it");
      for (const FlowKey &k : flows[p].sends) {
        if (have.count(k))
          return fail("stage '" + graph.stages[s].name +
                      "' receives the same tensor from two stages");
        have.insert(k);
      }
    }
    for (const FlowKey &k : flow.consumed) {
      if (!have.count(k))
        return fail(
            "stage '" + graph.stages[s].name + "' needs the input of '" +
            (k.step < static_cast<int64_t>(model.chains[k.chain]->size())
                 ? model.chains[k.chain]->step(k.step).name()
                 : model.chains[k.chain]->part() + " output") +
            "' but no earlier stage sends it");
      have.erase(k);
    }
    flow.sends.assign(have.begin(), have.end());
    if (to.size() > 1)
      return fail("stage '" + graph.stages[s].name +
                  "' sends activations to several stages; the runtime passes "
                  "a stage's tensors to one successor");
    if (to.empty() && !flow.sends.empty())
      return fail("stage '" + graph.stages[s].name +
                  "' computes tensors that no stage receives");
    visited[i] = true;
  }
  return std::move(flows);
}
