//===- Plan.h - the YAML plan and the --explain report ----------*- C++ -*-===//
#ifndef MLLM_TOOLS_MLLMC_PLAN_H
#define MLLM_TOOLS_MLLMC_PLAN_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/raw_ostream.h"

namespace mllm {
/// Writes the plan of a compiled job (the IR after the mllmc pipeline) as
/// YAML, schema version 2 (docs/plan-format.md), with the schedule of the
/// sched.schedule op the sched pipeline recorded. `specFile` names the spec.
mlir::LogicalResult writePlan(mlir::ModuleOp module, llvm::StringRef specFile,
                              llvm::raw_ostream &os);

/// Prints why the compiler decided what it did: the frozen analysis per
/// part and a table of the pipeline stages.
mlir::LogicalResult printExplain(mlir::ModuleOp module, llvm::raw_ostream &os);
} // namespace mllm

#endif // MLLM_TOOLS_MLLMC_PLAN_H
