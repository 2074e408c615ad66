//===- ContextParallelTest.cpp - CP (and TP x CP) against the whole layer -===//
//
// A multimodal packed sequence (text, an image, text; text, an audio clip,
// text; padding) split over 2 and 3 CP ranks with the balancer's lpt
// assignment on 4-token blocks (uneven, non-contiguous) and by hand. Each
// CP rank runs its tokens of both sequences; its output and input gradient
// rows equal the whole layer's rows at its tokens, and the weight
// gradients summed over the ranks equal the whole layer's (1e-5 relative in
// float). The LM head's loss sums over the ranks to the whole loss. One
// block also runs TP 2 x CP 2 on four ranks.
//
//===----------------------------------------------------------------------===//

#include "ParallelHarness.h"

#include "mllm/kernels/Bitfield.h"
#include "mllm/kernels/cpu/Threads.h"
#include "mllm/runtime/Balance.h"

#include "gtest/gtest.h"

using namespace mllm::kernels;
using namespace mllm::runtime;
using namespace mllm::runtime::cpu;
using namespace mllm::runtime::cpu::test;
using namespace std::chrono_literals;

namespace {

constexpr int64_t kTokens = 38;

/// Sample 0: text 0-5, image 6-17, text 18-23; sample 1: text 24-27, audio
/// 28-31, text 32-33; padding 34-37. Positions restart per sample.
void multimodalLayout(TokenLayout &layout, std::vector<int64_t> &positions) {
  layout.words.assign(kTokens, 0);
  layout.segments.assign(kTokens, 0);
  positions.assign(kTokens, 0);
  for (int64_t i = 0; i < 34; ++i) {
    const bool image = i >= 6 && i < 18, audio = i >= 28 && i < 32;
    const uint32_t sample = i < 24 ? 0 : 1;
    layout.words[i] = image   ? modalityWord(0)
                      : audio ? modalityWord(1)
                              : textWord(2);
    layout.segments[i] = makeSegment(sample, image || audio ? 1 : 0);
    positions[i] = sample ? i - 24 : i;
  }
}

using Assignment = std::vector<std::vector<int64_t>>;

Assignment lpt(int64_t cp) {
  TokenLayout layout;
  std::vector<int64_t> positions;
  multimodalLayout(layout, positions);
  BalanceOptions opts;
  opts.policy = BalancePolicy::Lpt;
  opts.tiles.rows = 4;
  auto r = balanceTokens(layout, MaskPolicy(), cp, opts);
  if (!r) {
    ADD_FAILURE() << llvm::toString(r.takeError());
    return {};
  }
  Assignment a;
  for (const RankShard &s : r->ranks)
    a.push_back(s.tokens);
  return a;
}

/// Uneven and non-contiguous (13, 11, 14 tokens).
Assignment byHand() {
  auto range = [](int64_t b, int64_t e, std::vector<int64_t> &v) {
    for (int64_t i = b; i < e; ++i)
      v.push_back(i);
  };
  Assignment a(3);
  range(0, 5, a[0]);
  range(30, 38, a[0]);
  range(5, 13, a[1]);
  range(20, 23, a[1]);
  range(13, 20, a[2]);
  range(23, 30, a[2]);
  return a;
}

/// Runs `c` on tp x cp ranks (world rank = cp rank * tp + tp rank) and
/// compares with the whole layer.
template <typename T>
void checkParallel(LayerCase c, const Assignment &assignment, int tp,
                   double tolerance) {
  const int cp = static_cast<int>(assignment.size());
  ASSERT_GT(cp, 0);
  c.tokens = kTokens;
  c.mask = Mask::None; // the layout is set below
  auto made = makeLayer<T>(c.kind, c.config, c.part, /*trainable=*/true);
  ASSERT_TRUE(static_cast<bool>(made)) << llvm::toString(made.takeError());
  Layer<T> &whole = **made;
  TestRng rng(5);
  randomizeParams(whole, rng);
  CaseData<T> d;
  makeCaseData(c, whole, rng, d);
  multimodalLayout(d.layout, d.batch.positions);
  d.batch.layout = &d.layout;
  mllm::kernels::cpu::setNumThreads(1);
  Results<T> ref = runLayer(whole, d.batch, d.in, d.dOut);
  const bool head = c.kind == "lm_head", input = d.in.data.empty();
  const int64_t S = c.sequences;

  std::vector<std::unique_ptr<Layer<T>>> layers(tp * cp);
  std::vector<Results<T>> results(tp * cp);
  llvm::Error e = runLocalWorld(tp * cp, 60s, [&](Comm &comm) -> llvm::Error {
    mllm::kernels::cpu::setNumThreads(1);
    const int w = comm.worldRank(), t = w % tp, r = w / tp;
    std::vector<int64_t> tpRanks, cpRanks;
    for (int i = 0; i < tp; ++i)
      tpRanks.push_back(r * tp + i);
    for (int j = 0; j < cp; ++j)
      cpRanks.push_back(j * tp + t);
    auto tpGroup = comm.group(tpRanks);
    auto cpGroup = comm.group(cpRanks);
    if (!tpGroup || !cpGroup)
      return llvm::joinErrors(tpGroup.takeError(), cpGroup.takeError());
    auto layer = makeLayer<T>(c.kind, c.config, c.part, true,
                              TensorShard{t, tp, tpGroup->get()});
    if (!layer)
      return layer.takeError();
    copyShard(whole, **layer);
    const std::vector<int64_t> &mine = assignment[r];
    ContextParallel share{cpGroup->get(), assignment};
    Batch<T> b = d.batch;
    b.tokens = static_cast<int64_t>(mine.size());
    b.cp = &share;
    std::vector<int64_t> ids, targets;
    if (!d.tokenIds.empty())
      b.tokenIds = (ids = pickIds(d.tokenIds, S, kTokens, mine)).data();
    if (!d.targets.empty())
      b.targets = (targets = pickIds(d.targets, S, kTokens, mine)).data();
    Tensor<T> in = input ? Tensor<T>() : pickRows(d.in, S, kTokens, mine);
    Tensor<T> dOut = head ? d.dOut : pickRows(d.dOut, S, kTokens, mine);
    results[w] = runLayer(**layer, b, in, dOut);
    layers[w] = std::move(*layer);
    return llvm::Error::success();
  });
  ASSERT_FALSE(e) << llvm::toString(std::move(e));

  double loss = 0;
  std::map<std::string, Tensor<T>> summed;
  for (int r = 0; r < cp; ++r) {
    std::vector<std::vector<Param<T> *>> params;
    std::vector<Results<T>> shards;
    for (int t = 0; t < tp; ++t) {
      const Results<T> &got = results[r * tp + t];
      const std::string who =
          "CP rank " + std::to_string(r) + ", TP rank " + std::to_string(t);
      if (head) {
        EXPECT_EQ(got.out.data, results[r * tp].out.data) << who;
      } else {
        EXPECT_LE(relError(got.out.data,
                           pickRows(ref.out, S, kTokens, assignment[r]).data),
                  tolerance)
            << "output of " << who;
      }
      if (!input)
        EXPECT_LE(relError(got.dIn.data,
                           pickRows(ref.dIn, S, kTokens, assignment[r]).data),
                  tolerance)
            << "input gradient of " << who;
      params.push_back(layers[r * tp + t]->params());
      shards.push_back(got);
    }
    if (head)
      loss += double(results[r * tp].out.data[0]);
    // The executor's gradient sync sums the CP ranks (in rank order here).
    for (auto &[name, g] : gatherTensorParallel(params, shards)) {
      Tensor<T> &dst = summed[name];
      if (r == 0)
        dst = g;
      else
        for (size_t i = 0; i < g.data.size(); ++i)
          dst.data[i] += g.data[i];
    }
  }
  if (head)
    EXPECT_LE(relError(std::vector<double>{loss},
                       std::vector<double>{double(ref.out.data[0])}),
              tolerance)
        << "the ranks' losses sum to the whole loss";
  expectGradsNear(summed, ref.grads, tolerance,
                  c.name + " tp " + std::to_string(tp) + " cp " +
                      std::to_string(cp));
}

std::map<std::string, LayerCase> cases() {
  std::map<std::string, LayerCase> byName;
  for (LayerCase &c : layerCases())
    byName[c.name] = c;
  return byName;
}

struct CpCase {
  std::string layer, split;
};

class ContextParallelTest : public ::testing::TestWithParam<CpCase> {};

TEST_P(ContextParallelTest, RanksEqualTheWholeSequence) {
  LayerCase c = cases().at(GetParam().layer);
  if (c.config.position == "learned")
    c.config.positions = kTokens; // the positions restart per sample
  const std::string &split = GetParam().split;
  Assignment a = split == "lpt2" ? lpt(2) : split == "lpt3" ? lpt(3) : byHand();
  checkParallel<float>(c, a, /*tp=*/1, 1e-5);
}

std::vector<CpCase> cpCases() {
  std::vector<CpCase> out;
  for (const char *layer :
       {"block_rms_swiglu_gqa_rope_packed", "block_rms_geglu_gqa_alibi_packed",
        "block_ln_gelu_mha_bias", "embed_learned", "lm_head", "norm_rmsnorm"})
    for (const char *split : {"lpt2", "lpt3", "hand3"})
      out.push_back({layer, split});
  return out;
}

INSTANTIATE_TEST_SUITE_P(Layers, ContextParallelTest,
                         ::testing::ValuesIn(cpCases()),
                         [](const ::testing::TestParamInfo<CpCase> &info) {
                           return info.param.layer + "_" + info.param.split;
                         });

TEST(ContextParallelSplits, AreUnevenAndNonContiguous) {
  // The assignments above must exercise what CP has to get right.
  for (const Assignment &a : {lpt(2), lpt(3), byHand()}) {
    bool uneven = false, gap = false;
    for (const auto &r : a) {
      uneven |= r.size() != a[0].size();
      for (size_t i = 1; i < r.size(); ++i)
        gap |= r[i] != r[i - 1] + 1;
    }
    EXPECT_TRUE(gap) << "every rank's tokens are contiguous";
    EXPECT_TRUE(uneven || a.size() == 2) << "even counts";
  }
}

TEST(TensorAndContextParallel, BlockOnTp2Cp2) {
  LayerCase c = cases().at("block_rms_swiglu_gqa_rope_packed");
  checkParallel<float>(c, lpt(2), /*tp=*/2, 1e-5);
  c = cases().at("lm_head");
  checkParallel<float>(c, byHand(), /*tp=*/2, 1e-5);
}

// Double: 1e-12, and LayerComm's double gather and reduce-scatter.
TEST(ContextParallelDouble, BlockToRoundingOnly) {
  checkParallel<double>(cases().at("block_rms_geglu_gqa_alibi_packed"),
                        byHand(), /*tp=*/1, 1e-12);
}

TEST(ContextParallelDeathTest, ConformerRefusesCP) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  LayerCase c = cases().at("conformer_ln_silu_bias_k3");
  EXPECT_DEATH(checkParallel<float>(c, Assignment{iota(kTokens)}, 1, 1e-5),
               "conformer_block: context parallelism is not supported");
}

} // namespace
