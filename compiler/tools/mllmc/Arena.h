//===- Arena.h - the static memory plan per stage, for --explain -*- C++
//-*-===//
#ifndef MLLM_TOOLS_MLLMC_ARENA_H
#define MLLM_TOOLS_MLLMC_ARENA_H

#include "mllm/runtime/Plan.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/raw_ostream.h"

namespace mllm {
/// Prints, for each program of the module's schedule, the arena of its
/// static memory plan next to the cost model's estimate. Nothing when the
/// module has no schedule.
void printArenaTable(mlir::ModuleOp module, llvm::raw_ostream &os);
/// The same for the programs of a plan's schedule (--emit=plan keeps them
/// in memory, not in the module). Nothing when the plan has no schedule.
void printArenaTable(const runtime::Plan &plan, llvm::raw_ostream &os);
} // namespace mllm

#endif // MLLM_TOOLS_MLLMC_ARENA_H
