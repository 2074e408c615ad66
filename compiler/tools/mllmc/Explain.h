//===- Explain.h - why the compiler decided what it did ---------*- C++ -*-===//
#ifndef MLLM_TOOLS_MLLMC_EXPLAIN_H
#define MLLM_TOOLS_MLLMC_EXPLAIN_H

#include "mllm/Dialect/MLLM/IR/MLLMOps.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/Support/raw_ostream.h"

#include <string>

namespace mllm {
/// The stages whose in-flight microbatches memory-aware 1F1B lowered below
/// their warm-up (the rank map's rule, mllm/Plan/Memory.h, from the
/// recorded counts, with an earlier stage's cap carried down as the
/// schedule does), each as "NAME HELD of WANTED", saying when the cap is
/// an earlier stage's.
llvm::SmallVector<std::string> cappedStages(mllm::PipelineOp pipeline);

/// Prints why the compiler decided what it did: the frozen analysis per
/// part and a table of the pipeline stages.
mlir::LogicalResult printExplain(mlir::ModuleOp module, llvm::raw_ostream &os);
} // namespace mllm

#endif // MLLM_TOOLS_MLLMC_EXPLAIN_H
