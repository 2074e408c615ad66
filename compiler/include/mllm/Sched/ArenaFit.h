//===- ArenaFit.h - the memory check on static memory plans -----*- C++ -*-===//
//
// Where a schedule's static memory plans are known, the memory check uses
// their arenas instead of the cost model's estimate: the arena holds what
// the estimate holds (weights, gradients, optimizer state, the saved
// activations of every microbatch in flight) and also the message buffers
// and workspace, with the lifetimes the runtime keeps (MemoryPlan.h).
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_SCHED_ARENAFIT_H
#define MLLM_SCHED_ARENAFIT_H

#include "mllm/Sched/Generate.h"
#include "mllm/runtime/MemoryPlan.h"
#include "mllm/runtime/Plan.h"

namespace mllm::sched {

/// Checks every program's arena (plans[i] is programs[i]'s) against its
/// stage's GPU memory (StageInfo::memoryCapacity; 0: no check). The error,
/// a ScheduleError naming the first stage that does not fit, gives the
/// arena and what it holds at its peak:
/// "stage 'vision_s0' needs 3.15 GiB per GPU by its static memory plan
/// under the gpipe schedule but a GPU has 2.00 GiB: at its peak (action 63)
/// it holds weights, gradients and optimizer state 347.0 MiB + saved
/// activations 0.0 MiB (0 microbatches) + messages 2.81 GiB + workspace
/// 0.0 MiB; the cost model's estimate, 347.0 MiB, bounds the messages by
/// the rules of docs/plan-format.md ("Ranks and memory") and leaves out the
/// workspace; <a hint>; N of M stages do not fit".
llvm::Error checkArenas(const PipelineGraph &graph,
                        const std::vector<Program> &programs,
                        const std::vector<MemoryPlan> &plans,
                        ScheduleKind kind);

/// The memory check of a plan's schedule, whatever its kind: the arenas
/// where the plan records them (checkArenas on runtime::programMemoryPlan),
/// else the estimate's rule (checkMemory). A ScheduleError names the stage.
/// mllmc --emit=plan, a spec loaded by mllm-sim or mllm-run, and every
/// simulated plan (mllm-sim, each --compare variant) run it.
llvm::Error checkPlanMemory(const runtime::Plan &plan);

} // namespace mllm::sched

#endif // MLLM_SCHED_ARENAFIT_H
