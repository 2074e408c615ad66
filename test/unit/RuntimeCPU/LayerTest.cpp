//===- LayerTest.cpp - parameter counts, determinism, checks, init --------===//
//
// Everything about the CPU layers except their gradients' values: that the
// parameter shapes give the compiler's counts, that results are bitwise
// reproducible, that backwardWeight does not depend on backwardInput
// having run, what checkLayer refuses, how initParam fills parameters, the
// tied LM head and frozen layers.
//
//===----------------------------------------------------------------------===//

#include "LayerCases.h"

#include "mllm/kernels/cpu/Threads.h"

#include "llvm/ADT/STLExtras.h"

#include "gtest/gtest.h"

#include <cmath>
#include <cstring>
#include <set>

using namespace mllm::runtime;
using namespace mllm::runtime::cpu;
using namespace mllm::runtime::cpu::test;

namespace {

template <typename T>
std::unique_ptr<Layer<T>> build(const LayerCase &c, bool trainable = true) {
  auto made = makeLayer<T>(c.kind, c.config, c.part, trainable);
  if (!made)
    llvm::report_fatal_error(made.takeError());
  return std::move(*made);
}

int64_t countParams(Layer<float> &layer) {
  int64_t n = 0;
  for (Param<float> *p : layer.params())
    n += p->value.numel();
  return n;
}

/// Results of one case: output, input gradient, parameter gradients.
struct CaseRun {
  Tensor<float> out, dIn;
  std::vector<std::vector<float>> grads;
};

CaseRun runCase(const LayerCase &c, bool withInputGrad, bool trainable = true) {
  auto layer = build<float>(c, trainable);
  TestRng rng(11);
  randomizeParams(*layer, rng);
  CaseData<float> d;
  makeCaseData(c, *layer, rng, d);
  CaseRun r;
  auto state = layer->forward(d.batch, d.in, r.out);
  if (withInputGrad)
    layer->backwardInput(d.batch, *state, d.dOut, r.dIn);
  layer->backwardWeight(d.batch, *state, d.dOut);
  for (Param<float> *p : layer->params())
    r.grads.push_back(p->grad.data);
  if (d.tiedWeight)
    r.grads.push_back(d.tiedWeight->grad.data);
  return r;
}

bool sameBits(const std::vector<float> &a, const std::vector<float> &b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * 4) == 0);
}

class EveryCase : public ::testing::TestWithParam<LayerCase> {};

TEST_P(EveryCase, ParamCountIsTheCompilers) {
  const LayerCase &c = GetParam();
  auto layer = build<float>(c);
  EXPECT_EQ(countParams(*layer), expectedParams(c.kind, c.config));
}

TEST_P(EveryCase, BitwiseDeterministic) {
  mllm::kernels::cpu::setNumThreads(2);
  CaseRun a = runCase(GetParam(), true), b = runCase(GetParam(), true);
  EXPECT_TRUE(sameBits(a.out.data, b.out.data));
  EXPECT_TRUE(sameBits(a.dIn.data, b.dIn.data));
  ASSERT_EQ(a.grads.size(), b.grads.size());
  for (size_t i = 0; i < a.grads.size(); ++i)
    EXPECT_TRUE(sameBits(a.grads[i], b.grads[i])) << "parameter " << i;
}

TEST_P(EveryCase, WeightGradientsWithoutInputGradient) {
  CaseRun both = runCase(GetParam(), true),
          weightOnly = runCase(GetParam(), false);
  EXPECT_TRUE(sameBits(both.out.data, weightOnly.out.data));
  ASSERT_EQ(both.grads.size(), weightOnly.grads.size());
  bool any = false;
  for (size_t i = 0; i < both.grads.size(); ++i) {
    EXPECT_TRUE(sameBits(both.grads[i], weightOnly.grads[i]))
        << "parameter " << i;
    for (float g : both.grads[i])
      any |= g != 0;
  }
  EXPECT_TRUE(any) << "no gradient at all";
}

