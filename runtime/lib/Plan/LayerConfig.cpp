//===- LayerConfig.cpp - the hyperparameters of a layer group -------------===//
#include "mllm/runtime/LayerConfig.h"

using namespace mllm::runtime;

bool LayerConfig::operator==(const LayerConfig &o) const {
  for (const LayerConfigKey &k : layerConfigKeys()) {
    switch (k.type) {
    case LayerConfigKey::Int:
      if (this->*k.intField != o.*k.intField)
        return false;
      break;
    case LayerConfigKey::Bool:
      if (this->*k.boolField != o.*k.boolField)
        return false;
      break;
    case LayerConfigKey::Float:
      if (this->*k.floatField != o.*k.floatField)
        return false;
      break;
    case LayerConfigKey::String:
      if (this->*k.stringField != o.*k.stringField)
        return false;
      break;
    }
  }
  return true;
}

bool LayerConfigKey::isSet(const LayerConfig &c) const {
  switch (type) {
  case Int:
    return c.*intField != intDefault;
  case Bool:
    return c.*boolField;
  case Float:
    return c.*floatField != 0;
  case String:
    return !(c.*stringField).empty();
  }
  return false;
}

namespace {
LayerConfigKey intKey(const char *name, int64_t LayerConfig::*field,
                      int64_t def = 0) {
  LayerConfigKey k{name, LayerConfigKey::Int};
  k.intField = field;
  k.intDefault = def;
  return k;
}
LayerConfigKey boolKey(const char *name, bool LayerConfig::*field) {
  LayerConfigKey k{name, LayerConfigKey::Bool};
  k.boolField = field;
  return k;
}
LayerConfigKey floatKey(const char *name, double LayerConfig::*field) {
  LayerConfigKey k{name, LayerConfigKey::Float};
  k.floatField = field;
  return k;
}
LayerConfigKey stringKey(const char *name, std::string LayerConfig::*field) {
  LayerConfigKey k{name, LayerConfigKey::String};
  k.stringField = field;
  return k;
}

const LayerConfigKey keys[] = {
    intKey("hidden", &LayerConfig::hidden),
    intKey("ffn", &LayerConfig::ffn),
    intKey("heads", &LayerConfig::heads),
    intKey("kv_heads", &LayerConfig::kvHeads),
    intKey("head_dim", &LayerConfig::headDim),
    intKey("vocab", &LayerConfig::vocab),
    intKey("patch", &LayerConfig::patch),
    intKey("channels", &LayerConfig::channels),
    intKey("temporal_patch", &LayerConfig::temporalPatch, 1),
    intKey("image_height", &LayerConfig::imageHeight),
    intKey("image_width", &LayerConfig::imageWidth),
    intKey("mel_bins", &LayerConfig::melBins),
    intKey("frames", &LayerConfig::frames),
    intKey("in", &LayerConfig::in),
    intKey("out", &LayerConfig::out),
    intKey("positions", &LayerConfig::positions),
    intKey("conv_kernel", &LayerConfig::convKernel),
    boolKey("gated", &LayerConfig::gated),
    boolKey("qkv_bias", &LayerConfig::qkvBias),
    boolKey("bias", &LayerConfig::bias),
    boolKey("layer_norm", &LayerConfig::layerNorm),
    boolKey("tied", &LayerConfig::tied),
    boolKey("class_token", &LayerConfig::classToken),
    stringKey("activation", &LayerConfig::activation),
    stringKey("position", &LayerConfig::position),
    floatKey("rope_theta", &LayerConfig::ropeTheta),
    floatKey("hop", &LayerConfig::hop),
};

const llvm::StringRef kinds[] = {
    "token_embedding",   "patch_embedding", "audio_frontend",
    "transformer_block", "conformer_block", "norm",
    "lm_head",           "linear",          "mlp",
    "attention_pool"};
} // namespace

llvm::ArrayRef<LayerConfigKey> mllm::runtime::layerConfigKeys() { return keys; }

const LayerConfigKey *mllm::runtime::findLayerConfigKey(llvm::StringRef name) {
  for (const LayerConfigKey &k : keys)
    if (name == k.name)
      return &k;
  return nullptr;
}

llvm::ArrayRef<llvm::StringRef> mllm::runtime::layerKindNames() {
  return kinds;
}

llvm::ArrayRef<llvm::StringRef>
mllm::runtime::requiredLayerConfigKeys(llvm::StringRef kind) {
  static const llvm::StringRef embed[] = {"vocab", "hidden"};
  static const llvm::StringRef patch[] = {"hidden", "patch", "channels"};
  static const llvm::StringRef audio[] = {"hidden", "mel_bins"};
  static const llvm::StringRef block[] = {"hidden", "ffn", "heads", "kv_heads",
                                          "head_dim"};
  static const llvm::StringRef norm[] = {"hidden"};
  static const llvm::StringRef head[] = {"hidden", "vocab"};
  static const llvm::StringRef linear[] = {"in", "out"};
  static const llvm::StringRef mlp[] = {"in", "hidden", "out"};
  static const llvm::StringRef pool[] = {"hidden", "ffn", "heads"};
  if (kind == "token_embedding")
    return embed;
  if (kind == "patch_embedding")
    return patch;
  if (kind == "audio_frontend")
    return audio;
  if (kind == "transformer_block" || kind == "conformer_block")
    return block;
  if (kind == "norm")
    return norm;
  if (kind == "lm_head")
    return head;
  if (kind == "linear")
    return linear;
  if (kind == "mlp")
    return mlp;
  if (kind == "attention_pool")
    return pool;
  return {};
}
