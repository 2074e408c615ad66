//===- FromIR.h - pipeline graph from the planned mllm IR -------*- C++ -*-===//
#ifndef MLLM_SCHED_FROMIR_H
#define MLLM_SCHED_FROMIR_H

#include "mllm/Sched/Generate.h"

#include "mlir/IR/BuiltinOps.h"

namespace mllm::sched {

/// Reads the stages, their costs, memory and ranks from a module the plan
/// pipeline has run on (mllm.pipeline / mllm.stage, mllm.cluster,
/// mllm.data). Fails if the module has not been planned.
llvm::Expected<PipelineGraph> buildPipelineGraph(mlir::ModuleOp module);

} // namespace mllm::sched

#endif // MLLM_SCHED_FROMIR_H
