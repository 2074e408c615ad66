//===- CostModelTest.cpp - per-layer FLOPs, memory, roofline, profiles ----===//
#include "mllm/Plan/Profile.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

#include <string>
#include <tuple>

using namespace mllm;
using namespace mllm::plan;
using model::LayerShape;

namespace {

/// A Llama-style block without GQA and with a plain 4h FFN, the shape the
/// textbook 24sh^2 + 4s^2h formula assumes.
LayerShape textbookBlock(int64_t hidden, int64_t heads) {
  LayerShape s;
  s.hidden = hidden;
  s.heads = s.kvHeads = heads;
  s.headDim = hidden / heads;
  s.ffn = 4 * hidden;
  return s;
}

/// Llama-3.2-1B's block (stdlib/llama.mllm): GQA 32/8, SwiGLU.
LayerShape llama1bBlock() {
  LayerShape s;
  s.hidden = 2048;
  s.ffn = 8192;
  s.heads = 32;
  s.kvHeads = 8;
  s.headDim = 64;
  s.gated = true;
  return s;
}

Workload sequence(int64_t tokens, int64_t tp = 1, int64_t cp = 1) {
  Workload w;
  w.tokens = tokens;
  w.attentionSpan = tokens;
  w.tp = tp;
  w.cp = cp;
  return w;
}

/// A device with unlimited bandwidth: every layer with FLOPs is compute
/// bound.
Device computeOnly() {
  Device d;
  d.peakFlops = 100e12;
  d.memoryBandwidth = 0;
  d.efficiency = 0.5;
  return d;
}

/// The A40 of stdlib/hardware.mllm.
Device a40() {
  Device d;
  d.peakFlops = 149.7e12;
  d.memoryBandwidth = 696e9;
  d.efficiency = 0.5;
  return d;
}

/// One layer shape per kind with every field its parameter count reads set
/// to a distinct non-zero value, biases on.
std::vector<std::pair<LayerKind, LayerShape>> everyKind() {
  LayerShape block = textbookBlock(256, 8);
  block.kvHeads = 2;
  block.ffn = 640;
  block.qkvBias = block.bias = true;
  block.layerNorm = true;
  LayerShape conformer = block;
  conformer.convKernel = 31;
  LayerShape embed;
  embed.hidden = 256;
  embed.vocab = 1000;
  embed.positions = 128;
  LayerShape patch;
  patch.hidden = 256;
  patch.patch = 14;
  patch.channels = 3;
  patch.temporalPatch = 2;
  patch.bias = patch.classToken = true;
  patch.positions = 257;
  LayerShape audio;
  audio.hidden = 256;
  audio.melBins = 80;
  audio.positions = 1500;
  LayerShape norm;
  norm.hidden = 256;
  norm.layerNorm = true;
  LayerShape head;
  head.hidden = 256;
  head.vocab = 1000;
  LayerShape linear;
  linear.in = 256;
  linear.out = 512;
  LayerShape mlp = linear;
  mlp.hidden = 384;
  LayerShape pool = block;
  pool.kvHeads = pool.heads;
  return {{LayerKind::TokenEmbedding, embed},
          {LayerKind::PatchEmbedding, patch},
          {LayerKind::AudioFrontend, audio},
          {LayerKind::TransformerBlock, block},
          {LayerKind::ConformerBlock, conformer},
          {LayerKind::Norm, norm},
          {LayerKind::LMHead, head},
          {LayerKind::Linear, linear},
          {LayerKind::MLP, mlp},
          {LayerKind::AttentionPool, pool}};
}

/// Writes `text` to a fresh temporary file and returns its path.
std::string writeTemp(llvm::StringRef text) {
  llvm::SmallString<128> path;
  int fd;
  if (llvm::sys::fs::createTemporaryFile("profile", "yaml", fd, path))
    return "";
  llvm::raw_fd_ostream os(fd, /*shouldClose=*/true);
  os << text;
  return std::string(path);
}

std::string errorText(llvm::Expected<Profile> profile) {
  if (profile)
    return "";
  return llvm::toString(profile.takeError());
}

} // namespace

