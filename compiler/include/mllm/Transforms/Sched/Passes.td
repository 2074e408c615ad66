//===- Passes.td - sched dialect passes --------------------*- tablegen -*-===//
//
// From the planned mllm IR to a verified schedule: sched-generate writes the
// per-stage programs, sched-verify proves that they run to completion.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_TRANSFORMS_SCHED_PASSES_TD
#define MLLM_TRANSFORMS_SCHED_PASSES_TD

include "mlir/Pass/PassBase.td"

def GenerateSchedulePass : Pass<"sched-generate", "mlir::ModuleOp"> {
  let summary = "generate the per-stage programs of one training iteration";
  let description = [{
    Reads the stages, their costs, memory and ranks from a module the plan
    pipeline has run on (`mllm.pipeline` and its `mllm.stage`s,
    `mllm.cluster`, `mllm.data`; `buildPipelineGraph`), generates one
    program per pipeline stage with `generateSchedule` (mllm/Sched/
    Generate.h) and records them as one `sched.schedule` at the end of the
    module, replacing an earlier one. Each `sched.program` carries the
    location of its stage's `mllm.stage` (for colocated encoders, of the
    first encoder's), so diagnostics point at the plan.

    `kind`: `multimodal_1f1b` (default; fan-in of the encoder pipelines,
    frozen-aware, in-flight microbatches capped by memory), `linear_1f1b` (the
    Megatron-like baseline: the encoder stages first in one linear
    pipeline, every stage a full backward) or `gpipe`.

    Compute actions get the collectives of their stage's tp and cp as
    attributes (`tp_all_reduce`, `cp_all_gather`, `cp_reduce_scatter`).
  }];
  let dependentDialects = ["::mllm::sched_ir::SchedDialect"];
  let options = [
    Option<"kind", "kind", "std::string", /*default=*/"\"multimodal_1f1b\"",
           "schedule: multimodal_1f1b, linear_1f1b or gpipe">,
  ];
  let statistics = [
    Statistic<"numPrograms", "programs", "stage programs generated">,
    Statistic<"numActions", "actions", "actions generated">,
  ];
}

def VerifySchedulePass : Pass<"sched-verify", "mlir::ModuleOp"> {
  let summary = "prove that every schedule runs to completion";
  let description = [{
    For every `sched.schedule` in the module, rebuilds the per-stage
    programs from the IR and runs `verifySchedule`: every send has a
    matching receive (same pair of stages, kind, microbatch and size, in
    the same order) and executing the programs with blocking receives and
    asynchronous sends (posted, never blocking) never waits forever. A schedule that fails is an error
    on the program of the stage that is stuck (or on the schedule when no
    single stage is named), with the verifier's explanation.
  }];
  let dependentDialects = ["::mllm::sched_ir::SchedDialect"];
}

#endif // MLLM_TRANSFORMS_SCHED_PASSES_TD
