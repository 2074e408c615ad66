//===- Generate.h - pipeline schedule generation ----------------*- C++ -*-===//
//
// The schedule rules of mllmc in one place: which actions each pipeline stage
// runs, in which order, for one training iteration. Multimodal 1F1B (several
// encoder pipelines fanning into the LLM, cornstarch-brief §B.3), its linear
// form for colocated encoders, and the baselines (Megatron-like 1F1B with
// the encoders as extra first stages; GPipe). The programs are the schedule
// model of mllm/runtime/Schedule.h, which also holds the verifier.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_SCHED_GENERATE_H
#define MLLM_SCHED_GENERATE_H

#include "mllm/Dialect/Sched/IR/SchedOps.h"
#include "mllm/runtime/Schedule.h"

namespace mllm::sched {

/// The schedule kinds are the sched dialect's (`multimodal_1f1b`,
/// `linear_1f1b`, `gpipe`): one enum and one spelling for the flags, the IR,
/// the plan and the docs.
using ScheduleKind = sched_ir::ScheduleKind;
using sched_ir::stringifyScheduleKind;
using sched_ir::symbolizeScheduleKind;

/// "multimodal_1f1b, linear_1f1b or gpipe", from the dialect's enum.
std::string scheduleKindNames();

/// Stages from each stage to the loss (a stage without successors) along
/// the longest path: LLM stage s of P: P - s - 1; stage s of an encoder of
/// P_e stages: P_e - s - 1 + P_llm.
std::vector<int64_t> stageDepths(const PipelineGraph &graph);

/// One program per stage, in stage order. The rules (warm-up, frozen
/// stages, memory caps, how sends and receives are ordered so that the
/// programs cannot deadlock) are described at the top of Generate.cpp.
std::vector<Program> generateSchedule(const PipelineGraph &graph,
                                      ScheduleKind kind);

/// generateSchedule() proven by verifySchedule(): the programs of `kind`,
/// or (a bug of the generator, never the spec's fault) the verifier's
/// error. The one way a schedule is made in memory, without `sched` IR:
/// --emit=plan, mllm-sim and mllm-run from a spec, rescheduling a plan file.
/// sched-verify runs the same verifier on the programs it reads back from
/// the IR.
llvm::Expected<std::vector<Program>>
generateVerifiedSchedule(const PipelineGraph &graph, ScheduleKind kind);

/// Checks every stage of `programs` against its GPU's memory with the rule
/// of the memory check (mllm/Plan/Memory.h): static bytes + the activations
/// of one microbatch x the most microbatches the program holds at once
/// (Program::maxInFlight) must fit StageInfo::memoryCapacity (0: no check).
/// Every schedule kind is checked, not only the memory-aware one. The error
/// names the first stage that does not fit, with its figures:
/// "stage 'llm_s0' needs 143.21 GiB per GPU under the linear_1f1b schedule
/// but a GPU has 131.00 GiB: static 40.00 GiB + activations 103.21 GiB
/// (12.90 GiB x 8 microbatches in flight); N of M stages do not fit".
llvm::Error checkMemory(const PipelineGraph &graph,
                        const std::vector<Program> &programs,
                        ScheduleKind kind);

} // namespace mllm::sched

#endif // MLLM_SCHED_GENERATE_H