//===----------------------------------------------------------------------===//
// FLOPs
//===----------------------------------------------------------------------===//

TEST(CostModel, TextbookBlockMatchesStandardFormula) {
  for (auto [h, heads, s] : {std::tuple<double, int64_t, double>{1024, 16, 512},
                             {4096, 32, 2048},
                             {2048, 16, 1753}}) {
    LayerCost c = layerCost(LayerKind::TransformerBlock,
                            textbookBlock(h, heads), sequence(s), a40());
    // Integers below 2^53 throughout: exact in double.
    EXPECT_EQ(c.fwdFlops, 24 * s * h * h + 4 * s * s * h) << h << " " << s;
    EXPECT_EQ(c.attnFlops, 4 * s * s * h);
    EXPECT_EQ(c.wgradFlops, 24 * s * h * h);
    EXPECT_EQ(c.igradFlops, 24 * s * h * h + 8 * s * s * h);
    // Forward + backward = 3 x forward: the usual 72 s h^2 (1 + s / 6h).
    EXPECT_EQ(c.fwdFlops + c.wgradFlops + c.igradFlops, 3 * c.fwdFlops);
  }
}

TEST(CostModel, GqaGatedBlockMatchesHandDerivation) {
  // Llama-3.2-1B at 1753 tokens. Q: 2048x2048, K and V: 2048x512 each,
  // O: 2048x2048, SwiGLU: 3 x 2048x8192.
  const double qkvo = 2048.0 * 2048 + 2 * 2048.0 * 512 + 2048.0 * 2048;
  const double ffn = 3 * 2048.0 * 8192;
  ASSERT_EQ(qkvo + ffn, 60817408.0);
  LayerCost c = layerCost(LayerKind::TransformerBlock, llama1bBlock(),
                          sequence(1753), a40());
  const double mm = 2 * 60817408.0 * 1753;         // 213,225,832,448
  const double attn = 4 * 1753.0 * 1753 * 64 * 32; // 25,174,089,728
  EXPECT_EQ(c.fwdFlops, mm + attn);
  EXPECT_EQ(c.wgradFlops, mm);
  EXPECT_EQ(c.igradFlops, mm + 2 * attn);
  // 16 norm weights x 2 norms on top of the matmul weights.
  EXPECT_EQ(c.params, 60817408.0 + 2 * 2048);
}

TEST(CostModel, GatedVersusPlainFfn) {
  LayerShape plain = textbookBlock(1024, 16);
  LayerShape gated = plain;
  gated.gated = true;
  gated.ffn = 2816;
  Workload w = sequence(1000);
  double delta =
      layerCost(LayerKind::TransformerBlock, gated, w, a40()).wgradFlops -
      layerCost(LayerKind::TransformerBlock, plain, w, a40()).wgradFlops;
  EXPECT_EQ(delta, 2 * 1000.0 * (3 * 1024.0 * 2816 - 2 * 1024.0 * 4096));
}

