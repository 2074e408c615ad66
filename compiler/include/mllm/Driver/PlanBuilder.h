//===- PlanBuilder.h - the plan model from the planned IR -------*- C++ -*-===//
//
// The one place where the compiler turns its IR into the plan model the
// simulator and the runtime read (mllm/runtime/Plan.h).
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_DRIVER_PLANBUILDER_H
#define MLLM_DRIVER_PLANBUILDER_H

#include "mllm/Dialect/MLLM/IR/MLLMOps.h"
#include "mllm/runtime/Plan.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"

namespace mllm {

/// The plan of a module the plan pipeline has run on, with its schedule when
/// the schedule pipeline has run too. `specFile` and `specHash` name the
/// source it was compiled from.
llvm::Expected<runtime::Plan> buildPlan(mlir::ModuleOp module,
                                        llvm::StringRef specFile = "",
                                        llvm::StringRef specHash = "");

} // namespace mllm

#endif // MLLM_DRIVER_PLANBUILDER_H
