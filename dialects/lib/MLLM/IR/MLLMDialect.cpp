//===- MLLMDialect.cpp - mllm dialect registration ------------------------===//
#include "mllm/Dialect/MLLM/IR/MLLMDialect.h"
#include "mllm/Dialect/MLLM/IR/MLLMOps.h"

using namespace mlir;
using namespace mllm;

#include "mllm/Dialect/MLLM/IR/MLLMDialect.cpp.inc"

void MLLMDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "mllm/Dialect/MLLM/IR/MLLMOps.cpp.inc"
      >();
}