TEST_P(EveryCase, FrozenLayerHasNoGradientsButAnInputGradient) {
  const LayerCase &c = GetParam();
  CaseRun frozen = runCase(c, true, /*trainable=*/false);
  CaseRun trained = runCase(c, true);
  if (c.kind == "lm_head" && c.config.tied) {
    // Whether the shared weight trains is the embedding's business: the
    // head's own flag changes nothing.
    EXPECT_EQ(frozen.grads, trained.grads);
  } else {
    for (const std::vector<float> &g : frozen.grads)
      EXPECT_TRUE(g.empty());
  }
  EXPECT_TRUE(sameBits(frozen.out.data, trained.out.data));
  EXPECT_TRUE(sameBits(frozen.dIn.data, trained.dIn.data));
}

INSTANTIATE_TEST_SUITE_P(Layers, EveryCase, ::testing::ValuesIn(layerCases()),
                         [](const ::testing::TestParamInfo<LayerCase> &info) {
                           return info.param.name;
                         });

TEST(LayerCases, CoverEveryKind) {
  std::set<std::string> kinds;
  for (const LayerCase &c : layerCases())
    kinds.insert(c.kind);
  for (llvm::StringRef k : layerKindNames())
    EXPECT_TRUE(kinds.count(k.str())) << k.str();
}

/// Configs as mllmc lowers the stdlib instances (mllmc --emit=mllm), with
/// the counts of compiler/lib/Model/Layers.cpp worked out by hand. mllmc's
/// part totals confirm them: whisper_base 1678336 + 6 x 3152384 + 1024 =
/// 20.59M; audio_s 3393536 + 24 x 21003776 + 2048 = 507.49M; siglip_so400m
/// 1518336 + 27 x 15239504 + 2304 + 15238352 = 428.23M.
TEST(ParamCount, StdlibModels) {
  struct Real {
    const char *kind;
    LayerConfig c;
    PartKind part;
    int64_t count;
  };
  std::vector<Real> real;
  LayerConfig c;
  c.hidden = 512, c.melBins = 80, c.frames = 3000, c.position = "sinusoidal",
  c.positions = 1500;
  real.push_back({"audio_frontend", c, PartKind::Encoder, 1678336});
  c = LayerConfig();
  c.hidden = 512, c.ffn = 2048, c.heads = c.kvHeads = 8, c.headDim = 64;
  c.activation = "gelu", c.bias = c.qkvBias = c.layerNorm = true;
  real.push_back({"transformer_block", c, PartKind::Encoder, 3152384});
  c = LayerConfig();
  c.hidden = 1024, c.ffn = 3328, c.heads = c.kvHeads = 16, c.headDim = 64;
  c.activation = "silu", c.bias = c.qkvBias = c.layerNorm = true;
  c.convKernel = 3;
  real.push_back({"conformer_block", c, PartKind::Encoder, 21003776});
  c = LayerConfig();
  c.hidden = 1152, c.channels = 3, c.patch = 14, c.imageHeight = 384,
  c.imageWidth = 384, c.bias = true, c.position = "learned", c.positions = 729;
  real.push_back({"patch_embedding", c, PartKind::Encoder, 1518336});
  c = LayerConfig();
  c.hidden = 1152, c.ffn = 4304, c.heads = c.kvHeads = 16, c.headDim = 72;
  c.activation = "gelu", c.bias = c.qkvBias = c.layerNorm = true;
  real.push_back({"transformer_block", c, PartKind::Encoder, 15239504});
  real.push_back({"attention_pool", c, PartKind::Encoder, 15238352});
  c = LayerConfig();
  c.in = 1152, c.hidden = 2048, c.out = 2048, c.activation = "gelu";
  real.push_back({"mlp", c, PartKind::Encoder, 6557696});
  c = LayerConfig();
  c.hidden = 2048, c.vocab = 128256, c.tied = true;
  real.push_back({"lm_head", c, PartKind::LLM, 0});
  for (const Real &r : real) {
    SCOPED_TRACE(r.kind);
    EXPECT_EQ(expectedParams(r.kind, r.c), r.count);
    auto layer = makeLayer<float>(r.kind, r.c, r.part, /*trainable=*/false);
    ASSERT_TRUE(static_cast<bool>(layer)) << llvm::toString(layer.takeError());
    EXPECT_EQ(countParams(**layer), r.count);
  }
}

