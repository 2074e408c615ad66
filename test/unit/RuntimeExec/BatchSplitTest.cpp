//===- BatchSplitTest.cpp - a batch's own CP split ------------------------===//
//
// splitForCP on a layout whose workloads the test knows by hand: one causal
// sample of 128 tokens in blocks of 16 with key tiles of 16, so block b has
// b + 1 tiles to compute. The plan's split (uniform halves) gives the ranks
// 1+2+3+4 = 10 and 5+6+7+8 = 26 tiles (imbalance 26 / 18); a balanced split
// gives both 18.
//
//===----------------------------------------------------------------------===//
#include "mllm/runtime/exec/BatchSplit.h"

#include "mllm/kernels/SequenceLayout.h"

#include <gtest/gtest.h>

#include <set>

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::exec;

namespace {

PlanCPAssignment uniformHalves(const char *policy) {
  PlanCPAssignment a;
  a.part = "llm";
  a.cp = 2;
  a.policy = policy;
  a.tokens = 128;
  a.block = 16;
  a.keyTile = 16;
  a.ranks = {{{0, 64}}, {{64, 128}}};
  return a;
}

BatchLayout causalSample() {
  kernels::SequenceSpec spec;
  spec.textTokens = 128;
  BatchLayout layout;
  layout.tokens = kernels::buildSequenceLayout(spec);
  return layout;
}

/// A 16-token sample in the first block, padding (no attention work) to
/// 128 tokens.
BatchLayout paddedSample() {
  kernels::SequenceSpec spec;
  spec.textTokens = 16;
  BatchLayout padded;
  padded.tokens = kernels::buildSequenceLayout(spec);
  padded.tokens.words.resize(128, 0);
  if (!padded.tokens.segments.empty())
    padded.tokens.segments.resize(128, padded.tokens.segments.back() + 1);
  return padded;
}

int64_t tilesOf(const std::vector<int64_t> &tokens) {
  std::set<int64_t> blocks;
  for (int64_t t : tokens)
    blocks.insert(t / 16);
  int64_t tiles = 0;
  for (int64_t b : blocks)
    tiles += b + 1;
  return tiles;
}

TEST(BatchSplit, BalancesTheBatchAndPricesThePlansSplitOnIt) {
  BatchLayout layout = causalSample();
  ASSERT_EQ(layout.tokens.size(), 128);
  ASSERT_FALSE(static_cast<bool>(splitForCP(uniformHalves("lpt"), layout)));
  ASSERT_EQ(layout.cpTokens.size(), 2u);
  // Every token once, whole blocks, 18 tiles each.
  std::set<int64_t> all;
  for (const auto &rank : layout.cpTokens) {
    EXPECT_EQ(tilesOf(rank), 18);
    EXPECT_EQ(rank.size() % 16, 0u);
    all.insert(rank.begin(), rank.end());
  }
  EXPECT_EQ(all.size(), 128u);
  EXPECT_DOUBLE_EQ(layout.cpImbalance, 1.0);
  EXPECT_DOUBLE_EQ(layout.cpDeclaredImbalance, 26.0 / 18.0);
  EXPECT_GE(layout.cpSeconds, 0.0);
}

TEST(BatchSplit, IlpIsRerunAsLptAndUniformKeepsItsHalves) {
  BatchLayout ilp = causalSample();
  ASSERT_FALSE(static_cast<bool>(splitForCP(uniformHalves("ilp"), ilp)));
  EXPECT_DOUBLE_EQ(ilp.cpImbalance, 1.0);

  BatchLayout uniform = causalSample();
  ASSERT_FALSE(
      static_cast<bool>(splitForCP(uniformHalves("uniform"), uniform)));
  ASSERT_EQ(uniform.cpTokens.size(), 2u);
  EXPECT_EQ(uniform.cpTokens[0].front(), 0);
  EXPECT_EQ(uniform.cpTokens[0].back(), 63);
  EXPECT_DOUBLE_EQ(uniform.cpImbalance, 26.0 / 18.0);
}

TEST(BatchSplit, LargestShareBoundsEveryBatchsSplit) {
  // Workload-driven policies: all but one block (the other rank holds at
  // least one); reached by a sample in the first block and padding after
  // it (zero work), which LPT hands to the rank with no work.
  EXPECT_EQ(cantFail(largestShare(uniformHalves("lpt"))), 112);
  EXPECT_EQ(cantFail(largestShare(uniformHalves("ilp"))), 112);
  BatchLayout padded = paddedSample();
  ASSERT_FALSE(static_cast<bool>(splitForCP(uniformHalves("lpt"), padded)));
  EXPECT_EQ(padded.cpTokens[0].size(), 16u);
  EXPECT_EQ(padded.cpTokens[1].size(), 112u);
  // A short last block is the smallest the other ranks can hold.
  PlanCPAssignment three = uniformHalves("lpt");
  three.cp = 3;
  three.tokens = 120;
  EXPECT_EQ(cantFail(largestShare(three)), 120 - 8 - 16);
  // Uniform and zigzag split every batch alike: their own largest share.
  EXPECT_EQ(cantFail(largestShare(uniformHalves("uniform"))), 64);
  // Zigzag: 6 chunks of the 8 blocks, rank 2 holding blocks 2 to 4.
  three.policy = "zigzag";
  EXPECT_EQ(cantFail(largestShare(three)), 48);
  // Too few tokens for a block per rank: the balancer's error.
  three.tokens = 40;
  llvm::Expected<int64_t> tooFew = largestShare(three);
  EXPECT_FALSE(static_cast<bool>(tooFew));
  llvm::consumeError(tooFew.takeError());
}

TEST(BatchSplit, ThePlansTokenWeightSplitsEveryBatch) {
  // The padded batch above: on tiles alone lpt gives the padding (no
  // attention work) to the rank without work, 16 and 112 tokens; with the
  // plan's token weight the padding's matmuls count: blocks cost 1 + 8 and
  // 8, and lpt alternates them, 64 tokens each.
  BatchLayout padded = paddedSample();
  PlanCPAssignment weighted = uniformHalves("lpt");
  weighted.tokenWeight = 0.5;
  ASSERT_FALSE(static_cast<bool>(splitForCP(weighted, padded)));
  ASSERT_EQ(padded.cpTokens.size(), 2u);
  EXPECT_EQ(padded.cpTokens[0].size(), 64u);
  EXPECT_EQ(padded.cpTokens[1].size(), 64u);
  EXPECT_LE(64, cantFail(largestShare(weighted)));
}

TEST(BatchSplit, RefusesALayoutOfAnotherLength) {
  BatchLayout layout = causalSample();
  PlanCPAssignment a = uniformHalves("lpt");
  a.tokens = 256;
  llvm::Error e = splitForCP(a, layout);
  ASSERT_TRUE(static_cast<bool>(e));
  EXPECT_NE(llvm::toString(std::move(e)).find("128 tokens"), std::string::npos);
}

} // namespace
