//===- SchedOps.h - sched dialect operations --------------------*- C++ -*-===//
#ifndef MLLM_DIALECT_SCHED_IR_SCHEDOPS_H
#define MLLM_DIALECT_SCHED_IR_SCHEDOPS_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/SymbolTable.h"

#include "mllm/Dialect/Sched/IR/SchedDialect.h"
#include "mllm/Dialect/Sched/IR/SchedEnums.h.inc"

namespace mllm::sched_ir {
class ScheduleOp;
} // namespace mllm::sched_ir

#define GET_OP_CLASSES
#include "mllm/Dialect/Sched/IR/SchedOps.h.inc"

#endif // MLLM_DIALECT_SCHED_IR_SCHEDOPS_H
