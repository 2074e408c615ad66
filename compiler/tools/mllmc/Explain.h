//===- Explain.h - why the compiler decided what it did ---------*- C++ -*-===//
#ifndef MLLM_TOOLS_MLLMC_EXPLAIN_H
#define MLLM_TOOLS_MLLMC_EXPLAIN_H

#include "mllm/Dialect/MLLM/IR/MLLMOps.h"
#include "mllm/runtime/Plan.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/Support/raw_ostream.h"

#include <string>

namespace mllm {
/// The stages whose in-flight microbatches memory-aware 1F1B lowered below
/// their warm-up, each as "NAME HELD of WANTED", saying when the cap is an
/// earlier stage's: what the rank map recorded (mllm/Plan/Memory.h) and
/// what the stage's program holds in the multimodal 1F1B schedule, which
/// carries caps down. `schedule`: the plan's, if built (else the schedule
/// is generated here).
llvm::SmallVector<std::string>
cappedStages(mllm::PipelineOp pipeline,
             const runtime::PlanSchedule *schedule = nullptr);

/// Prints why the compiler decided what it did: the frozen analysis per
/// part and a table of the pipeline stages. `schedule` as cappedStages'.
mlir::LogicalResult
printExplain(mlir::ModuleOp module, llvm::raw_ostream &os,
             const runtime::PlanSchedule *schedule = nullptr);
} // namespace mllm

#endif // MLLM_TOOLS_MLLMC_EXPLAIN_H
