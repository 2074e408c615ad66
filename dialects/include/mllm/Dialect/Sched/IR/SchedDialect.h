//===- SchedDialect.h - sched dialect ---------------------------*- C++ -*-===//
#ifndef MLLM_DIALECT_SCHED_IR_SCHEDDIALECT_H
#define MLLM_DIALECT_SCHED_IR_SCHEDDIALECT_H

#include "mlir/IR/Dialect.h"

#include "mllm/Dialect/Sched/IR/SchedDialect.h.inc"

#endif // MLLM_DIALECT_SCHED_IR_SCHEDDIALECT_H
