//===- Layers.cpp - layer groups of a network and their parameters --------===//
#include "mllm/Model/Layers.h"

#include "mlir/IR/Builders.h"

using namespace mllm;
using namespace mllm::model;
using spec::Arch;

static LayerShape blockShape(const spec::ArchConfig &c) {
  LayerShape s;
  s.hidden = c.hidden;
  s.ffn = c.ffn;
  s.heads = c.heads;
  s.kvHeads = c.kvHeads;
  s.headDim = c.headDim;
  s.gated = c.gated();
  s.qkvBias = c.qkvBias;
  s.bias = c.bias;
  s.layerNorm = c.norm == spec::Norm::LayerNorm;
  s.activation = spec::toString(c.activation);
  // Attention-level positions ride with the blocks; table positions with the
  // embedding that adds them.
  if (c.position == spec::Position::RoPE) {
    s.position = "rope";
    // Encoders have no rope_theta field: RoPE's usual base.
    s.ropeTheta = c.ropeTheta > 0 ? c.ropeTheta : 10000;
  } else if (c.position == spec::Position::ALiBi) {
    s.position = "alibi";
  }
  if (c.arch == spec::Arch::AudioEncoder && c.block == spec::Block::Conformer)
    s.convKernel = c.convKernel;
  return s;
}

std::vector<LayerGroup> model::expand(const spec::ArchConfig &c) {
  std::vector<LayerGroup> groups;
  LayerShape block = blockShape(c);
  LayerShape norm;
  norm.hidden = c.hidden;
  norm.layerNorm = block.layerNorm;

  switch (c.arch) {
  case Arch::Decoder: {
    LayerShape embed;
    embed.hidden = c.hidden;
    embed.vocab = c.vocab;
    if (c.position == spec::Position::Learned) {
      embed.positions = c.maxPositions;
      embed.position = "learned";
    }
    groups.push_back({"embed", LayerKind::TokenEmbedding, 1, embed});
    groups.push_back({"blocks", LayerKind::TransformerBlock, c.layers, block});
    groups.push_back({"final_norm", LayerKind::Norm, 1, norm});
    LayerShape head;
    head.hidden = c.hidden;
    head.vocab = c.vocab;
    head.tied = c.tieEmbeddings;
    groups.push_back({"lm_head", LayerKind::LMHead, 1, head});
    break;
  }
  case Arch::VisionEncoder: {
    LayerShape embed;
    embed.hidden = c.hidden;
    embed.patch = c.patch;
    embed.channels = c.channels;
    embed.temporalPatch = c.temporalPatch;
    embed.bias = c.bias;
    embed.classToken = c.classToken;
    embed.imageHeight = c.imageHeight;
    embed.imageWidth = c.imageWidth;
    if (c.position == spec::Position::Learned) {
      embed.positions = (c.imageWidth / c.patch) * (c.imageHeight / c.patch) +
                        (c.classToken ? 1 : 0);
      embed.position = "learned";
    }
    groups.push_back({"patch_embed", LayerKind::PatchEmbedding, 1, embed});
    groups.push_back({"blocks", LayerKind::TransformerBlock, c.layers, block});
    groups.push_back({"post_norm", LayerKind::Norm, 1, norm});
    if (c.poolingHead) {
      LayerShape pool = block;
      pool.kvHeads = c.heads;
      groups.push_back({"pool_head", LayerKind::AttentionPool, 1, pool});
    }
    break;
  }
  case Arch::AudioEncoder: {
    LayerShape front;
    front.hidden = c.hidden;
    front.melBins = c.melBins;
    front.frames = c.maxFrames * c.downsample;
    // The data path computes the mel frames with it (absent: 10 ms).
    front.hop = c.hopSeconds != 0.01 ? c.hopSeconds : 0;
    if (c.position == spec::Position::Learned ||
        c.position == spec::Position::Sinusoidal) {
      front.positions = c.maxFrames;
      front.position = spec::toString(c.position);
    }
    groups.push_back({"frontend", LayerKind::AudioFrontend, 1, front});
    groups.push_back({"blocks",
                      c.block == spec::Block::Conformer
                          ? LayerKind::ConformerBlock
                          : LayerKind::TransformerBlock,
                      c.layers, block});
    groups.push_back({"post_norm", LayerKind::Norm, 1, norm});
    break;
  }
  }
  return groups;
}

std::vector<LayerGroup> model::expand(const spec::Projector &p) {
  LayerShape s;
  s.in = p.in;
  s.out = p.out;
  s.hidden = p.kind == spec::ProjectorKind::MLP ? p.hidden : 0;
  if (p.kind == spec::ProjectorKind::MLP)
    s.activation = spec::toString(p.activation);
  if (p.kind == spec::ProjectorKind::Linear)
    return {{"linear", LayerKind::Linear, 1, s}};
  return {{"mlp", LayerKind::MLP, 1, s}};
}

static int64_t normParams(const LayerShape &s) {
  return s.layerNorm ? 2 * s.hidden : s.hidden;
}

