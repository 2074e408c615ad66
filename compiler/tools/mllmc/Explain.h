//===- Explain.h - why the compiler decided what it did ---------*- C++ -*-===//
#ifndef MLLM_TOOLS_MLLMC_EXPLAIN_H
#define MLLM_TOOLS_MLLMC_EXPLAIN_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/raw_ostream.h"

namespace mllm {
/// Prints why the compiler decided what it did: the frozen analysis per
/// part and a table of the pipeline stages.
mlir::LogicalResult printExplain(mlir::ModuleOp module, llvm::raw_ostream &os);
} // namespace mllm

#endif // MLLM_TOOLS_MLLMC_EXPLAIN_H
