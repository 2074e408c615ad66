//===- MemoryIR.h - the static memory plan in the sched IR ------*- C++ -*-===//
//
// The memory plan of a program (mllm/runtime/MemoryPlan.h) as the
// discardable attribute `sched.memory` of its sched.program:
//
//   sched.memory = {arena = 12288, buffers = [
//       {bytes = 4096, kind = "saved", live = array<i64: 2, 9>, mb = 0,
//        offset = 0}, ...]}
//
// `mb` and `action` appear on the buffers that have them. sched-memory-plan
// writes it, sched-verify-memory and the lowering read it.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_SCHED_MEMORYIR_H
#define MLLM_SCHED_MEMORYIR_H

#include "mllm/Dialect/Sched/IR/SchedOps.h"
#include "mllm/Sched/Programs.h"
#include "mllm/runtime/MemoryPlan.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinOps.h"

namespace mllm::sched_ir {

/// The attribute's name on a sched.program.
constexpr llvm::StringLiteral kMemoryAttrName = "sched.memory";

mlir::DictionaryAttr toMemoryAttr(mlir::MLIRContext *context,
                                  const sched::MemoryPlan &plan);
/// The plan recorded on `program`, or an error saying what is malformed;
/// std::nullopt when it has none.
llvm::Expected<std::optional<sched::MemoryPlan>>
readMemoryPlan(ProgramOp program);

/// The cost model's sizes for the program's GPUs: the mllm.stage ops of the
/// module on the same ranks (or of the same name), weights + grads +
/// optimizer + activations as mllm-rank-map estimated them. std::nullopt
/// when the module has no such estimate.
std::optional<sched::StageSizes> costModelSizes(mlir::ModuleOp module,
                                                ProgramOp program);

/// The memory check on a schedule in IR (sched::checkArenas): each
/// program's static memory plan (`plans[i]` for program i, or computed
/// from costModelSizes when `plans` is empty) against the GPU memory of
/// the module's mllm.cluster. The error is emitted at the program of the
/// first stage that does not fit. Success when the module has no cluster or
/// no cost-model sizes (a schedule on its own).
mlir::LogicalResult checkScheduleMemory(mlir::ModuleOp module,
                                        ScheduleOp schedule,
                                        const ScheduleContents &contents,
                                        std::vector<sched::MemoryPlan> plans);

} // namespace mllm::sched_ir

#endif // MLLM_SCHED_MEMORYIR_H
