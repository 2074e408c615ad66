//===- LayerCases.cpp - layer variants the CPU layer tests run ------------===//

#include "LayerCases.h"

#include "mllm/kernels/Bitfield.h"

#include <algorithm>

using namespace mllm::kernels;
using namespace mllm::runtime;
using namespace mllm::runtime::cpu;
using namespace mllm::runtime::cpu::test;

uint64_t TestRng::next() {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double TestRng::uniform() {
  return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0);
}

double TestRng::normal() {
  double u1 = 1.0 - uniform(), u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

namespace {

LayerConfig block(int64_t heads, int64_t kvHeads, int64_t headDim,
                  const char *activation, bool layerNorm) {
  LayerConfig c;
  c.hidden = 16;
  c.ffn = 24;
  c.heads = heads;
  c.kvHeads = kvHeads;
  c.headDim = headDim;
  c.activation = activation;
  c.gated = llvm::StringRef(activation).ends_with("glu");
  c.layerNorm = layerNorm;
  return c;
}

LayerCase make(std::string name, std::string kind, LayerConfig c, PartKind part,
               int64_t sequences, int64_t tokens, Mask mask = Mask::None) {
  LayerCase lc;
  lc.name = std::move(name);
  lc.kind = std::move(kind);
  lc.config = std::move(c);
  lc.part = part;
  lc.sequences = sequences;
  lc.tokens = tokens;
  lc.mask = mask;
  return lc;
}

} // namespace

std::vector<LayerCase> mllm::runtime::cpu::test::layerCases() {
  std::vector<LayerCase> cases;
  const PartKind llm = PartKind::LLM, enc = PartKind::Encoder;

  // Transformer blocks.
  {
    LayerConfig c = block(4, 4, 4, "gelu", true);
    c.qkvBias = c.bias = true;
    cases.push_back(
        make("block_ln_gelu_mha_bias", "transformer_block", c, enc, 2, 5));
  }
  {
    LayerConfig c = block(4, 2, 6, "swiglu", false);
    c.position = "rope";
    c.ropeTheta = 10000;
    cases.push_back(make("block_rms_swiglu_gqa_rope_packed",
                         "transformer_block", c, llm, 2, 12, Mask::Packed));
  }
  {
    LayerConfig c = block(6, 3, 4, "geglu", false);
    c.position = "alibi";
    c.bias = true;
    cases.push_back(make("block_rms_geglu_gqa_alibi_packed",
                         "transformer_block", c, llm, 1, 12, Mask::Packed));
  }
  {
    LayerConfig c = block(4, 1, 4, "relu", true);
    c.position = "rope";
    c.ropeTheta = 500000;
    c.qkvBias = true;
    cases.push_back(make("block_ln_relu_mqa_rope_causal", "transformer_block",
                         c, llm, 2, 7, Mask::Causal));
  }
  {
    LayerConfig c = block(2, 2, 8, "silu", false);
    c.position = "alibi";
    cases.push_back(make("block_rms_silu_alibi_causal", "transformer_block", c,
                         llm, 1, 9, Mask::Causal));
  }
  // Conformer blocks.
  {
    LayerConfig c = block(4, 4, 4, "silu", true);
    c.qkvBias = c.bias = true;
    c.convKernel = 3;
    cases.push_back(
        make("conformer_ln_silu_bias_k3", "conformer_block", c, enc, 2, 6));
  }
  {
    LayerConfig c = block(4, 2, 4, "gelu", false);
    c.convKernel = 4;
    cases.push_back(
        make("conformer_rms_gelu_gqa_k4", "conformer_block", c, enc, 2, 7));
  }
  {
    LayerConfig c = block(2, 2, 8, "relu", true);
    c.convKernel = 5;
    c.position = "alibi";
    c.bias = true;
    cases.push_back(
        make("conformer_ln_relu_alibi_k5", "conformer_block", c, enc, 1, 8));
  }
  // Norms.
  {
    LayerConfig c;
    c.hidden = 16;
    c.layerNorm = true;
    cases.push_back(make("norm_layernorm", "norm", c, llm, 2, 5));
    c.layerNorm = false;
    cases.push_back(make("norm_rmsnorm", "norm", c, llm, 2, 5));
  }
  // LM heads.
  {
    LayerConfig c;
    c.hidden = 16;
    c.vocab = 23;
    LayerCase lc = make("lm_head", "lm_head", c, llm, 2, 12, Mask::Packed);
    lc.lossScale = 1.0 / 7;
    cases.push_back(lc);
    lc.name = "lm_head_tied";
    lc.config.tied = true;
    lc.lossScale = 0.25;
    cases.push_back(lc);
  }
  // Token embeddings.
  {
    LayerConfig c;
    c.hidden = 16;
    c.vocab = 23;
    cases.push_back(
        make("embed_plain", "token_embedding", c, llm, 2, 12, Mask::Packed));
    c.position = "learned";
    c.positions = 10;
    cases.push_back(
        make("embed_learned", "token_embedding", c, llm, 2, 12, Mask::Packed));
  }
  // Patch embeddings.
  {
    LayerConfig c;
    c.hidden = 16;
    c.channels = 3;
    c.temporalPatch = 2;
    c.patch = 2;
    c.imageHeight = 5; // cropped to 4, as a strided Conv3d does
    c.imageWidth = 4;
    c.bias = c.classToken = true;
    c.position = "learned";
    c.positions = 5;
    cases.push_back(
        make("patch_bias_cls_learned_crop", "patch_embedding", c, enc, 2, 0));
    LayerConfig d;
    d.hidden = 16;
    d.channels = 2;
    d.patch = 3;
    d.imageHeight = 6;
    d.imageWidth = 9;
    cases.push_back(make("patch_plain", "patch_embedding", d, enc, 3, 0));
  }
  // Audio front ends.
  {
    LayerConfig c;
    c.hidden = 16;
    c.melBins = 5;
    c.frames = 7;
    c.position = "sinusoidal";
    c.positions = 4;
    cases.push_back(make("audio_sinusoidal", "audio_frontend", c, enc, 2, 0));
    c.frames = 8;
    c.position = "learned";
    c.positions = 6;
    cases.push_back(make("audio_learned", "audio_frontend", c, enc, 2, 0));
    c.position = "none";
    c.positions = 0;
    c.frames = 6;
    cases.push_back(make("audio_none", "audio_frontend", c, enc, 1, 0));
  }
  // Projectors.
  {
    LayerConfig c;
    c.in = 12;
    c.out = 16;
    cases.push_back(make("linear", "linear", c, enc, 2, 5));
    c.hidden = 20;
    for (const char *act : {"gelu", "relu", "silu"}) {
      c.activation = act;
      cases.push_back(make(std::string("mlp_") + act, "mlp", c, enc, 2, 5));
    }
  }
  // Attention pooling.
  {
    LayerConfig c;
    c.hidden = 16;
    c.ffn = 24;
    c.heads = 4;
    c.kvHeads = 4;
    c.headDim = 4;
    c.layerNorm = true;
    c.bias = c.qkvBias = true;
    c.activation = "gelu";
    cases.push_back(make("attention_pool", "attention_pool", c, enc, 3, 5));
  }
  return cases;
}

namespace {

/// The Packed layout over `tokens` (>= 12): sample 0 = text 0-2, image 3-5,
/// text 6-7; sample 1 = text 8-9; padding after.
void packedLayout(int64_t tokens, TokenLayout &layout,
                  std::vector<int64_t> &positions) {
  layout.words.assign(tokens, 0);
  layout.segments.assign(tokens, 0);
  positions.assign(tokens, 0);
  for (int64_t i = 0; i < 10; ++i) {
    bool image = i >= 3 && i < 6;
    layout.words[i] = image ? modalityWord(0) : textWord(1);
    uint32_t sample = i < 8 ? 0 : 1;
    layout.segments[i] = makeSegment(sample, image ? 1 : 0);
    positions[i] = i < 8 ? i : i - 8;
  }
}

} // namespace

template <typename T>
void mllm::runtime::cpu::test::makeCaseData(const LayerCase &c, Layer<T> &layer,
                                            TestRng &rng, CaseData<T> &d) {
  const LayerConfig &cfg = c.config;
  Batch<T> &b = d.batch;
  b.sequences = c.sequences;
  b.tokens = c.tokens;
  b.lossScale = c.lossScale;
  if (c.mask == Mask::Packed) {
    packedLayout(c.tokens, d.layout, b.positions);
    b.layout = &d.layout;
  } else if (c.mask == Mask::Causal) {
    d.layout.words.assign(c.tokens, textWord(0));
    b.layout = &d.layout;
  }
  const int64_t rows = c.sequences * c.tokens;
  auto fill = [&](Tensor<T> &t, std::vector<int64_t> shape) {
    t.resize(std::move(shape));
    for (T &v : t.data)
      v = static_cast<T>(rng.normal());
  };
  if (c.kind == "token_embedding") {
    for (int64_t i = 0; i < rows; ++i)
      d.tokenIds.push_back(static_cast<int64_t>(rng.next() % cfg.vocab));
    b.tokenIds = d.tokenIds.data();
  } else if (c.kind == "patch_embedding") {
    d.media.resize(c.sequences * cfg.channels * cfg.temporalPatch *
                   cfg.imageHeight * cfg.imageWidth);
    for (T &v : d.media)
      v = static_cast<T>(rng.normal());
    b.media = d.media.data();
  } else if (c.kind == "audio_frontend") {
    d.media.resize(c.sequences * cfg.frames * cfg.melBins);
    for (T &v : d.media)
      v = static_cast<T>(rng.normal());
    b.media = d.media.data();
  } else {
    int64_t width = c.kind == "linear" || c.kind == "mlp" ? cfg.in : cfg.hidden;
    fill(d.in, {rows, width});
  }
  if (c.kind == "lm_head") {
    for (int64_t i = 0; i < rows; ++i) {
      bool ignored =
          i % 5 == 3 || (c.mask == Mask::Packed && i % c.tokens >= 10);
      d.targets.push_back(
          ignored ? -100 : static_cast<int64_t>(rng.next() % cfg.vocab));
    }
    b.targets = d.targets.data();
    d.dOut.resize({1}, T(1));
  } else {
    int64_t outTokens = layer.outputTokens(c.tokens);
    fill(d.dOut, {c.sequences * outTokens, layer.outputWidth()});
  }
  if (layer.isTied()) {
    d.tiedWeight = std::make_unique<Param<T>>();
    d.tiedWeight->name = "tied.weight";
    fill(d.tiedWeight->value, {cfg.vocab, cfg.hidden});
    for (T &v : d.tiedWeight->value.data)
      v *= static_cast<T>(0.25);
    d.tiedWeight->grad.resize({cfg.vocab, cfg.hidden});
    d.tiedWeight->trainable = true;
    if (llvm::Error e = layer.bindTiedWeight(d.tiedWeight.get()))
      llvm::report_fatal_error(std::move(e));
  }
}

template <typename T>
void mllm::runtime::cpu::test::randomizeParams(Layer<T> &layer, TestRng &rng) {
  for (Param<T> *p : layer.params()) {
    int64_t fanIn =
        p->value.shape.size() > 1 ? p->value.numel() / p->value.shape[0] : 1;
    for (T &v : p->value.data) {
      double z = rng.normal();
      switch (p->init) {
      case ParamInit::Fixed:
        break;
      case ParamInit::Ones:
        v = static_cast<T>(1 + 0.2 * z);
        break;
      case ParamInit::Zeros:
        v = static_cast<T>(0.2 * z);
        break;
      case ParamInit::Normal:
        v = static_cast<T>(z / std::sqrt(static_cast<double>(fanIn)));
        break;
      }
    }
  }
}

// compiler/lib/Model/Layers.cpp, paramsPerLayer and its helpers.
int64_t mllm::runtime::cpu::test::expectedParams(llvm::StringRef kind,
                                                 const LayerConfig &s) {
  auto norm = [&] { return s.layerNorm ? 2 * s.hidden : s.hidden; };
  auto ffn = [&](bool gated) {
    int64_t p = (gated ? 3 : 2) * s.hidden * s.ffn;
    if (s.bias)
      p += (gated ? 2 : 1) * s.ffn + s.hidden;
    return p;
  };
  auto attention = [&] {
    int64_t q = s.heads * s.headDim, kv = s.kvHeads * s.headDim;
    int64_t p = s.hidden * (q + 2 * kv) + q * s.hidden;
    if (s.qkvBias)
      p += q + 2 * kv;
    if (s.bias)
      p += s.hidden;
    return p;
  };
  if (kind == "token_embedding")
    return s.vocab * s.hidden + s.positions * s.hidden;
  if (kind == "patch_embedding")
    return s.channels * s.temporalPatch * s.patch * s.patch * s.hidden +
           (s.bias ? s.hidden : 0) + s.positions * s.hidden +
           (s.classToken ? s.hidden : 0);
  if (kind == "audio_frontend")
    return 3 * s.melBins * s.hidden + s.hidden + 3 * s.hidden * s.hidden +
           s.hidden + s.positions * s.hidden;
  if (kind == "transformer_block")
    return attention() + ffn(s.gated) + 2 * norm();
  if (kind == "conformer_block") {
    int64_t conv = 2 * s.hidden * s.hidden + s.hidden * s.convKernel +
                   2 * s.hidden + s.hidden * s.hidden;
    if (s.bias)
      conv += 2 * s.hidden + s.hidden + s.hidden;
    return 2 * ffn(false) + attention() + conv + 5 * norm();
  }
  if (kind == "norm")
    return norm();
  if (kind == "lm_head")
    return s.tied ? 0 : s.vocab * s.hidden;
  if (kind == "linear")
    return s.in * s.out + s.out;
  if (kind == "mlp")
    return s.in * s.hidden + s.hidden + s.hidden * s.out + s.out;
  if (kind == "attention_pool")
    return s.hidden + 4 * s.hidden * s.hidden + 4 * s.hidden + 2 * s.hidden +
           2 * s.hidden * s.ffn + s.ffn + s.hidden;
  return -1;
}

namespace mllm::runtime::cpu::test {
template void makeCaseData(const LayerCase &, Layer<float> &, TestRng &,
                           CaseData<float> &);
template void makeCaseData(const LayerCase &, Layer<double> &, TestRng &,
                           CaseData<double> &);
template void randomizeParams(Layer<float> &, TestRng &);
template void randomizeParams(Layer<double> &, TestRng &);
} // namespace mllm::runtime::cpu::test
