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
#include "mllm/Dialect/MLLM/IR/MLLMEnums.h.inc"

namespace mllm {
class LLMOp;
} // namespace mllm

#define GET_OP_CLASSES
#include "mllm/Dialect/MLLM/IR/MLLMOps.h.inc"

#endif // MLLM_DIALECT_MLLM_IR_MLLMOPS_H
