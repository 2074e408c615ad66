//===- JITDriver.h - mllm-run's compiled step functions ---------*- C++ -*-===//
#ifndef MLLM_TOOLS_MLLMRUN_JITDRIVER_H
#define MLLM_TOOLS_MLLMRUN_JITDRIVER_H

#include "mllm/runtime/exec/RankRunner.h"

#include "mlir/IR/MLIRContext.h"

namespace mllm {

/// Makes every executor of this process (RankRunner, Trainer and their
/// device counterparts) run its steps through a step function compiled for
/// its program: the program's schedule as sched IR (a rank's: the plan's;
/// the one-process run's: its one-stage program), the program's static
/// memory plan, sched-to-llvm, ORC
/// (runtime/jit/StepJIT.h) with the C ABI bound by name. Rank 0 (every rank
/// with `json`) prints how long lowering and code generation took. With
/// `stepFile` (`mllmc --emit=llvm` output) the ranks compile its
/// @mllm_step_<program> instead of lowering the plan; the C ABI's checks
/// refuse code that does not match the plan.
void useCompiledSteps(mlir::MLIRContext &context, bool json,
                      llvm::StringRef stepFile = "");

} // namespace mllm

#endif // MLLM_TOOLS_MLLMRUN_JITDRIVER_H
