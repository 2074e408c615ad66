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

def MemoryPlanPass : Pass<"sched-memory-plan", "mlir::ModuleOp"> {
  let summary = "lay out every buffer of each program in one arena";
  let description = [{
    For every `sched.program`, lists the buffers one GPU of the stage needs
    in the iteration (`planMemory`, mllm/runtime/MemoryPlan.h): weights,
    gradients and optimizer state for the whole program; each received
    tensor from its receive to its last use; each microbatch's saved
    activations from its forward to its last backward; each sent tensor
    from the action that computes it to the end (sends are waited there);
    a workspace per compute action. Buffers whose lifetimes do not overlap
    share memory: greedy by size, first fit. The plan is recorded as the
    program's `sched.memory` attribute (mllm/Sched/MemoryIR.h) and checked
    with `verifyMemoryPlan`.

    Sizes not in the schedule come from the cost model's estimate on the
    module's `mllm.stage` ops on the same ranks (weights, grads, optimizer,
    activations per microbatch); without one, from the options.
  }];
  let dependentDialects = ["::mllm::sched_ir::SchedDialect"];
  let options = [
    Option<"savedBytes", "saved-bytes", "int64_t", /*default=*/"0",
           "activations a microbatch keeps for its backward, where the "
           "module has no cost-model estimate">,
    Option<"workspaceBytes", "workspace-bytes", "int64_t", /*default=*/"0",
           "temporaries of one compute action">,
  ];
  let statistics = [
    Statistic<"numBuffers", "buffers", "buffers planned">,
  ];
}

def VerifyMemoryPlanPass : Pass<"sched-verify-memory", "mlir::ModuleOp"> {
  let summary = "check the static memory plans of the programs";
  let description = [{
    For every `sched.program` with a `sched.memory` attribute, runs
    `verifyMemoryPlan`: every buffer inside the arena and aligned, no two
    buffers whose lifetimes overlap share a byte, every buffer an action
    reads or writes live at that action, every message buffer as large as
    its message. Errors point at the action (else the program).
  }];
  let dependentDialects = ["::mllm::sched_ir::SchedDialect"];
}

def LowerStepsPass : Pass<"sched-lower-steps", "mlir::ModuleOp"> {
  let summary = "lower each program to a step function calling the runtime";
  let description = [{
    Replaces the module's `sched.schedule` by one function per program,
    `@mllm_step_<i>(!llvm.ptr) -> i32` for program i (in stage order), that
    performs the program's actions through the runtime's C ABI
    (mllm/runtime/StepABI.h): `mllm_rt_begin`, then one `mllm_rt_<action>`
    call per action with the action's index, microbatch, peer stage, tag,
    bytes and arena offset as constants. Every call returns a status; the
    function returns the first non-zero one at once.

    Runs of actions that repeat with the microbatch (and tag) shifted, as
    `findActionRuns` finds them (the steady state of 1F1B, the forwards of
    GPipe), become one `scf.for` whose body computes the microbatch, tag
    and action index from the induction variable and reads the arena
    offsets from a constant table (`@mllm_offsets_<i>`), so the code does
    not grow with the microbatch count. Inside a loop each call runs only
    while the status is 0. `loops=false` emits every action in line.

    Offsets come from the program's `sched.memory` plan (-1 without one).
    Everything else in the module is erased: the result is the input of
    the LLVM conversion and of the JIT.
  }];
  let dependentDialects = ["::mlir::func::FuncDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::cf::ControlFlowDialect",
                           "::mlir::LLVM::LLVMDialect"];
  let options = [
    Option<"program", "program", "int64_t", /*default=*/"-1",
           "lower only this program (its index in stage order); -1: all">,
    Option<"loops", "loops", "bool", /*default=*/"true",
           "emit repeated runs of actions as loops">,
  ];
  let statistics = [
    Statistic<"numCalls", "calls", "runtime calls emitted">,
    Statistic<"numLoops", "loops", "loops emitted">,
  ];
}

#endif // MLLM_TRANSFORMS_SCHED_PASSES_TD
