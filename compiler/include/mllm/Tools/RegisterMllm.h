//===- RegisterMllm.h - dialects and passes every tool sees -----*- C++ -*-===//
//
// One registration point shared by mllm-opt, mllmc and later tools, so that
// every tool accepts the same IR.
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
} // namespace mllm

#endif // MLLM_TOOLS_REGISTERMLLM_H
