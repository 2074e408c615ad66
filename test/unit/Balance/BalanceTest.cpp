//===- BalanceTest.cpp - CP balancer invariants and optimality ------------===//

#include "mllm/runtime/Balance.h"
#include "mllm/kernels/MaskFamilies.h"
#include "mllm/kernels/SequenceLayout.h"

#include "gtest/gtest.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>

using namespace mllm::kernels;
using namespace mllm::runtime;

namespace {

const BalancePolicy kCheap[] = {BalancePolicy::Lpt, BalancePolicy::Zigzag,
                                BalancePolicy::Uniform};

BalanceResult expectOk(llvm::Expected<BalanceResult> r) {
  if (!r) {
    ADD_FAILURE() << llvm::toString(r.takeError());
    return {};
  }
  return std::move(*r);
}

std::string errorOf(llvm::Expected<BalanceResult> r) {
  if (r)
    return "";
  return llvm::toString(r.takeError());
}

void expectValid(const BalanceResult &r, llvm::ArrayRef<int64_t> work,
                 int64_t numTokens, int64_t cp) {
  ASSERT_EQ(static_cast<int64_t>(r.ranks.size()), cp);
  std::vector<int> seen(numTokens);
  int64_t totalWork = 0;
  for (int64_t rank = 0; rank < cp; ++rank) {
    const RankShard &s = r.ranks[rank];
    EXPECT_FALSE(s.tokens.empty());
    EXPECT_TRUE(std::is_sorted(s.tokens.begin(), s.tokens.end()));
    int64_t w = 0, lastBlock = -1;
    for (int64_t t : s.tokens) {
      ASSERT_GE(t, 0);
      ASSERT_LT(t, numTokens);
      ++seen[t];
      if (t / r.blockSize != lastBlock) {
        lastBlock = t / r.blockSize;
        w += work[lastBlock];
        EXPECT_EQ(r.blockOwner[lastBlock], rank);
      }
    }
    EXPECT_EQ(s.workload, w);
    totalWork += s.workload;
  }
  for (int64_t t = 0; t < numTokens; ++t)
    ASSERT_EQ(seen[t], 1) << "token " << t;
  int64_t sum = 0;
  for (int64_t w : work)
    sum += w;
  EXPECT_EQ(totalWork, sum);
}

/// Smallest makespan over every assignment leaving no rank empty.
int64_t bruteForceMakespan(const std::vector<int64_t> &work, int64_t cp) {
  std::vector<int64_t> loads(cp), counts(cp);
  int64_t best = INT64_MAX;
  std::function<void(size_t)> go = [&](size_t b) {
    if (b == work.size()) {
      if (std::count(counts.begin(), counts.end(), 0) == 0)
        best = std::min(best, *std::max_element(loads.begin(), loads.end()));
      return;
    }
    for (int64_t g = 0; g < cp; ++g) {
      loads[g] += work[b];
      ++counts[g];
      go(b + 1);
      loads[g] -= work[b];
      --counts[g];
    }
  };
  go(0);
  return best;
}

} // namespace

TEST(Balance, InvariantsOnFamilies) {
  for (MaskFamily f : allFamilies())
    for (int64_t cp : {1, 2, 3, 4, 8}) {
      GeneratedMask g = generateMask(f, 5000, 3);
      std::vector<int64_t> work = blockWorkloads(g.layout, g.policy);
      for (BalancePolicy p : kCheap) {
        SCOPED_TRACE(testing::Message()
                     << familyName(f) << " cp " << cp << " " << policyName(p));
        BalanceOptions opts;
        opts.policy = p;
        BalanceResult r = expectOk(balanceTokens(g.layout, g.policy, cp, opts));
        expectValid(r, work, 5000, cp);
      }
    }
}

TEST(Balance, LptBound) {
  std::mt19937_64 rng(99);
  for (int iter = 0; iter < 200; ++iter) {
    int64_t cp = 1 + rng() % 16, blocks = cp + rng() % 200;
    std::vector<int64_t> work(blocks);
    int64_t sum = 0, maxW = 0;
    for (int64_t &w : work) {
      w = rng() % 3 == 0 ? 0 : static_cast<int64_t>(rng() % 1000);
      sum += w;
      maxW = std::max(maxW, w);
    }
    int64_t tokens = blocks * 128 - (blocks > cp ? 5 : 0); // ragged tail
    BalanceResult r = expectOk(balanceBlocks(work, tokens, cp));
    expectValid(r, work, tokens, cp);
    EXPECT_LE(static_cast<double>(r.maxWorkload()),
              static_cast<double>(sum) / cp + maxW);
  }
}