TEST(CostModel, TensorParallelismDividesFlopsAndShardedParams) {
  LayerShape s = llama1bBlock();
  s.qkvBias = s.bias = true;
  LayerCost one =
      layerCost(LayerKind::TransformerBlock, s, sequence(4096), a40());
  LayerCost four = layerCost(LayerKind::TransformerBlock, s,
                             sequence(4096, /*tp=*/4), a40());
  EXPECT_DOUBLE_EQ(four.fwdFlops, one.fwdFlops / 4);
  EXPECT_DOUBLE_EQ(four.wgradFlops, one.wgradFlops / 4);
  EXPECT_DOUBLE_EQ(four.igradFlops, one.igradFlops / 4);
  // Replicated: two RMSNorm weights, the O bias and the FFN-out bias.
  const double replicated = 2 * 2048 + 2048 + 2048;
  EXPECT_DOUBLE_EQ(four.params, (one.params - replicated) / 4 + replicated);
  // Without sequence parallelism the block's input stays whole on every
  // rank.
  EXPECT_DOUBLE_EQ(four.inputBytes, one.inputBytes);
  EXPECT_LT(four.activationBytes, one.activationBytes);

  // Vocab-parallel embedding and head, replicated norm.
  LayerShape vocab;
  vocab.hidden = 2048;
  vocab.vocab = 128256;
  EXPECT_DOUBLE_EQ(
      layerCost(LayerKind::TokenEmbedding, vocab, sequence(100, 8), a40())
          .params,
      128256.0 * 2048 / 8);
  LayerCost head = layerCost(LayerKind::LMHead, vocab, sequence(100, 8), a40());
  EXPECT_DOUBLE_EQ(head.params, 128256.0 * 2048 / 8);
  EXPECT_DOUBLE_EQ(head.fwdFlops, 2 * 128256.0 * 2048 * 100 / 8);
  LayerShape norm;
  norm.hidden = 2048;
  EXPECT_DOUBLE_EQ(
      layerCost(LayerKind::Norm, norm, sequence(100, 8), a40()).params, 2048);
}

TEST(CostModel, ContextParallelismDividesTokensNotSpan) {
  LayerShape s = llama1bBlock();
  LayerCost one =
      layerCost(LayerKind::TransformerBlock, s, sequence(8192), a40());
  LayerCost four = layerCost(LayerKind::TransformerBlock, s,
                             sequence(8192, /*tp=*/1, /*cp=*/4), a40());
  // Each rank holds a quarter of the queries; every query still sees the
  // whole span.
  EXPECT_DOUBLE_EQ(four.fwdFlops, one.fwdFlops / 4);
  EXPECT_DOUBLE_EQ(four.attnFlops, 4 * 2048.0 * 8192 * 64 * 32);
  EXPECT_DOUBLE_EQ(four.params, one.params);
  EXPECT_DOUBLE_EQ(four.activationBytes, one.activationBytes / 4);
  EXPECT_DOUBLE_EQ(four.inputBytes, 2048.0 * 2048 * 2);
  EXPECT_DOUBLE_EQ(four.outputBytes, one.outputBytes / 4);
}

TEST(CostModel, ParamsAgreeWithParamsPerLayer) {
  for (auto [kind, shape] : everyKind()) {
    LayerCost c = layerCost(kind, shape, sequence(64), a40());
    EXPECT_EQ(c.params, double(model::paramsPerLayer(kind, shape)))
        << stringifyLayerKind(kind).str();
    // Sharding never creates or loses parameters: tp ranks hold at least
    // the total, and no rank holds more than the total.
    LayerCost sharded = layerCost(kind, shape, sequence(64, 4), a40());
    EXPECT_LE(sharded.params, c.params) << stringifyLayerKind(kind).str();
    EXPECT_GE(4 * sharded.params, c.params) << stringifyLayerKind(kind).str();
  }
}

TEST(CostModel, TiedHeadCostsFlopsButOwnsNoParams) {
  LayerShape head;
  head.hidden = 2048;
  head.vocab = 128256;
  head.tied = true;
  LayerCost c = layerCost(LayerKind::LMHead, head, sequence(10, 2), a40());
  EXPECT_EQ(c.params, 0);
  EXPECT_DOUBLE_EQ(c.tiedParams, 128256.0 * 2048 / 2);
  EXPECT_DOUBLE_EQ(c.fwdFlops, 2 * 128256.0 * 2048 * 10 / 2);
  EXPECT_DOUBLE_EQ(c.wgradFlops, c.fwdFlops);
  EXPECT_GT(c.wgrad, 0);
}

