//===- Arena.h - the static memory plan per stage, for --explain -*- C++
//-*-===//
#ifndef MLLM_TOOLS_MLLMC_ARENA_H
#define MLLM_TOOLS_MLLMC_ARENA_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/raw_ostream.h"

namespace mllm {
/// Prints, for each program of the module's schedule, the arena of its
/// static memory plan next to the cost model's estimate. Nothing when the
/// module has no schedule.
void printArenaTable(mlir::ModuleOp module, llvm::raw_ostream &os);
} // namespace mllm

#endif // MLLM_TOOLS_MLLMC_ARENA_H