TEST(Balance, LptOrderAndTies) {
  // Heaviest first onto the least-loaded rank; ties by fewer blocks, then id.
  std::vector<int64_t> work = {5, 9, 9, 1, 0, 0};
  BalanceResult r = expectOk(balanceBlocks(work, 6 * 128, 2));
  EXPECT_EQ(r.blockOwner, (std::vector<int32_t>{0, 0, 1, 1, 1, 1}));
  EXPECT_EQ(r.maxWorkload(), 14);
  std::vector<int64_t> zeros(8, 0);
  r = expectOk(balanceBlocks(zeros, 8 * 128, 4));
  for (const RankShard &s : r.ranks)
    EXPECT_EQ(s.tokens.size(), 256u);
}

TEST(Balance, BaselinesAreContiguousChunks) {
  std::vector<int64_t> work(16, 1);
  BalanceOptions opts;
  opts.policy = BalancePolicy::Zigzag;
  BalanceResult z = expectOk(balanceBlocks(work, 16 * 128, 4, opts));
  // 8 chunks of 2 blocks; rank 0 gets chunks 0 and 7, rank 3 chunks 3, 4.
  EXPECT_EQ(z.blockOwner, (std::vector<int32_t>{0, 0, 1, 1, 2, 2, 3, 3, 3, 3, 2,
                                                2, 1, 1, 0, 0}));
  opts.policy = BalancePolicy::Uniform;
  BalanceResult u = expectOk(balanceBlocks(work, 16 * 128 - 100, 4, opts));
  for (int64_t r = 0; r < 4; ++r) {
    EXPECT_EQ(u.ranks[r].tokens.front(), r * 512);
    EXPECT_EQ(u.ranks[r].tokens.back(),
              std::min<int64_t>(16 * 128 - 100, (r + 1) * 512) - 1);
  }
}

TEST(Balance, ZigzagBeatenByLptOnMllmMasks) {
  GeneratedMask g = generateMask(MaskFamily::MllmEmbedded, 16384, 5);
  BalanceOptions opts;
  BalanceResult lpt = expectOk(balanceTokens(g.layout, g.policy, 8, opts));
  opts.policy = BalancePolicy::Zigzag;
  BalanceResult zz = expectOk(balanceTokens(g.layout, g.policy, 8, opts));
  EXPECT_LE(lpt.maxWorkload(), zz.maxWorkload());
  EXPECT_LT(lpt.imbalance(), 1.05);
}

TEST(Balance, Errors) {
  std::vector<int64_t> work(3, 1);
  EXPECT_NE(errorOf(balanceBlocks(work, 300, 4)).find("too large"),
            std::string::npos);
  EXPECT_NE(errorOf(balanceBlocks(work, 300, 0)).find("at least 1"),
            std::string::npos);
  EXPECT_NE(errorOf(balanceBlocks(work, 1000, 2)).find("expected 8 block"),
            std::string::npos);
  BalanceOptions opts;
  opts.policy = BalancePolicy::Zigzag;
  std::vector<int64_t> five(5, 1);
  EXPECT_NE(errorOf(balanceBlocks(five, 5 * 128, 4, opts))
                .find("left rank 2 of 4 without tokens"),
            std::string::npos);
  TokenLayout bad;
  bad.words.assign(10, textWord(0));
  bad.segments.assign(9, 0);
  EXPECT_NE(errorOf(balanceTokens(bad, {}, 1)).find("segments"),
            std::string::npos);
  EXPECT_TRUE(parseBalancePolicy("lpt").has_value());
  EXPECT_FALSE(parseBalancePolicy("striped").has_value());
}

