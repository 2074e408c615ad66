//===- Passes.h - mllm dialect passes ---------------------------*- C++ -*-===//
//
// Passes on the mllm dialect (Passes.td): create*Pass() and the
// registration of all of them (registerMLLMPasses()).
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_DIALECT_MLLM_TRANSFORMS_PASSES_H
#define MLLM_DIALECT_MLLM_TRANSFORMS_PASSES_H

#include "mlir/Pass/Pass.h"

#include <memory>

namespace mllm {

#define GEN_PASS_DECL
#include "mllm/Dialect/MLLM/Transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "mllm/Dialect/MLLM/Transforms/Passes.h.inc"

/// registerMLLMPasses() as a library function; tools call it through
/// mllm/Tools/RegisterMllm.h.
void registerAllMllmPasses();

} // namespace mllm

#endif // MLLM_DIALECT_MLLM_TRANSFORMS_PASSES_H
