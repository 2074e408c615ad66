//===- Layers.h - layer groups of a network and their parameters -*- C++
//-*-===//
//
// The single definition of how a network described by its hyperparameters
// expands into groups of identical layers, and how many parameters each
// layer has. MLIRGen emits these groups as `mllm.layers`; the parameter
// counts feed the driver's summary, the stdlib test and the cost model.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_MODEL_LAYERS_H
#define MLLM_MODEL_LAYERS_H

#include "mlir/IR/DialectRegistry.h"
#include "mllm/Dialect/MLLM/IR/MLLMOps.h"
#include "mllm/Sema/Spec.h"
#include "mllm/runtime/LayerConfig.h"

#include <string>
#include <vector>

namespace mllm::model {

/// Shape of one layer: the runtime's LayerConfig, whose key table is the
/// one definition of the `mllm.layers` config keys.
using LayerShape = runtime::LayerConfig;

struct LayerGroup {
  std::string name;
  LayerKind kind;
  int64_t count = 1;
  LayerShape shape;
};

/// The layer groups of an encoder or LLM, in execution order.
std::vector<LayerGroup> expand(const spec::ArchConfig &config);
/// The layer groups of a projector.
std::vector<LayerGroup> expand(const spec::Projector &projector);

/// Parameters of one layer of the group (not multiplied by `count`).
int64_t paramsPerLayer(LayerKind kind, const LayerShape &shape);
/// Parameters of all layers of all groups.
int64_t totalParams(const std::vector<LayerGroup> &groups);

/// The config dictionary of an `mllm.layers` op, and back.
mlir::DictionaryAttr toConfig(mlir::MLIRContext *context, LayerKind kind,
                              const LayerShape &shape);
LayerShape fromConfig(mlir::DictionaryAttr config);

/// Attaches the layer-config table to the mllm dialect, so its verifier
/// checks every config against it (LayerConfigSchema.h).
void registerLayerConfigSchema(mlir::DialectRegistry &registry);

} // namespace mllm::model

#endif // MLLM_MODEL_LAYERS_H
