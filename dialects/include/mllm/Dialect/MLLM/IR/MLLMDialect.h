//===- MLLMDialect.h - mllm dialect -----------------------------*- C++ -*-===//
#ifndef MLLM_DIALECT_MLLM_IR_MLLMDIALECT_H
#define MLLM_DIALECT_MLLM_IR_MLLMDIALECT_H

#include "mlir/IR/Dialect.h"

#include "mllm/Dialect/MLLM/IR/MLLMDialect.h.inc"

#endif // MLLM_DIALECT_MLLM_IR_MLLMDIALECT_H
