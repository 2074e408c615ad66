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
#include "mllm/Dialect/Sched/IR/SchedDialect.h"
#include "mllm/Model/Layers.h"

namespace mllm {
inline void registerAllMllmDialects(mlir::DialectRegistry &registry) {
  registry.insert<mllm::MLLMDialect>();
  model::registerLayerConfigSchema(registry);
}

/// Every mllm pass, for `mllm-opt --<pass>` and `--pass-pipeline`. Defined in
/// the MLLMTransforms library (link it to call this), so that tools which
/// only parse IR need neither that library nor its generated headers.
void registerAllMllmPasses();

/// The sched dialect (MLLMSchedDialect library): the schedules the tools
/// that plan or run a job read and write. Separate from
/// registerAllMllmDialects so that front-end-only tools need not link it.
inline void registerSchedDialect(mlir::DialectRegistry &registry) {
  registry.insert<mllm::sched_ir::SchedDialect>();
}

/// Every sched pass and the `sched-pipeline` (MLLMSchedTransforms library).
void registerAllSchedPasses();
} // namespace mllm

#endif // MLLM_TOOLS_REGISTERMLLM_H