TEST(Balance, IlpOptimalOnTinyCases) {
  if (!ilpAvailable())
    GTEST_SKIP() << "built without CBC";
  std::mt19937_64 rng(7);
  for (int iter = 0; iter < 25; ++iter) {
    int64_t cp = 2 + rng() % 2, blocks = cp + rng() % (9 - cp);
    std::vector<int64_t> work(blocks);
    for (int64_t &w : work)
      w = static_cast<int64_t>(rng() % 50);
    BalanceOptions opts;
    opts.policy = BalancePolicy::Ilp;
    BalanceResult ilp = expectOk(balanceBlocks(work, blocks * 128, cp, opts));
    expectValid(ilp, work, blocks * 128, cp);
    EXPECT_TRUE(ilp.provenOptimal);
    EXPECT_EQ(ilp.maxWorkload(), bruteForceMakespan(work, cp));
    BalanceResult lpt = expectOk(balanceBlocks(work, blocks * 128, cp));
    EXPECT_LE(ilp.maxWorkload(), lpt.maxWorkload());
    // A token weight too small to count scales every cost by the same
    // 64: solved in units of their divisor, the proof is the same.
    opts.tokenWeight = 1e-9;
    BalanceResult tiny = expectOk(balanceBlocks(work, blocks * 128, cp, opts));
    EXPECT_TRUE(tiny.provenOptimal);
    EXPECT_EQ(tiny.maxWorkload(), ilp.maxWorkload());
    EXPECT_EQ(tiny.lowerBound, ilp.lowerBound);
  }
  // Where LPT is known to be suboptimal: {3,3,2,2,2} on 2 ranks.
  BalanceOptions opts;
  opts.policy = BalancePolicy::Ilp;
  std::vector<int64_t> work = {3, 3, 2, 2, 2};
  EXPECT_EQ(expectOk(balanceBlocks(work, 640, 2)).maxWorkload(), 7);
  EXPECT_EQ(expectOk(balanceBlocks(work, 640, 2, opts)).maxWorkload(), 6);
}

// The instance of issue 14: SigLIP's 729 image tokens in the middle of 2100
// causal text tokens, 23 blocks over 2 ranks. LPT already meets the bound
// ceil(total / 2); the ILP must say so at once instead of spending CBC's
// time limit, and report the bound it proved against.
TEST(Balance, IlpProvesAnOptimalStartAtOnce) {
  if (!ilpAvailable())
    GTEST_SKIP() << "built without CBC";
  SequenceSpec spec;
  spec.textTokens = 2100;
  ModalitySpec image;
  image.tokensPerItem = 729;
  image.placement = ItemPlacement::At;
  image.positions = {0.5};
  spec.modalities.push_back(image);
  TokenLayout layout = buildSequenceLayout(spec);
  ASSERT_EQ(layout.size(), 2829);
  BalanceOptions opts;
  opts.policy = BalancePolicy::Ilp;
  opts.ilpTimeLimitSeconds = 60; // Would make a regression obvious.
  BalanceResult r = expectOk(balanceTokens(layout, MaskPolicy(), 2, opts));
  int64_t total = r.ranks[0].workload + r.ranks[1].workload;
  EXPECT_EQ(r.blockOwner.size(), 23u);
  EXPECT_TRUE(r.provenOptimal);
  EXPECT_FALSE(r.timedOut);
  EXPECT_EQ(r.lowerBound, (total + 1) / 2);
  EXPECT_EQ(r.maxWorkload(), r.lowerBound);
}

// An instance LPT gets wrong: CBC must improve on the start, prove the
// answer optimal (the integer makespan closes the gap), and report no
// time-out.
TEST(Balance, IlpImprovesOnLptAndProvesIt) {
  if (!ilpAvailable())
    GTEST_SKIP() << "built without CBC";
  std::vector<int64_t> work = {3, 3, 2, 2, 2, 7, 5, 4, 4, 4};
  BalanceOptions opts;
  opts.policy = BalancePolicy::Ilp;
  opts.ilpTimeLimitSeconds = 60;
  BalanceResult lpt = expectOk(balanceBlocks(work, 1280, 2));
  BalanceResult ilp = expectOk(balanceBlocks(work, 1280, 2, opts));
  EXPECT_EQ(ilp.maxWorkload(), 18); // 36 / 2
  EXPECT_LT(ilp.maxWorkload(), lpt.maxWorkload() + 1);
  EXPECT_TRUE(ilp.provenOptimal);
  EXPECT_FALSE(ilp.timedOut);
  EXPECT_EQ(ilp.lowerBound, 18);
}

