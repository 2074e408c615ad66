//===- Factory.cpp - checkLayer and makeLayer -----------------------------===//
//
// What the CPU backend supports, said once: checkLayer() names the first
// unsupported or inconsistent feature of a layer config, and makeLayer()
// builds only what checkLayer() accepts, so a layer never computes
// something other than docs/runtime-layers.md says. That includes the
// tensor-parallel shard: what does not divide over the TP group is refused
// here, not rounded.
//
//===----------------------------------------------------------------------===//

#include "mllm/runtime/cpu/LayerParts.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringSwitch.h"

using namespace mllm::runtime;
using namespace mllm::runtime::cpu;

namespace {

int64_t intValue(const LayerConfig &c, llvm::StringRef key) {
  const LayerConfigKey *k = findLayerConfigKey(key);
  return k ? c.*(k->intField) : 0;
}

std::string blockCheck(llvm::StringRef kind, const LayerConfig &c,
                       PartKind part) {
  std::string name = kind.str();
  if (c.heads % c.kvHeads != 0)
    return name + ": kv_heads " + std::to_string(c.kvHeads) +
           " does not divide heads " + std::to_string(c.heads);
  if (c.activation.empty())
    return name + ": no activation";
  std::optional<Activation> act = parseActivation(c.activation);
  if (!act)
    return name + ": unknown activation '" + c.activation + "'";
  if (kind == "conformer_block" && (isGated(*act) || c.gated))
    return name + ": a gated feed-forward (" + c.activation +
           ") is not supported: conformer feed-forwards are never gated";
  if (isGated(*act) != c.gated)
    return name + ": activation '" + c.activation + "' " +
           (c.gated ? "is not gated but the config says gated"
                    : "is gated but the config does not say gated");
  llvm::StringRef pos = c.position;
  if (pos == "rope") {
    if (part == PartKind::Encoder)
      return name + ": RoPE in an encoder is not supported by the CPU "
                    "backend (encoders need 2-D patch or frame positions, "
                    "not the LLM's 1-D token positions)";
    if (c.headDim % 2 != 0)
      return name + ": RoPE needs an even head_dim, not " +
             std::to_string(c.headDim);
    if (!(c.ropeTheta > 0))
      return name + ": RoPE needs rope_theta > 0";
  } else if (!pos.empty() && pos != "none" && pos != "alibi") {
    return name + ": position '" + c.position +
           "' is not a block's (rope, alibi or none)";
  }
  if (kind == "conformer_block" && c.convKernel < 1)
    return name + ": conv_kernel must be positive";
  return "";
}

/// The TP shard of a layer: its place in the group, and what the kinds that
/// split need to divide (heads, kv heads, the feed-forward width; a
/// vocabulary may split unevenly but not below one row per rank).
std::string shardCheck(llvm::StringRef kind, const LayerConfig &c,
                       const TensorShard &tp) {
  std::string name = kind.str();
  auto n = [](int64_t v) { return std::to_string(v); };
  if (tp.size < 1 || tp.rank < 0 || tp.rank >= tp.size)
    return name + ": TP rank " + n(tp.rank) + " of a group of " + n(tp.size);
  if (tp.size == 1)
    return "";
  if (!tp.group)
    return name + ": a TP shard (tp " + n(tp.size) + ") needs its group";
  if (tp.group->size() != tp.size || tp.group->rank() != tp.rank)
    return name + ": the TP group has rank " + n(tp.group->rank()) + " of " +
           n(tp.group->size()) + ", the shard says rank " + n(tp.rank) +
           " of " + n(tp.size);
  auto divides = [&](const char *what, int64_t v) -> std::string {
    if (v % tp.size == 0)
      return "";
    return name + ": tp " + n(tp.size) + " does not divide " + what + " " +
           n(v) + " (tensor parallelism splits them evenly)";
  };
  if (kind == "transformer_block" || kind == "conformer_block") {
    for (auto [what, v] : {std::pair<const char *, int64_t>{"heads", c.heads},
                           {"kv_heads", c.kvHeads},
                           {"ffn", c.ffn}})
      if (std::string why = divides(what, v); !why.empty())
        return why;
  } else if ((kind == "token_embedding" || kind == "lm_head") &&
             c.vocab < tp.size) {
    return name + ": vocab " + n(c.vocab) + " is smaller than tp " + n(tp.size);
  }
  return "";
}

} // namespace

