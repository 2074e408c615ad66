//===- LayerConfig.h - the hyperparameters of a layer group -----*- C++ -*-===//
//
// The one definition of a layer's hyperparameters and of the keys that spell
// them: the `config` dictionary of an `mllm.layers` op, the `config` map of
// a layer group in the plan file, the shape keys of a measured profile and
// the layer constructors of the runtime all read this table. A key is
// written only when its value differs from the default, so a dictionary
// holds what matters for its kind.
//
// The layer kinds are spelled as the mllm dialect spells them
// (`transformer_block`, ...); which keys a kind needs is part of the table.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_LAYERCONFIG_H
#define MLLM_RUNTIME_LAYERCONFIG_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <string>

namespace mllm::runtime {

/// Hyperparameters of one layer. Which fields matter depends on the kind;
/// unused ones keep their defaults.
struct LayerConfig {
  int64_t hidden = 0, ffn = 0, heads = 0, kvHeads = 0, headDim = 0;
  int64_t vocab = 0;
  int64_t patch = 0, channels = 0, temporalPatch = 1;
  /// Patch embedding: the image, in pixels (height x width).
  int64_t imageHeight = 0, imageWidth = 0;
  /// Audio front end: mel bins, and mel frames per item it reads.
  int64_t melBins = 0, frames = 0;
  int64_t in = 0, out = 0; ///< Linear / MLP projectors.
  int64_t positions = 0;   ///< Rows of a learned or sinusoidal table.
  int64_t convKernel = 0;  ///< Conformer depthwise convolution.
  bool gated = false;      ///< SwiGLU/GeGLU feed-forward (3 matrices).
  bool qkvBias = false, bias = false;
  bool layerNorm = false; ///< LayerNorm (weight+bias) vs RMSNorm.
  bool tied = false;      ///< LM head shares the embedding matrix.
  bool classToken = false;
  /// Feed-forward (or projector MLP) activation, as the language spells it:
  /// swiglu, geglu, gelu, relu, silu. Empty: not applicable.
  std::string activation;
  /// Position encoding of the layer: rope, learned, sinusoidal, alibi or
  /// none. Empty: not applicable.
  std::string position;
  double ropeTheta = 0; ///< RoPE base.
  /// Audio front end: seconds between mel frames (the spec's `hop`); 0 is
  /// the language's default, 10 ms, and is not written.
  double hop = 0;

  bool operator==(const LayerConfig &o) const;
  bool operator!=(const LayerConfig &o) const { return !(*this == o); }
};

/// One key of the table.
struct LayerConfigKey {
  enum Type { Int, Bool, Float, String };
  const char *name;
  Type type;
  int64_t LayerConfig::*intField = nullptr;
  bool LayerConfig::*boolField = nullptr;
  double LayerConfig::*floatField = nullptr;
  std::string LayerConfig::*stringField = nullptr;
  /// The default: the value of a key that is not written.
  int64_t intDefault = 0;

  /// Whether `config` holds a non-default value for this key.
  bool isSet(const LayerConfig &config) const;
};

/// Every key, in the order dictionaries and plans write them.
llvm::ArrayRef<LayerConfigKey> layerConfigKeys();
const LayerConfigKey *findLayerConfigKey(llvm::StringRef name);

/// The layer kinds, as spelled in the IR and the plan.
llvm::ArrayRef<llvm::StringRef> layerKindNames();
/// The integer keys a layer of `kind` must have, each positive. Empty for an
/// unknown kind.
llvm::ArrayRef<llvm::StringRef> requiredLayerConfigKeys(llvm::StringRef kind);

} // namespace mllm::runtime

#endif // MLLM_RUNTIME_LAYERCONFIG_H
