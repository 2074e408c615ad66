//===- TensorParallelTest.cpp - TP shards against the whole layer ---------===//
//
// Every layer kind run as tp = 2 (3 for uneven vocabularies, 4 where the
// heads allow) shards on LocalComm threads, from the whole layer's values:
// each rank's output and input gradient equal the whole layer's, the
// shards' weight gradients assembled equal its weight gradients (1e-5
// relative in float, 1e-12 in double), and what is replicated (norms,
// biases of row-parallel maps, layers that do not split) gets the same
// bits on every rank.
//
//===----------------------------------------------------------------------===//

#include "ParallelHarness.h"

#include "mllm/kernels/cpu/CrossEntropy.h"
#include "mllm/kernels/cpu/Threads.h"

#include "gtest/gtest.h"

#include <cmath>
#include <cstring>
#include <limits>

using namespace mllm::runtime;
using namespace mllm::runtime::cpu;
using namespace mllm::runtime::cpu::test;
using namespace std::chrono_literals;

namespace {

/// TP rank `r` of a `tp`-way split of `c`'s layer over `group`, holding
/// `whole`'s values (a tied head: its rows of `d`'s tied weight, in `tied`).
template <typename T>
llvm::Expected<std::unique_ptr<Layer<T>>>
shardOf(const LayerCase &c, Layer<T> &whole, const CaseData<T> &d, int r,
        int tp, Group *group, std::unique_ptr<Param<T>> &tied) {
  TensorShard shard{r, tp, group};
  auto layer = makeLayer<T>(c.kind, c.config, c.part, true, shard);
  if (!layer)
    return layer.takeError();
  copyShard(whole, **layer);
  if ((*layer)->isTied()) {
    tied = tiedShard(*d.tiedWeight, vocabRange(c.config.vocab, shard), tp > 1);
    if (llvm::Error err = (*layer)->bindTiedWeight(tied.get()))
      return std::move(err);
  }
  return layer;
}

template <typename T>
void checkTensorParallel(const LayerCase &c, int tp, double tolerance) {
  auto made = makeLayer<T>(c.kind, c.config, c.part, /*trainable=*/true);
  ASSERT_TRUE(static_cast<bool>(made)) << llvm::toString(made.takeError());
  Layer<T> &whole = **made;
  TestRng rng(11);
  randomizeParams(whole, rng);
  CaseData<T> d;
  makeCaseData(c, whole, rng, d);
  mllm::kernels::cpu::setNumThreads(1);
  Results<T> ref = runLayer(whole, d.batch, d.in, d.dOut, d.tiedWeight.get());

  std::vector<std::unique_ptr<Layer<T>>> layers(tp);
  std::vector<std::unique_ptr<Param<T>>> tied(tp);
  std::vector<Results<T>> results(tp);
  llvm::Error e = runLocalWorld(tp, 60s, [&](Comm &comm) -> llvm::Error {
    // One kernel thread per rank: the ranks are the parallelism here.
    mllm::kernels::cpu::setNumThreads(1);
    const int r = comm.worldRank();
    auto group = comm.group(iota(tp));
    if (!group)
      return group.takeError();
    auto layer = shardOf(c, whole, d, r, tp, group->get(), tied[r]);
    if (!layer)
      return layer.takeError();
    results[r] = runLayer(**layer, d.batch, d.in, d.dOut, tied[r].get());
    layers[r] = std::move(*layer);
    return llvm::Error::success();
  });
  ASSERT_FALSE(e) << llvm::toString(std::move(e));

  std::vector<std::vector<Param<T> *>> params;
  for (int r = 0; r < tp; ++r) {
    EXPECT_LE(relError(results[r].out.data, ref.out.data), tolerance)
        << "output of TP rank " << r;
    EXPECT_LE(relError(results[r].dIn.data, ref.dIn.data), tolerance)
        << "input gradient of TP rank " << r;
    // After the all-reduces every rank holds the same bits.
    EXPECT_EQ(results[r].out.data, results[0].out.data) << "rank " << r;
    EXPECT_EQ(results[r].dIn.data, results[0].dIn.data) << "rank " << r;
    params.push_back(layers[r]->params());
    if (tied[r])
      params.back().push_back(tied[r].get());
  }
  expectGradsNear(gatherTensorParallel(params, results), ref.grads, tolerance,
                  c.name + " tp " + std::to_string(tp));
}

struct TpCase {
  LayerCase layer;
  int tp = 2;
};

void PrintTo(const TpCase &c, std::ostream *os) {
  *os << c.layer.name << " tp " << c.tp;
}

LayerConfig blockConfig(int64_t heads, int64_t kvHeads, const char *act,
                        bool layerNorm) {
  LayerConfig c;
  c.hidden = 16;
  c.ffn = 24;
  c.heads = heads;
  c.kvHeads = kvHeads;
  c.headDim = 4;
  c.activation = act;
  c.gated = llvm::StringRef(act).ends_with("glu");
  c.layerNorm = layerNorm;
  return c;
}

std::vector<TpCase> tpCases() {
  std::map<std::string, LayerCase> byName;
  for (LayerCase &c : layerCases())
    byName[c.name] = c;
  std::vector<TpCase> cases;
  auto add = [&](const LayerCase &c, std::initializer_list<int> tps) {
    for (int tp : tps)
      cases.push_back({c, tp});
  };
  add(byName.at("block_ln_gelu_mha_bias"), {2, 4});
  add(byName.at("block_rms_swiglu_gqa_rope_packed"), {2});
  add(byName.at("block_rms_silu_alibi_causal"), {2});
  {
    // Six heads: ALiBi's non-power-of-two slopes, three per shard.
    LayerCase c = byName.at("block_rms_geglu_gqa_alibi_packed");
    c.name = "block_rms_geglu_alibi6_bias_packed";
    c.config = blockConfig(6, 6, "geglu", false);
    c.config.position = "alibi";
    c.config.bias = true;
    add(c, {2});
  }
  {
    // GQA that tp 4 still divides: two query heads, one kv head per shard.
    LayerCase c = byName.at("block_ln_relu_mqa_rope_causal");
    c.name = "block_ln_swiglu_gqa8x4_rope_qkvbias_causal";
    c.config = blockConfig(8, 4, "swiglu", true);
    c.config.position = "rope";
    c.config.ropeTheta = 10000;
    c.config.qkvBias = c.config.bias = true;
    add(c, {2, 4});
  }
  add(byName.at("conformer_ln_silu_bias_k3"), {2, 4});
  add(byName.at("conformer_rms_gelu_gqa_k4"), {2});
  add(byName.at("embed_plain"), {2, 3});
  add(byName.at("embed_learned"), {2});
  add(byName.at("lm_head"), {2, 3});
  add(byName.at("lm_head_tied"), {2, 3});
  // Whole on every TP rank.
  for (const char *name : {"norm_layernorm", "linear", "mlp_gelu",
                           "attention_pool", "patch_plain", "audio_learned"})
    add(byName.at(name), {2});
  return cases;
}

class TensorParallel : public ::testing::TestWithParam<TpCase> {};

TEST_P(TensorParallel, ShardsEqualTheWholeLayer) {
  checkTensorParallel<float>(GetParam().layer, GetParam().tp, 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Layers, TensorParallel, ::testing::ValuesIn(tpCases()),
                         [](const ::testing::TestParamInfo<TpCase> &info) {
                           return info.param.layer.name + "_tp" +
                                  std::to_string(info.param.tp);
                         });

// In double the only difference is the order of the sums: 1e-12. This also
// runs LayerComm's double collectives (max and the gathers go through
// allGatherBytes).
TEST(TensorParallelDouble, HeadAndBlockToRoundingOnly) {
  std::map<std::string, LayerCase> byName;
  for (LayerCase &c : layerCases())
    byName[c.name] = c;
  checkTensorParallel<double>(byName.at("lm_head_tied"), 3, 1e-12);
  checkTensorParallel<double>(byName.at("block_rms_swiglu_gqa_rope_packed"), 2,
                              1e-12);
}

// An evaluation's prediction over a vocabulary split 3 ways (rows [0, 3),
// [3, 6), [6, 10)): the first largest logit of the whole row, whichever
// shard holds it, NaN skipped; a row of NaN predicts nothing. Generation's
// limit leaves out the ids past it, on whichever shard they are.
TEST(TensorParallelHead, PredictionIsTheFirstLargestLogitOfTheWholeRow) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const int64_t vocab = 10;
  const std::vector<std::vector<float>> rows = {
      {0, 1, 2, 3, 4, 5, 6, 7, 9, 8},       // in the last shard
      {5, 1, 1, 1, 1, 1, 1, 1, 1, 5},       // tie across shards: the first
      {1, 1, 1, 1, 7, 7, 1, 1, 1, 1},       // tie within a shard
      {1, 1, 1, 2, 1, 1, 1, 1, 2, 1},       // tie, second and third shard
      {nan, 9, 1, 1, 1, 1, 1, 1, 1, 1},     // NaN before the maximum
      {1, 1, 1, nan, nan, nan, 1, 1, 4, 1}, // a shard of NaN only
      {nan, nan, nan, nan, nan, nan, nan, nan, nan, nan},
      {-inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf},
  };
  // Per limit (generation's: ids at or past it are not candidates), the
  // predictions; the limits cut the second shard, end the first and cut it.
  const std::vector<std::pair<int64_t, std::vector<int64_t>>> cases = {
      {std::numeric_limits<int64_t>::max(), {8, 0, 4, 3, 1, 8, -1, 0}},
      {8, {7, 0, 4, 3, 1, 0, -1, 0}},
      {5, {4, 0, 4, 3, 1, 0, -1, 0}},
      {3, {2, 0, 0, 0, 1, 0, -1, 0}},
      {2, {1, 0, 0, 0, 1, 0, -1, 0}},
  };
  const int64_t n = static_cast<int64_t>(rows.size());
  for (const auto &[cutoff, want] : cases) {
    const int64_t limit = cutoff; // Captured by the ranks' lambda.
    // Without TP: a scan of the whole row.
    {
      TensorContext whole;
      std::vector<float> logits;
      for (const std::vector<float> &row : rows)
        logits.insert(logits.end(), row.begin(), row.end());
      std::vector<int64_t> got(rows.size());
      vocabParallelArgmax(whole, logits.data(), got.data(), n, {0, vocab},
                          limit);
      EXPECT_EQ(got, want) << "one rank, limit " << limit;
    }
    const int tp = 3;
    std::vector<std::vector<int64_t>> got(tp);
    llvm::Error e = runLocalWorld(tp, 60s, [&](Comm &comm) -> llvm::Error {
      const int r = comm.worldRank();
      auto group = comm.group(iota(tp));
      if (!group)
        return group.takeError();
      TensorContext ctx;
      ctx.shard = {r, tp, group->get()};
      ctx.layer = "lm_head";
      VocabRange range = vocabRange(vocab, ctx.shard);
      std::vector<float> logits;
      for (const std::vector<float> &row : rows)
        logits.insert(logits.end(), row.begin() + range.begin,
                      row.begin() + range.end);
      got[r].resize(rows.size());
      vocabParallelArgmax(ctx, logits.data(), got[r].data(), n, range, limit);
      return ctx.comm.take();
    });
    ASSERT_FALSE(e) << llvm::toString(std::move(e));
    for (int r = 0; r < tp; ++r)
      EXPECT_EQ(got[r], want) << "TP rank " << r << ", limit " << limit;
  }
}

/// An LM head case of layerCases() (`lm_head`, `lm_head_tied`) with
/// random weights from `seed`, built in place (its data points into
/// itself): the whole layer, its data, its weight matrix [vocab, hidden].
struct HeadCase {
  HeadCase(const char *name, uint64_t seed) {
    for (LayerCase &each : layerCases())
      if (each.name == name)
        c = each;
    if (c.name != name)
      llvm::report_fatal_error(llvm::Twine("no layer case '") + name + "'");
    whole = llvm::cantFail(makeLayer<float>(c.kind, c.config, c.part, true));
    TestRng rng(seed);
    randomizeParams(*whole, rng);
    makeCaseData(c, *whole, rng, d);
    weight = d.tiedWeight ? d.tiedWeight.get() : whole->params().front();
  }
  HeadCase(const HeadCase &) = delete;
  HeadCase &operator=(const HeadCase &) = delete;
  LayerCase c;
  std::unique_ptr<Layer<float>> whole;
  CaseData<float> d;
  const Param<float> *weight = nullptr;
};

// The LM head's evaluation (Batch::eval) counts, whole and on every TP
// shard, what the logits computed here give: the loss sum over counted
// targets, their number, and the hits (half the targets made the row's
// argmax, so that there are some); it keeps no state.
TEST(TensorParallelHead, EvaluationCountsTheLogitsLossAndHits) {
  for (const char *name : {"lm_head", "lm_head_tied"}) {
    HeadCase h(name, 5);
    const LayerCase &c = h.c;
    Layer<float> &whole = *h.whole;
    CaseData<float> &d = h.d;
    const Param<float> &w = *h.weight;
    const int64_t vocab = c.config.vocab, width = c.config.hidden;
    HeadEval want;
    for (int64_t t = 0; t < d.in.rows(); ++t) {
      std::vector<double> z(static_cast<size_t>(vocab));
      int64_t best = 0;
      for (int64_t v = 0; v < vocab; ++v) {
        for (int64_t h = 0; h < width; ++h)
          z[v] += static_cast<double>(d.in.ptr()[t * width + h]) *
                  w.value.ptr()[v * width + h];
        if (z[v] > z[best])
          best = v;
      }
      int64_t &target = d.targets[t];
      if (target == mllm::kernels::cpu::kIgnoreIndex)
        continue;
      if (t % 2 == 0)
        target = best;
      double sum = 0;
      for (int64_t v = 0; v < vocab; ++v)
        sum += std::exp(z[v] - z[best]);
      want.lossSum += z[best] + std::log(sum) - z[target];
      ++want.tokens;
      want.correct += best == target;
    }
    ASSERT_GT(want.correct, 0) << name;
    ASSERT_LT(want.correct, want.tokens) << name;
    HeadEval ref;
    {
      Batch<float> b = d.batch;
      b.eval = &ref;
      Tensor<float> out;
      EXPECT_EQ(whole.forward(b, d.in, out), nullptr) << name;
    }
    EXPECT_NEAR(ref.lossSum, want.lossSum, 1e-4 * std::abs(want.lossSum))
        << name;
    EXPECT_EQ(ref.tokens, want.tokens) << name;
    EXPECT_EQ(ref.correct, want.correct) << name;
    const int tp = 3;
    std::vector<HeadEval> got(tp);
    std::vector<std::unique_ptr<Param<float>>> tied(tp);
    llvm::Error e = runLocalWorld(tp, 60s, [&](Comm &comm) -> llvm::Error {
      mllm::kernels::cpu::setNumThreads(1);
      const int r = comm.worldRank();
      auto group = comm.group(iota(tp));
      if (!group)
        return group.takeError();
      auto layer = shardOf(c, whole, d, r, tp, group->get(), tied[r]);
      if (!layer)
        return layer.takeError();
      Batch<float> b = d.batch;
      b.eval = &got[r];
      Tensor<float> out;
      EXPECT_EQ((*layer)->forward(b, d.in, out), nullptr)
          << name << " TP rank " << r;
      return (*layer)->takeCommError();
    });
    ASSERT_FALSE(e) << llvm::toString(std::move(e));
    for (int r = 0; r < tp; ++r) {
      EXPECT_NEAR(got[r].lossSum, want.lossSum, 1e-4 * std::abs(want.lossSum))
          << name << " TP rank " << r;
      EXPECT_EQ(got[r].tokens, want.tokens) << name << " TP rank " << r;
      EXPECT_EQ(got[r].correct, want.correct) << name << " TP rank " << r;
    }
  }
}

// Generation's question to the LM head (Batch::predict): the first largest
// logit at one row among the ids below a limit, computed here from the
// weight, whole and the same on every TP shard; no targets are needed, no
// loss comes out and no state is kept. A row on another CP rank (-1)
// predicts nothing and calls no collective.
TEST(TensorParallelHead, GenerationPredictsOneRowsFirstLargestLogit) {
  for (const char *name : {"lm_head", "lm_head_tied"}) {
    HeadCase h(name, 7);
    const LayerCase &c = h.c;
    Layer<float> &whole = *h.whole;
    CaseData<float> &d = h.d;
    const Param<float> &w = *h.weight;
    const int64_t vocab = c.config.vocab, width = c.config.hidden;
    const int64_t rows = d.in.rows();
    // The questions: rows first and last, every id or the first 2/3 of
    // them (a limit inside a shard), and a row held elsewhere.
    std::vector<HeadPredict> asks;
    for (int64_t row : {int64_t(0), rows - 1})
      for (int64_t choices : {vocab, vocab * 2 / 3})
        asks.push_back({row, choices, -7});
    asks.push_back({-1, vocab, -7});
    std::vector<int64_t> want;
    for (const HeadPredict &a : asks) {
      int64_t best = -1;
      double top = 0;
      for (int64_t v = 0; a.row >= 0 && v < a.choices; ++v) {
        double z = 0;
        for (int64_t h = 0; h < width; ++h)
          z += static_cast<double>(d.in.ptr()[a.row * width + h]) *
               w.value.ptr()[v * width + h];
        if (best < 0 || z > top) {
          best = v;
          top = z;
        }
      }
      want.push_back(best);
    }
    Batch<float> batch = d.batch;
    batch.targets = nullptr;
    for (size_t i = 0; i < asks.size(); ++i) {
      HeadPredict p = asks[i];
      Batch<float> b = batch;
      b.predict = &p;
      Tensor<float> out;
      EXPECT_EQ(whole.forward(b, d.in, out), nullptr) << name;
      EXPECT_EQ(p.predicted, want[i]) << name << " question " << i;
      ASSERT_EQ(out.data.size(), 1u) << name;
      EXPECT_EQ(out.data[0], 0.0f) << name;
    }
    const int tp = 3;
    std::vector<std::vector<HeadPredict>> got(tp, asks);
    std::vector<std::unique_ptr<Param<float>>> tied(tp);
    llvm::Error e = runLocalWorld(tp, 60s, [&](Comm &comm) -> llvm::Error {
      mllm::kernels::cpu::setNumThreads(1);
      const int r = comm.worldRank();
      auto group = comm.group(iota(tp));
      if (!group)
        return group.takeError();
      auto layer = shardOf(c, whole, d, r, tp, group->get(), tied[r]);
      if (!layer)
        return layer.takeError();
      for (HeadPredict &p : got[r]) {
        Batch<float> b = batch;
        b.predict = &p;
        Tensor<float> out;
        EXPECT_EQ((*layer)->forward(b, d.in, out), nullptr)
            << name << " TP rank " << r;
      }
      return (*layer)->takeCommError();
    });
    ASSERT_FALSE(e) << llvm::toString(std::move(e));
    for (int r = 0; r < tp; ++r)
      for (size_t i = 0; i < asks.size(); ++i)
        EXPECT_EQ(got[r][i].predicted, want[i])
            << name << " TP rank " << r << ", question " << i;
  }
}

} // namespace