TEST(CostModel, DataInputsHaveNoInputGradient) {
  for (auto [kind, shape] : everyKind()) {
    LayerCost c = layerCost(kind, shape, sequence(64), a40());
    bool data = kind == LayerKind::TokenEmbedding ||
                kind == LayerKind::PatchEmbedding ||
                kind == LayerKind::AudioFrontend;
    EXPECT_EQ(c.igradFlops == 0 && c.igrad == 0, data)
        << stringifyLayerKind(kind).str();
    EXPECT_GT(c.fwd, 0) << stringifyLayerKind(kind).str();
    EXPECT_GT(c.activationBytes, 0) << stringifyLayerKind(kind).str();
    EXPECT_GT(c.outputBytes, 0) << stringifyLayerKind(kind).str();
  }
}

TEST(CostModel, ParameterlessFlopsGiveNoWeightGradFlops) {
  LayerShape norm;
  norm.hidden = 512;
  LayerCost c = layerCost(LayerKind::Norm, norm, sequence(100), a40());
  EXPECT_EQ(c.fwdFlops, 0);
  EXPECT_EQ(c.wgradFlops, 0);
  EXPECT_EQ(c.igradFlops, 0);
  // Still takes time: the roofline's memory term.
  EXPECT_DOUBLE_EQ(c.fwd, c.fwdBytes / a40().memoryBandwidth);
}

TEST(CostModel, ActivationsFollowFlashAttentionMegatronAccounting) {
  // Megatron's 34 s h bytes per layer less its two dropout masks (2 s h),
  // no s^2 scores (flash attention keeps only fp32 log-sum-exp per head).
  double s = 1024, h = 1024, heads = 16;
  LayerCost c = layerCost(LayerKind::TransformerBlock, textbookBlock(h, heads),
                          sequence(s), a40());
  EXPECT_DOUBLE_EQ(c.activationBytes, 32 * s * h + 4 * s * heads);
  // TP shards all but the four h-wide tensors (norm inputs, matmul inputs).
  LayerCost tp2 = layerCost(LayerKind::TransformerBlock,
                            textbookBlock(h, heads), sequence(s, 2), a40());
  EXPECT_DOUBLE_EQ(tp2.activationBytes,
                   s * (8 * h + 24 * h / 2) + 4 * s * heads / 2);
}

//===----------------------------------------------------------------------===//
// Roofline
//===----------------------------------------------------------------------===//

TEST(CostModel, RooflineComputeBound) {
  LayerCost c = layerCost(LayerKind::TransformerBlock, llama1bBlock(),
                          sequence(1753), computeOnly());
  EXPECT_DOUBLE_EQ(c.fwd, c.fwdFlops / (100e12 * 0.5));
  EXPECT_DOUBLE_EQ(c.wgrad, c.wgradFlops / (100e12 * 0.5));
  EXPECT_DOUBLE_EQ(c.igrad, c.igradFlops / (100e12 * 0.5));
  // The same on the A40: a 1753-token block is compute bound there.
  LayerCost onA40 = layerCost(LayerKind::TransformerBlock, llama1bBlock(),
                              sequence(1753), a40());
  EXPECT_DOUBLE_EQ(onA40.fwd, onA40.fwdFlops / (149.7e12 * 0.5));
  EXPECT_GT(onA40.fwdFlops / onA40.fwdBytes, 149.7e12 * 0.5 / 696e9);
}

TEST(CostModel, RooflineMemoryBound) {
  // One token through a big block: reading the weights dominates.
  LayerCost c = layerCost(LayerKind::TransformerBlock, llama1bBlock(),
                          sequence(1), a40());
  EXPECT_DOUBLE_EQ(c.fwd, c.fwdBytes / 696e9);
  EXPECT_DOUBLE_EQ(c.wgrad, c.wgradBytes / 696e9);
  EXPECT_DOUBLE_EQ(c.igrad, c.igradBytes / 696e9);
  EXPECT_GE(c.fwdBytes, c.params * 2);

  Device d = a40();
  EXPECT_DOUBLE_EQ(rooflineTime(1e12, 1e6, d), 1e12 / (149.7e12 * 0.5));
  EXPECT_DOUBLE_EQ(rooflineTime(1e6, 1e12, d), 1e12 / 696e9);
  EXPECT_EQ(rooflineTime(0, 0, d), 0);
  d.efficiency = 0; // Out of range: counts as 1.
  EXPECT_DOUBLE_EQ(rooflineTime(1e12, 0, d), 1e12 / 149.7e12);
}

