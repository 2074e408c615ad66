//===- RegisterMllm.h - dialects and passes every tool sees -----*- C++ -*-===//
//
// One registration point shared by mllm-opt, mllmc and later tools, so that
// every tool accepts the same IR and knows the same passes.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_TOOLS_REGISTERMLLM_H
#define MLLM_TOOLS_REGISTERMLLM_H

#include "mlir/IR/DialectRegistry.h"
#include "mllm/Dialect/MLLM/IR/MLLMDialect.h"

namespace mllm {
inline void registerAllMllmDialects(mlir::DialectRegistry &registry) {
  registry.insert<mllm::MLLMDialect>();
}

/// Every mllm pass, for `mllm-opt --<pass>` and `--pass-pipeline`. Defined in
/// the MLLMTransforms library (link it to call this), so that tools which
/// only parse IR need neither that library nor its generated headers.
void registerAllMllmPasses();
} // namespace mllm

#endif // MLLM_TOOLS_REGISTERMLLM_H
