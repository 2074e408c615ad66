//===- PlanMemory.h - static memory plans of a plan's programs --*- C++ -*-===//
//
// The static memory plan (MemoryPlan.h) of a program of a plan file, from
// the sizes the plan records: what the compiler writes as each program's
// `arena_bytes` and what mllm-run's compiled step functions carry, so both
// ends compute it with the same function from the same figures.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_PLANMEMORY_H
#define MLLM_RUNTIME_PLANMEMORY_H

#include "mllm/runtime/MemoryPlan.h"
#include "mllm/runtime/Plan.h"

namespace mllm::runtime {

/// The cost model's sizes for the GPUs of graph stage `stage`: weights,
/// grads, optimizer state and one microbatch's activations of the plan's
/// stages on the same ranks (MiB as recorded, in bytes).
sched::StageSizes stageSizes(const Plan &plan, const sched::StageInfo &stage);

/// The static memory plan of program `program` of the plan's schedule.
sched::MemoryPlan programMemoryPlan(const Plan &plan, size_t program);

/// programMemoryPlan of every program.
std::vector<sched::MemoryPlan> programMemoryPlans(const Plan &plan);

/// Sets schedule.arenaBytes from programMemoryPlan for every program.
void recordArenas(Plan &plan);

} // namespace mllm::runtime

#endif // MLLM_RUNTIME_PLANMEMORY_H