TEST(CostModel, BackwardTimeFollowsFrozenFlags) {
  LayerCost c;
  c.fwd = 1;
  c.wgrad = 2;
  c.igrad = 3;
  EXPECT_EQ(backwardTime(c, true, true, true), 6);
  EXPECT_EQ(backwardTime(c, false, true, true), 4);
  EXPECT_EQ(backwardTime(c, true, false, false), 2);
  EXPECT_EQ(backwardTime(c, false, false, false), 0);
}

//===----------------------------------------------------------------------===//
// Profiles
//===----------------------------------------------------------------------===//

TEST(CostModel, ProfileLoadAndLookup) {
  std::string path = writeTemp(R"(device: a40
layers:
  - kind: transformer_block
    hidden: 2048
    tokens: 1753
    tp: 1
    cp: 1
    forward_ms: 3.1
    weight_grad_ms: 3.0
    input_grad_ms: 3.2
  - kind: transformer_block      # any block of this width
    hidden: 2048
    forward_ms: 9
    weight_grad_ms: 9
    input_grad_ms: 9
  - kind: norm
    gated: false
    forward_ms: 0.01
    weight_grad_ms: 0
    input_grad_ms: 0.02
)");
  ASSERT_FALSE(path.empty());
  llvm::Expected<Profile> profile = Profile::load(path);
  ASSERT_TRUE(static_cast<bool>(profile))
      << llvm::toString(profile.takeError());
  EXPECT_EQ(profile->size(), 3u);
  EXPECT_EQ(profile->entries[0].keys.at("tokens"), 1753);

  LayerShape block = llama1bBlock();
  // The more specific entry wins though both match.
  std::optional<LayerCost> hit =
      profile->lookup(LayerKind::TransformerBlock, block, sequence(1753));
  ASSERT_TRUE(hit);
  EXPECT_DOUBLE_EQ(hit->fwd, 3.1e-3);
  EXPECT_DOUBLE_EQ(hit->wgrad, 3.0e-3);
  EXPECT_DOUBLE_EQ(hit->igrad, 3.2e-3);
  // Other tokens fall to the width-only entry; another width to none.
  hit = profile->lookup(LayerKind::TransformerBlock, block, sequence(512));
  ASSERT_TRUE(hit);
  EXPECT_DOUBLE_EQ(hit->fwd, 9e-3);
  LayerShape wide = block;
  wide.hidden = 4096;
  EXPECT_FALSE(
      profile->lookup(LayerKind::TransformerBlock, wide, sequence(1753)));
  EXPECT_FALSE(profile->lookup(LayerKind::LMHead, block, sequence(1753)));

  // layerCost takes the measured times and keeps the analytic rest.
  LayerCost measured = layerCost(LayerKind::TransformerBlock, block,
                                 sequence(1753), a40(), &*profile);
  LayerCost analytic =
      layerCost(LayerKind::TransformerBlock, block, sequence(1753), a40());
  EXPECT_DOUBLE_EQ(measured.fwd, 3.1e-3);
  EXPECT_DOUBLE_EQ(measured.igrad, 3.2e-3);
  EXPECT_NE(measured.fwd, analytic.fwd);
  EXPECT_EQ(measured.fwdFlops, analytic.fwdFlops);
  EXPECT_EQ(measured.activationBytes, analytic.activationBytes);
  LayerCost fallback = layerCost(LayerKind::TransformerBlock, wide,
                                 sequence(1753), a40(), &*profile);
  EXPECT_DOUBLE_EQ(
      fallback.fwd,
      layerCost(LayerKind::TransformerBlock, wide, sequence(1753), a40()).fwd);
  llvm::sys::fs::remove(path);
}

