//===- Passes.h - sched dialect passes --------------------------*- C++ -*-===//
//
// Passes on the sched dialect (Passes.td): create*Pass(), their
// registration (registerSchedPasses()) and the schedule pipeline.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_TRANSFORMS_SCHED_PASSES_H
#define MLLM_TRANSFORMS_SCHED_PASSES_H

#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"

#include <memory>

namespace mllm::sched_ir {

#define GEN_PASS_DECL
#include "mllm/Transforms/Sched/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "mllm/Transforms/Sched/Passes.h.inc"

/// Options of the schedule pipeline.
struct SchedPipelineOptions
    : public mlir::PassPipelineOptions<SchedPipelineOptions> {
  Option<std::string> kind{
      *this, "kind",
      llvm::cl::desc("schedule: multimodal_1f1b, linear_1f1b or gpipe"),
      llvm::cl::init("multimodal_1f1b")};
};

/// sched-generate -> sched-verify, on a module the plan pipeline has run
/// on. mllmc (--emit=sched|plan) and `mllm-opt --sched-pipeline` share it.
void populateSchedPipeline(mlir::OpPassManager &pm,
                           const SchedPipelineOptions &options);

/// Options of the lowering to the LLVM dialect.
struct SchedToLLVMOptions
    : public mlir::PassPipelineOptions<SchedToLLVMOptions> {
  Option<int64_t> program{
      *this, "program",
      llvm::cl::desc("lower only this program (index in stage order); -1: all"),
      llvm::cl::init(-1)};
  Option<bool> loops{*this, "loops",
                     llvm::cl::desc("emit repeated runs of actions as loops"),
                     llvm::cl::init(true)};
  Option<bool> memoryPlan{
      *this, "memory-plan",
      llvm::cl::desc("plan each program's memory first (else the programs' "
                     "sched.memory, as recorded, is used)"),
      llvm::cl::init(true)};
};

/// sched-memory-plan -> sched-lower-steps -> the upstream conversions to
/// the LLVM dialect, on a module with one verified sched.schedule: what
/// `mllmc --emit=llvm` prints and mllm-run JIT-compiles. `mllm-opt
/// --sched-to-llvm` runs it.
void populateSchedToLLVMPipeline(mlir::OpPassManager &pm,
                                 const SchedToLLVMOptions &options);

} // namespace mllm::sched_ir

namespace mllm {
/// registerSchedPasses() and the schedule pipeline (`sched-pipeline`);
/// tools call it through mllm/Tools/RegisterMllm.h.
void registerAllSchedPasses();
} // namespace mllm

#endif // MLLM_TRANSFORMS_SCHED_PASSES_H
