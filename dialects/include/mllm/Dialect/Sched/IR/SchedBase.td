//===- SchedBase.td - sched dialect definition -------------*- tablegen -*-===//
//
// The `sched` dialect holds the schedule of one training iteration: for
// every pipeline stage, the program of actions (forward, backward, send,
// receive, gradient all-reduce, optimizer step) that every GPU of the stage
// runs, in order. It is produced from the planned `mllm` IR by
// `sched-generate`, proven deadlock-free by `sched-verify`, and written to
// the plan (docs/plan-format.md) for the runtime.
//
// The C++ namespace is `mllm::sched_ir`: `mllm::sched` is the plain C++
// schedule library (mllm/Sched/Schedule.h) that the passes call, and its
// names (Program, ScheduleKind, ...) must not collide with the ops'.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_DIALECT_SCHED_IR_SCHEDBASE_TD
#define MLLM_DIALECT_SCHED_IR_SCHEDBASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/EnumAttr.td"

def Sched_Dialect : Dialect {
  let name = "sched";
  let cppNamespace = "::mllm::sched_ir";
  let summary = "Per-stage action programs of a pipeline-parallel training iteration";
  let usePropertiesForAttributes = 1;
}

class Sched_Op<string mnemonic, list<Trait> traits = []>
    : Op<Sched_Dialect, mnemonic, traits>;

def Sched_ScheduleKind : I32EnumAttr<"ScheduleKind", "pipeline schedule", [
    I32EnumAttrCase<"MultimodalOneFOneB", 0, "multimodal_1f1b">,
    I32EnumAttrCase<"LinearOneFOneB", 1, "linear_1f1b">,
    I32EnumAttrCase<"GPipe", 2, "gpipe">]> {
  let cppNamespace = "::mllm::sched_ir";
}

#endif // MLLM_DIALECT_SCHED_IR_SCHEDBASE_TD