TEST(CheckLayer, RefusesWithTheFeatureNamed) {
  LayerConfig block;
  block.hidden = 16, block.ffn = 24, block.heads = 4, block.kvHeads = 2;
  block.headDim = 4, block.activation = "gelu";
  struct Case {
    const char *kind;
    LayerConfig c;
    PartKind part;
    const char *says;
  };
  std::vector<Case> cases;
  auto with = [&](auto edit) {
    LayerConfig c = block;
    edit(c);
    return c;
  };
  cases.push_back({"convolution", block, PartKind::LLM, "unknown layer kind"});
  cases.push_back({"transformer_block",
                   with([](LayerConfig &c) { c.activation = "tanh"; }),
                   PartKind::LLM, "unknown activation 'tanh'"});
  cases.push_back({"transformer_block",
                   with([](LayerConfig &c) { c.activation = ""; }),
                   PartKind::LLM, "no activation"});
  cases.push_back({"transformer_block", with([](LayerConfig &c) {
                     c.position = "rope";
                     c.ropeTheta = 10000;
                   }),
                   PartKind::Encoder, "RoPE in an encoder"});
  cases.push_back({"transformer_block", with([](LayerConfig &c) {
                     c.position = "rope";
                     c.ropeTheta = 10000;
                     c.headDim = 5;
                   }),
                   PartKind::LLM, "even head_dim"});
  cases.push_back({"transformer_block",
                   with([](LayerConfig &c) { c.activation = "swiglu"; }),
                   PartKind::LLM, "is gated but the config"});
  cases.push_back({"transformer_block",
                   with([](LayerConfig &c) { c.kvHeads = 3; }), PartKind::LLM,
                   "does not divide heads"});
  cases.push_back({"transformer_block",
                   with([](LayerConfig &c) { c.position = "learned"; }),
                   PartKind::LLM, "position 'learned'"});
  cases.push_back({"conformer_block", with([](LayerConfig &c) {
                     c.activation = "swiglu";
                     c.gated = true;
                     c.convKernel = 3;
                   }),
                   PartKind::Encoder, "never gated"});
  cases.push_back({"transformer_block", with([](LayerConfig &c) { c.ffn = 0; }),
                   PartKind::LLM, "needs ffn > 0"});
  LayerConfig audio;
  audio.hidden = 16, audio.melBins = 8, audio.frames = 12000;
  audio.position = "learned", audio.positions = 1500;
  cases.push_back(
      {"audio_frontend", audio, PartKind::Encoder, "downsample other than 2"});
  audio.position = "rope";
  cases.push_back(
      {"audio_frontend", audio, PartKind::Encoder, "position 'rope'"});
  audio.position = "", audio.frames = 10;
  cases.push_back({"audio_frontend", audio, PartKind::Encoder,
                   "positions > 0 without a position table"});
  LayerConfig patch;
  patch.hidden = 16, patch.patch = 4, patch.channels = 3;
  patch.imageHeight = 8, patch.imageWidth = 8, patch.position = "learned";
  patch.positions = 5;
  cases.push_back(
      {"patch_embedding", patch, PartKind::Encoder, "5 rows for 4 tokens"});
  patch.imageWidth = 3;
  cases.push_back({"patch_embedding", patch, PartKind::Encoder,
                   "smaller than one 4-pixel patch"});
  LayerConfig embed;
  embed.hidden = 16, embed.vocab = 10, embed.position = "alibi";
  cases.push_back(
      {"token_embedding", embed, PartKind::LLM, "position 'alibi'"});
  LayerConfig mlp;
  mlp.in = 4, mlp.hidden = 8, mlp.out = 4, mlp.activation = "swiglu";
  cases.push_back({"mlp", mlp, PartKind::Encoder, "activation 'swiglu'"});
  LayerConfig pool = block;
  cases.push_back({"attention_pool", pool, PartKind::Encoder,
                   "no grouped-query attention"});
  pool.kvHeads = 4, pool.heads = 3;
  cases.push_back(
      {"attention_pool", pool, PartKind::Encoder, "do not divide hidden"});
  for (const Case &c : cases) {
    std::string why = checkLayer(c.kind, c.c, c.part);
    EXPECT_NE(why.find(c.says), std::string::npos)
        << c.kind << ": expected '" << c.says << "', got '" << why << "'";
    auto made = makeLayer<float>(c.kind, c.c, c.part, true);
    EXPECT_FALSE(static_cast<bool>(made));
    if (!made)
      EXPECT_EQ(llvm::toString(made.takeError()), why);
  }
}

