//===- Passes.h - mllm dialect passes ---------------------------*- C++ -*-===//
//
// Passes on the mllm dialect (Passes.td): create*Pass() and the
// registration of all of them (registerMLLMPasses()).
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_TRANSFORMS_MLLM_PASSES_H
#define MLLM_TRANSFORMS_MLLM_PASSES_H

#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"

#include <memory>

namespace mllm {

#define GEN_PASS_DECL
#include "mllm/Transforms/MLLM/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "mllm/Transforms/MLLM/Passes.h.inc"

/// Options of the plan pipeline (what mllmc runs for --emit=mllm|plan).
struct PlanPipelineOptions
    : public mlir::PassPipelineOptions<PlanPipelineOptions> {
  Option<std::string> profile{
      *this, "profile",
      llvm::cl::desc("measured per-layer times (docs/cost-model.md)"),
      llvm::cl::init("")};
  Option<int64_t> searchBudget{
      *this, "search-budget",
      llvm::cl::desc("plans the search over every cut may price"),
      llvm::cl::init(10000)}; // plan::kDefaultSearchBudget
};

/// frozen analysis -> partition -> rank map (+ memory check) -> CP balance.
/// mllmc and `mllm-opt --mllm-plan-pipeline` share it, so they cannot drift.
void populatePlanPipeline(mlir::OpPassManager &pm,
                          const PlanPipelineOptions &options);

/// registerMLLMPasses() and the plan pipeline as a library function; tools
/// call it through mllm/Tools/RegisterMllm.h.
void registerAllMllmPasses();

} // namespace mllm

#endif // MLLM_TRANSFORMS_MLLM_PASSES_H