// Eq. 4 counts attention tiles only, so an exact answer may pile blocks
// (tokens, matmul work) on one rank: on 24k text tokens with eight images
// over 4 ranks CBC's optimum held 9472 tokens on one rank and 5888 on
// another. The ILP evens the block counts under its makespan afterwards.
TEST(Balance, IlpEvensBlockCountsUnderItsMakespan) {
  if (!ilpAvailable())
    GTEST_SKIP() << "built without CBC";
  SequenceSpec spec;
  spec.textTokens = 24 * 1024;
  ModalitySpec image;
  image.tokensPerItem = 729;
  image.items = 8;
  image.placement = ItemPlacement::At;
  image.positions = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8};
  spec.modalities.push_back(image);
  TokenLayout layout = buildSequenceLayout(spec);
  BalanceOptions opts;
  opts.policy = BalancePolicy::Ilp;
  opts.ilpTimeLimitSeconds = 30;
  BalanceResult ilp = expectOk(balanceTokens(layout, MaskPolicy(), 4, opts));
  BalanceResult lpt = expectOk(balanceTokens(layout, MaskPolicy(), 4));
  EXPECT_LE(ilp.maxWorkload(), lpt.maxWorkload());
  size_t most = 0, fewest = SIZE_MAX;
  for (const RankShard &r : ilp.ranks) {
    most = std::max(most, r.tokens.size());
    fewest = std::min(fewest, r.tokens.size());
  }
  EXPECT_LE(most - fewest, 2u * 128) << most << " vs " << fewest;
}

TEST(Balance, IlpRefusesLargeInstances) {
  std::vector<int64_t> work(600, 1);
  BalanceOptions opts;
  opts.policy = BalancePolicy::Ilp;
  std::string err = errorOf(balanceBlocks(work, 600 * 128, 4, opts));
  EXPECT_FALSE(err.empty());
}

TEST(Balance, LabelsShiftedGloballyBeforeSplit) {
  GeneratedMask g = generateMask(MaskFamily::MultimodalPacked, 3000, 11);
  std::mt19937_64 rng(5);
  std::vector<int64_t> labels(3000);
  for (int64_t &l : labels)
    l = static_cast<int64_t>(rng() % 32000);
  BalanceResult r = expectOk(balanceTokens(g.layout, g.policy, 4));
  auto split = shiftAndSplitLabels(labels, r, g.layout.segments);
  ASSERT_TRUE(static_cast<bool>(split)) << llvm::toString(split.takeError());
  int64_t crossRank = 0, boundaries = 0;
  for (size_t rank = 0; rank < r.ranks.size(); ++rank) {
    const std::vector<int64_t> &tokens = r.ranks[rank].tokens;
    ASSERT_EQ((*split)[rank].size(), tokens.size());
    for (size_t j = 0; j < tokens.size(); ++j) {
      int64_t t = tokens[j];
      bool last = t + 1 == 3000 || segmentSample(g.layout.segments[t]) !=
                                       segmentSample(g.layout.segments[t + 1]);
      boundaries += last;
      EXPECT_EQ((*split)[rank][j], last ? -100 : labels[t + 1]);
      // The next token lives on another rank: a per-rank shift would be wrong.
      crossRank += !last && (j + 1 == tokens.size() || tokens[j + 1] != t + 1);
    }
  }
  EXPECT_EQ(boundaries, 4);
  EXPECT_GT(crossRank, 0);
  std::vector<int64_t> shortLabels(10);
  EXPECT_FALSE(static_cast<bool>(shiftLabels(shortLabels, g.layout.segments)));
  llvm::consumeError(shiftLabels(shortLabels, g.layout.segments).takeError());
}

TEST(Balance, BalancesADeclaredLayout) {
  // The compiler and the runtime both balance the layout of a declared data
  // layout; the result covers every token once.
  mllm::kernels::SequenceSpec spec;
  spec.textTokens = 1024;
  mllm::kernels::ModalitySpec image;
  image.tokensPerItem = 729;
  spec.modalities = {image};
  mllm::kernels::TokenLayout layout = mllm::kernels::buildSequenceLayout(spec);
  auto result = mllm::runtime::balanceTokens(layout, {}, 2);
  ASSERT_TRUE(static_cast<bool>(result)) << llvm::toString(result.takeError());
  EXPECT_EQ(result->ranks[0].tokens.size() + result->ranks[1].tokens.size(),
            1753u);
  EXPECT_LT(result->imbalance(), 1.05);
}