TEST(InitParam, SameValuesInAnyOrderAndKeyedByName) {
  LayerCase c = layerCases()[1]; // a GQA RoPE block
  auto a = build<float>(c), b = build<float>(c);
  std::vector<Param<float> *> pa = a->params(), pb = b->params();
  for (Param<float> *p : pa)
    initParam(*p, "llm.blocks.3." + p->name, 42);
  for (auto it = pb.rbegin(); it != pb.rend(); ++it)
    initParam(**it, "llm.blocks.3." + (*it)->name, 42);
  for (size_t i = 0; i < pa.size(); ++i)
    EXPECT_TRUE(sameBits(pa[i]->value.data, pb[i]->value.data)) << pa[i]->name;
  // Another layer index, another seed: other values.
  auto found =
      llvm::find_if(pb, [](Param<float> *p) { return p->name == "wq"; });
  ASSERT_NE(found, pb.end());
  Param<float> &wq = **found;
  std::vector<float> first = wq.value.data;
  initParam(wq, "llm.blocks.4.wq", 42);
  EXPECT_FALSE(sameBits(first, wq.value.data));
  initParam(wq, "llm.blocks.3.wq", 43);
  EXPECT_FALSE(sameBits(first, wq.value.data));
}

TEST(InitParam, DistributionsByKind) {
  Param<double> big;
  big.value.resize({256, 256});
  initParam(big, "x.weight", 1);
  double sum = 0, sq = 0;
  for (double v : big.value.data)
    sum += v, sq += v * v;
  double n = static_cast<double>(big.value.numel());
  EXPECT_NEAR(sum / n, 0.0, 5e-4);
  EXPECT_NEAR(std::sqrt(sq / n), 0.02, 2e-4);
  // Norm weights 1, biases 0, fixed tables untouched.
  LayerCase c = layerCases()[0]; // LayerNorm, biases
  auto layer = build<float>(c);
  for (Param<float> *p : layer->params()) {
    initParam(*p, p->name, 3);
    for (float v : p->value.data) {
      if (p->init == ParamInit::Ones)
        ASSERT_EQ(v, 1.0f) << p->name;
      if (p->init == ParamInit::Zeros)
        ASSERT_EQ(v, 0.0f) << p->name;
    }
    if (p->init == ParamInit::Normal)
      EXPECT_NE(p->value.data[0], 0.0f) << p->name;
  }
  for (const LayerCase &a : layerCases()) {
    if (a.name != "audio_sinusoidal")
      continue;
    auto front = build<float>(a);
    Param<float> *table = front->params().back();
    ASSERT_EQ(table->init, ParamInit::Fixed);
    EXPECT_FALSE(table->trainable);
    std::vector<float> before = table->value.data;
    EXPECT_EQ(before[0], 0.0f);                   // sin(0)
    EXPECT_EQ(before[a.config.hidden / 2], 1.0f); // cos(0)
    initParam(*table, "audio.frontend.pos_weight", 5);
    EXPECT_TRUE(sameBits(before, table->value.data));
  }
}