/// Feed-forward of a transformer block: two or three matrices.
static int64_t ffnParams(const LayerShape &s) {
  int64_t p = (s.gated ? 3 : 2) * s.hidden * s.ffn;
  if (s.bias)
    p += (s.gated ? 2 : 1) * s.ffn + s.hidden;
  return p;
}

static int64_t attentionParams(const LayerShape &s) {
  int64_t q = s.heads * s.headDim, kv = s.kvHeads * s.headDim;
  int64_t p = s.hidden * (q + 2 * kv) + q * s.hidden;
  if (s.qkvBias)
    p += q + 2 * kv;
  if (s.bias)
    p += s.hidden;
  return p;
}

int64_t model::paramsPerLayer(LayerKind kind, const LayerShape &s) {
  switch (kind) {
  case LayerKind::TokenEmbedding:
    return s.vocab * s.hidden + s.positions * s.hidden;
  case LayerKind::PatchEmbedding:
    return s.channels * s.temporalPatch * s.patch * s.patch * s.hidden +
           (s.bias ? s.hidden : 0) + s.positions * s.hidden +
           (s.classToken ? s.hidden : 0);
  case LayerKind::AudioFrontend:
    // Two kernel-3 convolutions (mel -> hidden, hidden -> hidden).
    return 3 * s.melBins * s.hidden + s.hidden + 3 * s.hidden * s.hidden +
           s.hidden + s.positions * s.hidden;
  case LayerKind::TransformerBlock:
    return attentionParams(s) + ffnParams(s) + 2 * normParams(s);
  case LayerKind::ConformerBlock: {
    // Two half-step feed-forwards, self-attention, the convolution module
    // (pointwise h->2h with GLU, depthwise, batch norm, pointwise h->h) and a
    // final norm; every sub-module has its own pre-norm.
    LayerShape ff = s;
    ff.gated = false;
    int64_t conv = 2 * s.hidden * s.hidden + s.hidden * s.convKernel +
                   2 * s.hidden + s.hidden * s.hidden;
    if (s.bias)
      conv += 2 * s.hidden + s.hidden + s.hidden;
    return 2 * ffnParams(ff) + attentionParams(s) + conv + 5 * normParams(s);
  }
  case LayerKind::Norm:
    return normParams(s);
  case LayerKind::LMHead:
    return s.tied ? 0 : s.vocab * s.hidden;
  case LayerKind::Linear:
    return s.in * s.out + s.out;
  case LayerKind::MLP:
    return s.in * s.hidden + s.hidden + s.hidden * s.out + s.out;
  case LayerKind::AttentionPool: {
    // A learned probe, full multi-head attention with biases, a norm and an
    // MLP with biases.
    int64_t attn = 4 * s.hidden * s.hidden + 4 * s.hidden;
    return s.hidden + attn + 2 * s.hidden + 2 * s.hidden * s.ffn + s.ffn +
           s.hidden;
  }
  }
  return 0;
}

int64_t model::totalParams(const std::vector<LayerGroup> &groups) {
  int64_t total = 0;
  for (const LayerGroup &g : groups)
    total += g.count * paramsPerLayer(g.kind, g.shape);
  return total;
}

mlir::DictionaryAttr model::toConfig(mlir::MLIRContext *context, LayerKind kind,
                                     const LayerShape &s) {
  mlir::Builder b(context);
  llvm::SmallVector<mlir::NamedAttribute> attrs;
  for (const runtime::LayerConfigKey &k : runtime::layerConfigKeys()) {
    if (!k.isSet(s))
      continue;
    mlir::Attribute value;
    switch (k.type) {
    case runtime::LayerConfigKey::Int:
      value = b.getI64IntegerAttr(s.*k.intField);
      break;
    case runtime::LayerConfigKey::Bool:
      value = b.getUnitAttr();
      break;
    case runtime::LayerConfigKey::Float:
      value = b.getF64FloatAttr(s.*k.floatField);
      break;
    case runtime::LayerConfigKey::String:
      value = b.getStringAttr(s.*k.stringField);
      break;
    }
    attrs.push_back(b.getNamedAttr(k.name, value));
  }
  (void)kind;
  return b.getDictionaryAttr(attrs);
}

LayerShape model::fromConfig(mlir::DictionaryAttr config) {
  LayerShape s;
  for (const runtime::LayerConfigKey &k : runtime::layerConfigKeys()) {
    mlir::Attribute attr = config.get(k.name);
    switch (k.type) {
    case runtime::LayerConfigKey::Int:
      if (auto i = llvm::dyn_cast_or_null<mlir::IntegerAttr>(attr))
        s.*k.intField = i.getInt();
      break;
    case runtime::LayerConfigKey::Bool:
      s.*k.boolField = static_cast<bool>(attr);
      break;
    case runtime::LayerConfigKey::Float:
      if (auto f = llvm::dyn_cast_or_null<mlir::FloatAttr>(attr))
        s.*k.floatField = f.getValueAsDouble();
      break;
    case runtime::LayerConfigKey::String:
      if (auto str = llvm::dyn_cast_or_null<mlir::StringAttr>(attr))
        s.*k.stringField = str.getValue().str();
      break;
    }
  }
  return s;
}