/// The config alone, whatever the shard.
static std::string configCheck(llvm::StringRef kind, const LayerConfig &c,
                               PartKind part) {
  if (!llvm::is_contained(layerKindNames(), kind))
    return "unknown layer kind '" + kind.str() + "'";
  std::string name = kind.str();
  for (llvm::StringRef key : requiredLayerConfigKeys(kind))
    if (intValue(c, key) < 1)
      return name + ": needs " + key.str() + " > 0, got " +
             std::to_string(intValue(c, key));
  llvm::StringRef pos = c.position;
  bool none = pos.empty() || pos == "none";
  // The compiler counts `positions` rows of parameters whenever it is set.
  if (none && c.positions != 0 &&
      (kind == "token_embedding" || kind == "patch_embedding" ||
       kind == "audio_frontend"))
    return name + ": positions > 0 without a position table (position is '" +
           c.position + "')";

  if (kind == "token_embedding") {
    if (!none && pos != "learned")
      return name + ": position '" + c.position +
             "' is not an embedding's (learned or none; RoPE and ALiBi "
             "belong to the blocks)";
    if (pos == "learned" && c.positions < 1)
      return name + ": a learned position table needs positions > 0";
  } else if (kind == "patch_embedding") {
    if (c.imageHeight < c.patch || c.imageWidth < c.patch)
      return name + ": image " + std::to_string(c.imageWidth) + "x" +
             std::to_string(c.imageHeight) + " is smaller than one " +
             std::to_string(c.patch) + "-pixel patch";
    if (c.temporalPatch < 1)
      return name + ": temporal_patch must be positive";
    if (!none && pos != "learned")
      return name + ": position '" + c.position +
             "' is not supported on a patch embedding (learned or none)";
    int64_t tokens = (c.imageHeight / c.patch) * (c.imageWidth / c.patch) +
                     (c.classToken ? 1 : 0);
    if (pos == "learned" && c.positions != tokens)
      return name + ": the learned table has " + std::to_string(c.positions) +
             " rows for " + std::to_string(tokens) + " tokens";
  } else if (kind == "audio_frontend") {
    if (c.frames < 1)
      return name + ": needs frames > 0 (mel frames per item)";
    if (!none && pos != "learned" && pos != "sinusoidal")
      return name + ": position '" + c.position +
             "' is not supported on an audio front end (sinusoidal, "
             "learned or none)";
    int64_t tokens = (c.frames + 1) / 2;
    if (!none && c.positions < tokens)
      return name + ": the position table has " + std::to_string(c.positions) +
             " rows, but the stride-2 front end makes " +
             std::to_string(tokens) + " tokens of " + std::to_string(c.frames) +
             " frames (a downsample other than 2 is not supported)";
    if (pos == "sinusoidal" && (c.hidden % 2 != 0 || c.hidden < 4))
      return name + ": a sinusoidal table needs an even hidden >= 4";
  } else if (kind == "transformer_block" || kind == "conformer_block") {
    return blockCheck(kind, c, part);
  } else if (kind == "mlp") {
    std::optional<Activation> act = parseActivation(c.activation);
    if (!act || isGated(*act))
      return name + ": activation '" + c.activation +
             "' is not supported (gelu, relu or silu)";
  } else if (kind == "attention_pool") {
    if (c.hidden % c.heads != 0)
      return name + ": heads " + std::to_string(c.heads) +
             " do not divide hidden " + std::to_string(c.hidden);
    if (c.headDim != 0 && c.headDim * c.heads != c.hidden)
      return name + ": heads x head_dim must equal hidden";
    if (c.kvHeads != 0 && c.kvHeads != c.heads)
      return name + ": the pooling head has no grouped-query attention";
  }
  return "";
}

std::string mllm::runtime::cpu::checkLayer(llvm::StringRef kind,
                                           const LayerConfig &c, PartKind part,
                                           const TensorShard &tp) {
  std::string why = configCheck(kind, c, part);
  return why.empty() ? shardCheck(kind, c, tp) : why;
}

template <typename T>
llvm::Expected<std::unique_ptr<Layer<T>>>
mllm::runtime::cpu::makeLayer(llvm::StringRef kind, const LayerConfig &c,
                              PartKind part, bool trainable,
                              const TensorShard &tp) {
  std::string why = checkLayer(kind, c, part, tp);
  if (!why.empty())
    return llvm::createStringError(why);
  // The kinds that split under TP.
  using Split = std::unique_ptr<Layer<T>> (*)(const LayerConfig &, bool,
                                              const TensorShard &);
  Split split = llvm::StringSwitch<Split>(kind)
                    .Case("token_embedding", makeTokenEmbedding<T>)
                    .Case("transformer_block", makeTransformerBlock<T>)
                    .Case("conformer_block", makeConformerBlock<T>)
                    .Case("lm_head", makeLMHead<T>)
                    .Default(nullptr);
  if (split)
    return split(c, trainable, tp);
  // The others are whole on every TP rank.
  using Whole = std::unique_ptr<Layer<T>> (*)(const LayerConfig &, bool);
  Whole make = llvm::StringSwitch<Whole>(kind)
                   .Case("patch_embedding", makePatchEmbedding<T>)
                   .Case("audio_frontend", makeAudioFrontend<T>)
                   .Case("norm", makeNorm<T>)
                   .Case("linear", makeLinearProjector<T>)
                   .Case("mlp", makeMlpProjector<T>)
                   .Case("attention_pool", makeAttentionPool<T>)
                   .Default(nullptr);
  return make(c, trainable);
}

namespace mllm::runtime::cpu {
template llvm::Expected<std::unique_ptr<Layer<float>>>
makeLayer(llvm::StringRef, const LayerConfig &, PartKind, bool,
          const TensorShard &);
template llvm::Expected<std::unique_ptr<Layer<double>>>
makeLayer(llvm::StringRef, const LayerConfig &, PartKind, bool,
          const TensorShard &);
} // namespace mllm::runtime::cpu
