//===- MLLMOps.h - mllm dialect operations ----------------------*- C++ -*-===//
#ifndef MLLM_DIALECT_MLLM_IR_MLLMOPS_H
#define MLLM_DIALECT_MLLM_IR_MLLMOPS_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/SymbolTable.h"

#include "mllm/Dialect/MLLM/IR/MLLMDialect.h"
#include "mllm/Dialect/MLLM/IR/MLLMEnums.h"

namespace mllm {
class LLMOp;
class ModuleParallelOp;
} // namespace mllm

#define GET_OP_CLASSES
#include "mllm/Dialect/MLLM/IR/MLLMOps.h.inc"

namespace mllm {
/// The job-level op of type OpTy in `module` (a job has at most one of each:
/// model, data, cluster, parallel, train, pipeline), or null.
template <typename OpTy>
OpTy getFirst(mlir::ModuleOp module) {
  for (OpTy op : module.getOps<OpTy>())
    return op;
  return {};
}

/// The projector reading encoder `encoder` of `model`, or null.
ProjectorOp projectorOf(ModelOp model, llvm::StringRef encoder);
} // namespace mllm

#endif // MLLM_DIALECT_MLLM_IR_MLLMOPS_H
