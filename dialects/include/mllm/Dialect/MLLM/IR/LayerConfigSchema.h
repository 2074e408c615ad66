//===- LayerConfigSchema.h - who knows the layer-config keys ----*- C++ -*-===//
//
// The keys an `mllm.layers` config may hold, and which ones each kind needs,
// are defined once, outside the IR (the runtime's layer-config table, which
// the plan and the layers read too). The dialect asks for them through this
// interface, which the compiler attaches to the dialect when it registers
// it (registerAllMllmDialects); without it the verifier checks only the
// generic bounds.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_DIALECT_MLLM_IR_LAYERCONFIGSCHEMA_H
#define MLLM_DIALECT_MLLM_IR_LAYERCONFIGSCHEMA_H

#include "mllm/Dialect/MLLM/IR/MLLMEnums.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/DialectInterface.h"

namespace mllm {

class LayerConfigSchema
    : public mlir::DialectInterface::Base<LayerConfigSchema> {
public:
  LayerConfigSchema(mlir::Dialect *dialect) : Base(dialect) {}
  /// Checks the config of a layer group of `kind`; reports through
  /// `emitError` (the op's error).
  virtual mlir::LogicalResult verifyConfig(
      LayerKind kind, mlir::DictionaryAttr config,
      llvm::function_ref<mlir::InFlightDiagnostic()> emitError) const = 0;
};

} // namespace mllm

#endif // MLLM_DIALECT_MLLM_IR_LAYERCONFIGSCHEMA_H