TEST(Balance, TokenWeightBalancesTheTokensToo) {
  // 288 tokens in blocks of 128, 128 and 32 over cp 2, the short block
  // holding the most attention: on tiles alone lpt gives it a rank of its
  // own and the other two blocks (256 tokens) to the other rank; with a
  // token weight the matmuls count, and the two whole blocks part.
  const std::vector<int64_t> work = {4, 8, 12};
  auto tilesOnly = expectOk(balanceBlocks(work, 288, 2));
  EXPECT_EQ(tilesOnly.ranks[0].tokens.size(), 32u);
  EXPECT_EQ(tilesOnly.ranks[1].tokens.size(), 256u);
  // Without a weight a rank's cost is its workload.
  for (const RankShard &r : tilesOnly.ranks)
    EXPECT_EQ(r.cost, static_cast<double>(r.workload));

  BalanceOptions opts;
  opts.tokenWeight = 1.0;
  auto weighted = expectOk(balanceBlocks(work, 288, 2, opts));
  expectValid(weighted, work, 288, 2);
  size_t most = 0;
  for (const RankShard &r : weighted.ranks) {
    most = std::max(most, r.tokens.size());
    // What lpt balanced: tiles + weight x tokens.
    EXPECT_NEAR(r.cost,
                static_cast<double>(r.workload) +
                    opts.tokenWeight * static_cast<double>(r.tokens.size()),
                1e-9);
  }
  EXPECT_EQ(most, 160u);
  EXPECT_LT(weighted.maxCost(), 256.0 + 12.0);
}

TEST(Balance, TokenWeightAFractionOfATileCounts) {
  // Four equal blocks of tiles over cp 2 and a short fifth block: a weight
  // of 1/16 tile per token still moves the tie-break by tokens.
  const std::vector<int64_t> work = {10, 10, 10, 10, 0};
  BalanceOptions opts;
  opts.tokenWeight = 1.0 / 16;
  auto r = expectOk(balanceBlocks(work, 4 * 128 + 64, 2, opts));
  expectValid(r, work, 4 * 128 + 64, 2);
  for (const RankShard &s : r.ranks)
    EXPECT_NEAR(s.cost,
                static_cast<double>(s.workload) +
                    static_cast<double>(s.tokens.size()) / 16,
                1.0 / 64 * 5);
}

TEST(Balance, TokenWeightIsChecked) {
  const std::vector<int64_t> work = {1, 1};
  for (double bad : {-1.0, std::nan(""), 2 * kMaxTokenWeight}) {
    BalanceOptions opts;
    opts.tokenWeight = bad;
    EXPECT_NE(errorOf(balanceBlocks(work, 256, 2, opts)).find("token weight"),
              std::string::npos)
        << bad;
  }
}

TEST(Balance, IlpWithATokenWeightIsNoWorseThanLpt) {
  if (!ilpAvailable())
    GTEST_SKIP() << "built without CBC";
  std::mt19937_64 rng(11);
  for (int trial = 0; trial < 20; ++trial) {
    int64_t blocks = 4 + static_cast<int64_t>(rng() % 6);
    std::vector<int64_t> work(static_cast<size_t>(blocks));
    for (int64_t &w : work)
      w = static_cast<int64_t>(rng() % 40);
    int64_t tokens = (blocks - 1) * 128 + 1 + static_cast<int64_t>(rng() % 128);
    BalanceOptions opts;
    opts.tokenWeight = 0.05 * static_cast<double>(rng() % 10);
    auto lpt = expectOk(balanceBlocks(work, tokens, 2, opts));
    opts.policy = BalancePolicy::Ilp;
    auto ilp = expectOk(balanceBlocks(work, tokens, 2, opts));
    expectValid(ilp, work, tokens, 2);
    EXPECT_LE(ilp.maxCost(), lpt.maxCost() + 1e-9) << "trial " << trial;
    // The bound, in tiles, is one no split beats.
    EXPECT_LE(static_cast<double>(ilp.lowerBound), ilp.maxCost() + 1e-9);
  }
}
