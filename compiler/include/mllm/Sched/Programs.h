//===- Programs.h - sched IR <-> schedule programs --------------*- C++ -*-===//
//
// The bridge between the sched dialect and the plain C++ schedule library
// (mllm/Sched/Schedule.h): build a sched.schedule from generated programs,
// and read the programs (and what the IR records of the pipeline graph)
// back, for the verifier, the plan writer and the simulator.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_SCHED_PROGRAMS_H
#define MLLM_SCHED_PROGRAMS_H

#include "mllm/Dialect/Sched/IR/SchedOps.h"
#include "mllm/Sched/Generate.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"

#include <vector>

namespace mllm::sched_ir {

/// The action kind of an action op (one of the sched.* ops a program holds).
sched::ActionKind getActionKind(mlir::Operation *op);

/// The `shape` attribute of a send/recv (an array of ranked tensor types)
/// for a message's tensors, and back.
mlir::ArrayAttr toShapeAttr(mlir::OpBuilder &builder,
                            const sched::MessageShape &shape);
sched::MessageShape fromShapeAttr(mlir::ArrayAttr shape);

/// Whether the schedule of `graph` may be materialised as IR: at most
/// bounds::kMaxScheduleSteps stage x microbatch steps (a plan holds more,
/// kMaxPlanSteps, generated in memory). Reports it otherwise, at the job's
/// data layout (the spec's `data` block), with how to fix it.
mlir::LogicalResult checkScheduleSize(mlir::ModuleOp module,
                                      const sched::PipelineGraph &graph);

/// Builds one sched.schedule for `programs` (one per stage of `graph`, in
/// stage order) at the builder's insertion point. `stageLocs`, when not
/// empty, gives each program's location (one per stage).
ScheduleOp buildSchedule(mlir::OpBuilder &builder, mlir::Location loc,
                         const sched::PipelineGraph &graph,
                         llvm::ArrayRef<sched::Program> programs,
                         sched::ScheduleKind kind,
                         llvm::ArrayRef<mlir::Location> stageLocs = {});

/// A verified sched.schedule read back. `graph` holds what the IR records:
/// the stages' names, parts, ranks and degrees, the microbatch count, the
/// edges (prev: the peers activations come from, in order of first
/// receive; next: the peers they go to; gradToPrev: whether a gradient
/// goes back to that peer), outputBytes and outputShape (the largest
/// activation send), the actions' tags and shapes,
/// whether the stage needs input and weight gradients (it has backward
/// actions of that kind). Costs and memory are not in the IR and are 0.
struct ScheduleContents {
  sched::PipelineGraph graph;
  std::vector<sched::Program> programs;
  /// programOps[s] is the op of programs[s]; actionOps[s][i] the op of
  /// programs[s].actions[i].
  std::vector<ProgramOp> programOps;
  std::vector<std::vector<mlir::Operation *>> actionOps;
};
ScheduleContents readSchedule(ScheduleOp schedule);

} // namespace mllm::sched_ir

#endif // MLLM_SCHED_PROGRAMS_H
