//===- PlanBuilder.h - the plan model from the planned IR -------*- C++ -*-===//
//
// The one place where the compiler turns its IR into the plan model the
// simulator and the runtime read (mllm/runtime/Plan.h).
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_DRIVER_PLANBUILDER_H
#define MLLM_DRIVER_PLANBUILDER_H

#include "mllm/Dialect/MLLM/IR/MLLMOps.h"
#include "mllm/Sched/Generate.h"
#include "mllm/runtime/Plan.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"

#include <optional>

namespace mllm {

/// The plan of a module the plan pipeline has run on, with its schedule:
/// the sched.schedule the module holds when the schedule pipeline has run
/// on it, else, when `generate` names a kind, the programs of that kind
/// generated and verified in memory (sched::generateVerifiedSchedule, no
/// `sched` IR: a plan may hold more steps than a schedule in IR, Bounds.h).
/// Both give the same plan. `specFile` and `specHash` name the source it
/// was compiled from.
llvm::Expected<runtime::Plan>
buildPlan(mlir::ModuleOp module, llvm::StringRef specFile = "",
          llvm::StringRef specHash = "",
          std::optional<sched::ScheduleKind> generate = std::nullopt);

/// sched::checkPlanMemory on the plan of `module`, the error emitted at
/// the stage's `mllm.stage` (the spec's part), else at the pipeline.
mlir::LogicalResult checkPlanMemory(mlir::ModuleOp module,
                                    const runtime::Plan &plan);

} // namespace mllm

#endif // MLLM_DRIVER_PLANBUILDER_H
