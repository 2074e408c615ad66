//===- LayerSchema.cpp - the layer-config keys, attached to the dialect ---===//
//
// Implements the mllm dialect's LayerConfigSchema with the runtime's
// layer-config table, so the IR verifier, the plan and the layers check the
// same keys.
//
//===----------------------------------------------------------------------===//
#include "mllm/Model/Layers.h"

#include "mllm/Dialect/MLLM/IR/LayerConfigSchema.h"
#include "mllm/Dialect/MLLM/IR/MLLMDialect.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/DialectRegistry.h"

using namespace mlir;
using namespace mllm;

namespace {

struct RuntimeLayerConfigSchema : public LayerConfigSchema {
  using LayerConfigSchema::LayerConfigSchema;

  LogicalResult verifyConfig(
      LayerKind kind, DictionaryAttr config,
      llvm::function_ref<InFlightDiagnostic()> emitError) const override {
    StringRef kindName = stringifyLayerKind(kind);
    for (StringRef key : runtime::requiredLayerConfigKeys(kindName)) {
      auto attr = dyn_cast_or_null<IntegerAttr>(config.get(key));
      if (!attr)
        return emitError() << "of kind '" << kindName
                           << "' needs integer config '" << key << "'";
      if (attr.getInt() <= 0)
        return emitError() << "config '" << key << "' must be positive, got "
                           << attr.getInt();
    }
    for (NamedAttribute entry : config) {
      StringRef name = entry.getName().getValue();
      const runtime::LayerConfigKey *key = runtime::findLayerConfigKey(name);
      if (!key)
        return emitError() << "has an unknown config key '" << name << "'";
      bool typed = false;
      switch (key->type) {
      case runtime::LayerConfigKey::Int:
        typed = isa<IntegerAttr>(entry.getValue());
        break;
      case runtime::LayerConfigKey::Bool:
        typed = isa<UnitAttr>(entry.getValue());
        break;
      case runtime::LayerConfigKey::Float:
        typed = isa<FloatAttr>(entry.getValue());
        break;
      case runtime::LayerConfigKey::String:
        typed = isa<StringAttr>(entry.getValue());
        break;
      }
      if (!typed)
        return emitError() << "config '" << name << "' has the wrong type";
    }
    return success();
  }
};

} // namespace

void mllm::model::registerLayerConfigSchema(DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *, MLLMDialect *dialect) {
    dialect->addInterfaces<RuntimeLayerConfigSchema>();
  });
}