TEST(TiedHead, BindsTheEmbeddingWeightAndMatchesAnOwnWeight) {
  LayerConfig c;
  c.hidden = 8, c.vocab = 11;
  auto own = makeLayer<float>("lm_head", c, PartKind::LLM, true);
  c.tied = true;
  auto tied = makeLayer<float>("lm_head", c, PartKind::LLM, true);
  ASSERT_TRUE(own && tied);
  EXPECT_TRUE((*tied)->params().empty());
  EXPECT_TRUE((*tied)->isTied());
  EXPECT_FALSE((*own)->isTied());
  llvm::Error notTied = (*own)->bindTiedWeight(nullptr);
  EXPECT_TRUE(static_cast<bool>(notTied));
  llvm::consumeError(std::move(notTied));
  Param<float> wrong;
  wrong.value.resize({11, 7});
  llvm::Error e = (*tied)->bindTiedWeight(&wrong);
  EXPECT_TRUE(static_cast<bool>(e));
  llvm::consumeError(std::move(e));

  Param<float> embed;
  embed.name = "llm.embed.weight";
  embed.value.resize({11, 8});
  embed.grad.resize({11, 8});
  embed.trainable = true;
  initParam(embed, embed.name, 9);
  Param<float> &ownW = *(*own)->params()[0];
  ownW.value = embed.value;
  ASSERT_FALSE(static_cast<bool>((*tied)->bindTiedWeight(&embed)));

  TestRng rng(1);
  Tensor<float> x({6, 8});
  for (float &v : x.data)
    v = static_cast<float>(rng.normal());
  std::vector<int64_t> targets = {1, 5, -100, 10, 0, 3};
  Batch<float> b;
  b.sequences = 2, b.tokens = 3, b.targets = targets.data(), b.lossScale = 0.2;
  Tensor<float> outOwn, outTied, dOwn, dTied, none;
  auto s1 = (*own)->forward(b, x, outOwn);
  auto s2 = (*tied)->forward(b, x, outTied);
  EXPECT_EQ(outOwn.data, outTied.data);
  (*own)->backwardInput(b, *s1, none, dOwn);
  (*tied)->backwardInput(b, *s2, none, dTied);
  EXPECT_EQ(dOwn.data, dTied.data);
  (*own)->backwardWeight(b, *s1, none);
  (*tied)->backwardWeight(b, *s2, none);
  EXPECT_EQ(ownW.grad.data, embed.grad.data);
  bool any = false;
  for (float g : embed.grad.data)
    any |= g != 0;
  EXPECT_TRUE(any);
}

TEST(LayerDeathTest, InconsistentCallsFailLoudly) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  LayerCase c = layerCases()[2]; // ALiBi over the packed layout
  ASSERT_EQ(c.config.position, "alibi");
  auto layer = build<float>(c);
  TestRng rng(3);
  CaseData<float> d;
  makeCaseData(c, *layer, rng, d);
  Tensor<float> out;
  d.batch.positions[7] = 9; // a gap inside sample 0
  EXPECT_DEATH(layer->forward(d.batch, d.in, out),
               "ALiBi needs positions that step by 1");
  d.batch.positions[7] = 7;
  auto state = layer->forward(d.batch, d.in, out);
  auto other = build<float>(c);
  Tensor<float> dIn;
  EXPECT_DEATH(other->backwardInput(d.batch, *state, d.dOut, dIn),
               "did not make it");
  d.batch.tokens = 11;
  EXPECT_DEATH(layer->forward(d.batch, d.in, out), "rows but the batch");
}

} // namespace
