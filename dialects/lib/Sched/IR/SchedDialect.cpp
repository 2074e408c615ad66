//===- SchedDialect.cpp - sched dialect registration ----------------------===//
#include "mllm/Dialect/Sched/IR/SchedDialect.h"
#include "mllm/Dialect/Sched/IR/SchedOps.h"

using namespace mlir;
using namespace mllm::sched_ir;

#include "mllm/Dialect/Sched/IR/SchedDialect.cpp.inc"

void SchedDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "mllm/Dialect/Sched/IR/SchedOps.cpp.inc"
      >();
}