TEST(CostModel, ProfileEarlierEntryWinsTies) {
  llvm::Expected<Profile> p = Profile::parse(R"(layers:
  - {kind: norm, hidden: 8, forward_ms: 1, weight_grad_ms: 1, input_grad_ms: 1}
  - {kind: norm, hidden: 8, forward_ms: 2, weight_grad_ms: 2, input_grad_ms: 2}
)");
  ASSERT_TRUE(static_cast<bool>(p)) << llvm::toString(p.takeError());
  LayerShape norm;
  norm.hidden = 8;
  EXPECT_DOUBLE_EQ(p->lookup(LayerKind::Norm, norm, sequence(4))->fwd, 1e-3);
  // The tie's loser was never chosen: it is reported unused, with its place.
  std::vector<const Profile::Entry *> unused = p->unused();
  ASSERT_EQ(unused.size(), 1u);
  EXPECT_EQ(unused[0], &p->entries[1]);
  EXPECT_EQ(unused[0]->line, 3u);
  EXPECT_EQ(unused[0]->column, 6u); // Its first key, inside the braces.
}

TEST(CostModel, ProfileEntriesNoLookupChoseAreUnused) {
  llvm::Expected<Profile> p = Profile::parse(R"(layers:
  - {kind: norm, hidden: 8, forward_ms: 1, weight_grad_ms: 1, input_grad_ms: 1}
  - {kind: norm, hidden: 16, forward_ms: 2, weight_grad_ms: 2, input_grad_ms: 2}
  - {kind: lm_head, forward_ms: 2, weight_grad_ms: 2, input_grad_ms: 2}
)");
  ASSERT_TRUE(static_cast<bool>(p)) << llvm::toString(p.takeError());
  EXPECT_EQ(p->unused().size(), 3u); // Before any lookup, none is used.
  LayerShape norm;
  norm.hidden = 16;
  ASSERT_TRUE(p->lookup(LayerKind::Norm, norm, sequence(4)));
  std::vector<const Profile::Entry *> unused = p->unused();
  ASSERT_EQ(unused.size(), 2u);
  EXPECT_EQ(unused[0], &p->entries[0]);
  EXPECT_EQ(unused[1], &p->entries[2]);
}

TEST(CostModel, ProfileKeysCoverLayerConfigKeys) {
  // Every key model::toConfig can write must select layers in a profile.
  mlir::MLIRContext context;
  LayerShape s;
  s.hidden = s.ffn = s.heads = s.kvHeads = s.headDim = s.vocab = 1;
  s.patch = s.channels = s.melBins = s.in = s.out = s.positions = 1;
  s.convKernel = 1;
  s.temporalPatch = 2;
  s.gated = s.qkvBias = s.bias = s.layerNorm = s.tied = s.classToken = true;
  mlir::DictionaryAttr config =
      model::toConfig(&context, LayerKind::TransformerBlock, s);
  EXPECT_EQ(config.size(), 20u);
  for (mlir::NamedAttribute attr : config)
    EXPECT_TRUE(Profile::isMatchKey(attr.getName().strref()))
        << attr.getName().str();
  for (const char *key :
       {"tokens", "attention_span", "tp", "cp", "element_bytes"})
    EXPECT_TRUE(Profile::isMatchKey(key)) << key;
  EXPECT_FALSE(Profile::isMatchKey("forward_ms"));
}

