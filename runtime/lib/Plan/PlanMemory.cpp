//===- PlanMemory.cpp - static memory plans of a plan's programs ----------===//
#include "mllm/runtime/PlanMemory.h"

#include "mllm/runtime/SendRelease.h"

using namespace mllm;
using namespace mllm::runtime;

sched::StageSizes runtime::stageSizes(const Plan &plan,
                                      const sched::StageInfo &stage) {
  constexpr int64_t kMiB = 1024 * 1024;
  sched::StageSizes sizes;
  for (const PlanStage &s : plan.stages)
    if (s.memory && s.ranks && s.ranks->first == stage.firstRank) {
      sizes.weights += s.memory->weights * kMiB;
      sizes.grads += s.memory->grads * kMiB;
      sizes.optimizer += s.memory->optimizer * kMiB;
      sizes.savedPerMicrobatch += s.memory->activations * kMiB;
    }
  return sizes;
}

sched::MemoryPlan runtime::programMemoryPlan(const Plan &plan, size_t program) {
  const PlanSchedule &schedule = *plan.schedule;
  const sched::Program &p = schedule.programs[program];
  return sched::planMemory(schedule.graph, schedule.programs, program,
                           stageSizes(plan, schedule.graph.stages[p.stage]));
}

std::vector<sched::MemoryPlan> runtime::programMemoryPlans(const Plan &plan) {
  std::vector<sched::MemoryPlan> plans;
  if (!plan.schedule)
    return plans;
  const PlanSchedule &schedule = *plan.schedule;
  std::vector<std::vector<int64_t>> releases =
      sched::sendReleases(schedule.graph, schedule.programs);
  for (size_t i = 0; i < schedule.programs.size(); ++i) {
    const sched::Program &p = schedule.programs[i];
    plans.push_back(sched::planMemory(
        p, stageSizes(plan, schedule.graph.stages[p.stage]), releases[i]));
  }
  return plans;
}

void runtime::recordArenas(Plan &plan) {
  if (!plan.schedule)
    return;
  std::vector<sched::MemoryPlan> plans = programMemoryPlans(plan);
  PlanSchedule &schedule = *plan.schedule;
  schedule.arenaBytes.clear();
  for (const sched::MemoryPlan &p : plans)
    schedule.arenaBytes.push_back(p.arenaBytes);
}
