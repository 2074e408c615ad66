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

#include "mllm/Dialect/MLLM/IR/MLLMOps.h"
#include "mllm/Sema/Spec.h"

#include <string>
#include <vector>

namespace mllm::model {

/// Shape of one layer. Which fields matter depends on the kind; unused ones
/// stay zero/false.
struct LayerShape {
  int64_t hidden = 0, ffn = 0, heads = 0, kvHeads = 0, headDim = 0;
  int64_t vocab = 0;
  int64_t patch = 0, channels = 0, temporalPatch = 1;
  int64_t melBins = 0;
  int64_t in = 0, out = 0; ///< Linear / MLP projectors.
  int64_t positions = 0;   ///< Rows of a learned position table.
  int64_t convKernel = 0;  ///< Conformer depthwise convolution.
  bool gated = false;      ///< SwiGLU/GeGLU feed-forward (3 matrices).
  bool qkvBias = false, bias = false;
  bool layerNorm = false; ///< LayerNorm (weight+bias) vs RMSNorm.
  bool tied = false;      ///< LM head shares the embedding matrix.
  bool classToken = false;
};

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

} // namespace mllm::model

#endif // MLLM_MODEL_LAYERS_H