TEST(CostModel, MalformedProfiles) {
  struct Case {
    const char *text;
    const char *message;
  } cases[] = {
      {"layers:\n  - kind: transformer_blok\n    forward_ms: 1\n",
       "bad.yaml:2:11: error: unknown layer kind 'transformer_blok'"},
      {"layers:\n  - kind: norm\n    forward_ms: 1\n    weight_grad_ms: 1\n",
       "bad.yaml:2:5: error: entry has no 'input_grad_ms'"},
      {"layers:\n  - kind: norm\n    hidden: wide\n",
       "bad.yaml:3:13: error: 'hidden' must be a non-negative integer, got "
       "'wide'"},
      {"layers:\n  - kind: norm\n    hiden: 4\n",
       "bad.yaml:3:5: error: unknown key 'hiden'"},
      {"layers:\n  - kind: norm\n    forward_ms: -1\n",
       "bad.yaml:3:17: error: 'forward_ms' must be a number of milliseconds "
       "between 0 and 86400000"},
      {"layers:\n  - kind: norm\n    forward_ms: 1e308\n",
       "bad.yaml:3:17: error: 'forward_ms' must be a number of milliseconds "
       "between 0 and 86400000, got '1e308'"},
      {"layers:\n  - kind: norm\n    gated: maybe\n",
       "bad.yaml:3:12: error: 'gated' must be true or false"},
      {"layers:\n  - kind: norm\n    kind: norm\n",
       "bad.yaml:3:5: error: duplicate key 'kind'"},
      {"layers:\n  - forward_ms: 1\n    weight_grad_ms: 1\n    "
       "input_grad_ms: 1\n",
       "bad.yaml:2:5: error: entry has no 'kind'"},
      {"layers: 3\n", "bad.yaml:1:9: error: 'layers' must be a list"},
      {"layer:\n  - kind: norm\n",
       "bad.yaml:1:1: error: unknown top-level key 'layer'"},
      {"- kind: norm\n", "bad.yaml:1:1: error: expected a mapping"},
      // Syntax errors come from the YAML scanner, with the same location
      // format.
      {"layers:\n  - [kind, norm\n",
       "bad.yaml:2:16: error: Could not find closing ]"},
      {"layers:\n  - kind: norm\n   forward_ms: 1\n",
       "bad.yaml:3:14: error: Unexpected token"},
      {"", "bad.yaml: error: empty profile"},
      {"device: a40\n", "bad.yaml: error: profile has no 'layers' list"},
  };
  for (const Case &c : cases) {
    std::string message = errorText(Profile::parse(c.text, "bad.yaml"));
    EXPECT_NE(message.find(c.message), std::string::npos)
        << "input:\n"
        << c.text << "message:\n"
        << message;
  }
  std::string missing = errorText(Profile::load("/nonexistent/p.yaml"));
  EXPECT_NE(missing.find("cannot read profile '/nonexistent/p.yaml'"),
            std::string::npos)
      << missing;
}

//===----------------------------------------------------------------------===//
// The worked example of docs/cost-model.md
//===----------------------------------------------------------------------===//

TEST(CostModel, WorkedExampleLlama1bBlockOnA40) {
  // The numbers quoted in docs/cost-model.md.
  LayerCost c = layerCost(LayerKind::TransformerBlock, llama1bBlock(),
                          sequence(1753), a40());
  EXPECT_EQ(c.params, 60821504);
  EXPECT_EQ(c.fwdFlops, 238399922176.0);
  EXPECT_EQ(c.attnFlops, 25174089728.0);
  EXPECT_EQ(c.wgradFlops, 213225832448.0);
  EXPECT_EQ(c.igradFlops, 263574011904.0);
  EXPECT_EQ(c.activationBytes, 133059712.0);
  EXPECT_EQ(c.inputBytes, 7180288.0);
  EXPECT_EQ(c.outputBytes, 7180288.0);
  EXPECT_EQ(c.fwdBytes, 269063296.0);
  EXPECT_EQ(c.wgradBytes, 261883008.0);
  EXPECT_EQ(c.igradBytes, 269063296.0);
  EXPECT_NEAR(c.fwd * 1e3, 3.1850, 5e-5);
  EXPECT_NEAR(c.wgrad * 1e3, 2.8487, 5e-5);
  EXPECT_NEAR(c.igrad * 1e3, 3.5214, 5e-5);
  // With recompute, frozen: igrad + fwd; trainable: + wgrad.
  EXPECT_NEAR(backwardTime(c, false, true, true) / c.fwd, 2.106, 1e-3);
  EXPECT_NEAR(backwardTime(c, true, true, true) / c.fwd, 3.000, 1e-3);
}
