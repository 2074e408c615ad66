//===- PlanTest.cpp - Attention plans against the dense mask --------------===//
//
// The plan's summary map must equal the CP balancer's buildTileMap in the
// plain case and be conservative for any ordering; its refined tile
// references and Partial bits must be exact; the work lists must cover
// every non-skipped tile once.
//
//===----------------------------------------------------------------------===//

#include "AttentionTestUtil.h"

#include "mllm/kernels/OnlineSoftmax.h"

#include "gtest/gtest.h"

#include <algorithm>

using namespace mllm::attention_test;

namespace {

/// Every tile of the plan against the dense mask over its positions.
void expectExact(const Problem &p, const AttentionPlan &plan) {
  std::vector<uint8_t> dense = buildDenseMask(p.layout, p.policy);
  int64_t s = p.layout.size(), rows = p.tiles.rows, cols = p.tiles.cols;
  ASSERT_EQ(plan.rowTiles, numTiles(p.qLen(), rows));
  ASSERT_EQ(plan.colTiles, numTiles(p.kLen(), cols));
  int64_t visible = 0;
  for (int64_t r = 0; r < plan.rowTiles; ++r)
    for (int64_t c = 0; c < plan.colTiles; ++c) {
      int64_t allowed = 0, total = 0;
      int32_t ref = plan.ref(r, c);
      for (int64_t i = r * rows; i < std::min(p.qLen(), (r + 1) * rows); ++i)
        for (int64_t j = c * cols; j < std::min(p.kLen(), (c + 1) * cols);
             ++j) {
          bool a = dense[p.qPos[i] * s + p.kPos[j]];
          allowed += a;
          ++total;
          if (ref >= 0)
            ASSERT_EQ(a, (plan.bits(ref)[i - r * rows] >> (j - c * cols)) & 1)
                << "pair " << i << "," << j;
        }
      visible += allowed;
      TileClass summary = plan.map.at(r, c);
      SCOPED_TRACE(testing::Message() << "tile " << r << "," << c);
      if (summary == TileClass::Skip)
        ASSERT_EQ(allowed, 0);
      if (summary == TileClass::Full)
        ASSERT_EQ(allowed, total);
      TileClass exact = allowed == 0       ? TileClass::Skip
                        : allowed == total ? TileClass::Full
                                           : TileClass::Partial;
      ASSERT_EQ(plan.tileClass(r, c), exact);
    }
  EXPECT_EQ(plan.visiblePairs(), visible);

  // Spans cover exactly the non-skipped tiles of their row, in order.
  for (int64_t r = 0; r < plan.rowTiles; ++r) {
    std::vector<int64_t> covered;
    for (int64_t e = plan.spanStart[r]; e < plan.spanStart[r + 1]; ++e)
      for (int64_t c = plan.spans[e].first; c <= plan.spans[e].last; ++c)
        covered.push_back(c);
    std::vector<int64_t> want;
    for (int64_t c = 0; c < plan.colTiles; ++c)
      if (plan.tileClass(r, c) != TileClass::Skip)
        want.push_back(c);
    ASSERT_EQ(covered, want) << "row " << r;
    EXPECT_EQ(plan.rowWork[r], static_cast<int64_t>(want.size()));
  }
  // Key blocks reach every non-skipped tile once.
  int64_t inBlocks = 0;
  for (size_t b = 0; b + 1 < plan.blockStart.size(); ++b)
    for (int64_t e = plan.blockStart[b]; e < plan.blockStart[b + 1]; ++e)
      for (int64_t c = plan.blockRows[e].first; c <= plan.blockRows[e].last;
           ++c)
        inBlocks += plan.tileClass(plan.blockRows[e].row, c) != TileClass::Skip;
  EXPECT_EQ(inBlocks, plan.nonSkippedTiles());
  for (size_t i = 1; i < plan.rowOrder.size(); ++i)
    EXPECT_GE(plan.rowWork[plan.rowOrder[i - 1]],
              plan.rowWork[plan.rowOrder[i]]);
}

} // namespace

TEST(Plan, PlainMapIsTheBalancersMap) {
  for (MaskFamily f : allFamilies())
    for (TileShape t : {TileShape{128, 32}, TileShape{16, 8}}) {
      SCOPED_TRACE(familyName(f));
      GeneratedMask g = generateMask(f, 1500, 3);
      AttentionPlan plan =
          prepareAttention(AttentionTokens::whole(g.layout, g.policy, t));
      TileMap map = buildTileMap(g.layout, g.policy, t);
      ASSERT_EQ(plan.map.numRowTiles(), map.numRowTiles());
      ASSERT_EQ(plan.map.numColTiles(), map.numColTiles());
      EXPECT_TRUE(std::equal(map.data(),
                             map.data() + map.numRowTiles() * map.numColTiles(),
                             plan.map.data()));
      // On the families the map's Skip is exact, so the refinement never
      // removes work the balancer counted.
      EXPECT_EQ(plan.rowWork, map.rowWorkloads());
    }
}

TEST(Plan, ExactOnFamilies) {
  for (MaskFamily f : allFamilies()) {
    SCOPED_TRACE(familyName(f));
    GeneratedMask g = generateMask(f, 700, 4);
    Problem p = plainProblem(g.layout, g.policy, {64, 16}, 1, 1, 8);
    expectExact(p, prepareAttention(p.tokens()));
  }
}

TEST(Plan, ExactOnRandomLayoutsAndOrders) {
  std::mt19937_64 rng(99);
  const TileShape shapes[] = {{128, 32}, {16, 8}, {32, 64}, {7, 5}};
  for (int iter = 0; iter < 40; ++iter) {
    int64_t n = 1 + static_cast<int64_t>(rng() % 500);
    MaskPolicy policy{iter % 3 == 2 ? PolicyKind::Cornstarch : PolicyKind::Mllm,
                      iter % 3 == 1 ? static_cast<int64_t>(1 + rng() % 90) : 0};
    Problem p =
        plainProblem(randomLayout(rng, n), policy, shapes[iter % 4], 1, 1, 8);
    if (iter % 2) { // any order at all: the summaries are of sets
      std::shuffle(p.qPos.begin(), p.qPos.end(), rng);
      std::shuffle(p.kPos.begin(), p.kPos.end(), rng);
      p.qPos.resize(p.qPos.size() / 2 + 1);
    }
    SCOPED_TRACE(testing::Message() << "iter " << iter << " n " << n);
    AttentionPlan plan = prepareAttention(p.tokens());
    expectExact(p, plan);
    if (iter % 2 == 0) {
      TileMap map = buildTileMap(p.layout, policy, p.tiles);
      EXPECT_TRUE(std::equal(map.data(),
                             map.data() + map.numRowTiles() * map.numColTiles(),
                             plan.map.data()));
    }
  }
}

TEST(Plan, ContextParallelBlocks) {
  GeneratedMask g = generateMask(MaskFamily::MllmEmbedded, 1100, 8);
  Problem p = plainProblem(g.layout, g.policy, {128, 32}, 1, 1, 8);
  p.qPos = blockPositions(1100, 128, {8, 0, 4});
  p.kPos = blockPositions(1100, 128, {2, 8, 0, 5, 1, 6, 4, 3, 7});
  AttentionPlan plan = prepareAttention(p.tokens());
  expectExact(p, plan);
  EXPECT_GT(plan.skippedFraction(), 0.1);
}

TEST(Plan, SpanAndBlockSizes) {
  GeneratedMask g = generateMask(MaskFamily::Causal, 1000, 1);
  AttentionPlanOptions o;
  o.spanKeys = 64;
  o.keyBlockKeys = 96;
  AttentionPlan plan = prepareAttention(
      AttentionTokens::whole(g.layout, g.policy, {128, 32}), o);
  for (const AttentionPlan::Span &s : plan.spans)
    EXPECT_LE(s.last - s.first + 1, 2);
  EXPECT_EQ(plan.blockTiles, 3);
  EXPECT_EQ(plan.maxSpanKeys, 64);
  EXPECT_EQ(plan.maxBlockKeys, 96);
  // Causal at 1000: the last row reaches every key tile.
  EXPECT_EQ(plan.rowWork[plan.rowOrder[0]], plan.colTiles);
  EXPECT_EQ(plan.rowOrder[0], plan.rowTiles - 1);
}

TEST(Plan, ChecksInputs) {
  TokenLayout l = generateMask(MaskFamily::Causal, 10, 1).layout;
  AttentionTokens t = AttentionTokens::whole(l, {}, {4, 4});
  EXPECT_EQ(checkAttentionTokens(t), "");
  std::vector<int64_t> bad = {0, 10};
  t.kPos = bad.data();
  t.kLen = 2;
  EXPECT_NE(checkAttentionTokens(t).find("position 10"), std::string::npos);
  t = AttentionTokens::whole(l, {}, {4, 65});
  EXPECT_NE(checkAttentionTokens(t), "");
  t = AttentionTokens::whole(l, {}, {4, 4});
  t.qLen = 11;
  EXPECT_NE(checkAttentionTokens(t), "");
  t.layout = nullptr;
  EXPECT_EQ(checkAttentionTokens(t), "no token layout");

  AttentionHeads h;
  h.heads = 4;
  h.kvHeads = 2;
  EXPECT_EQ(checkAttentionHeads(h), "");
  h.kvHeads = 3;
  EXPECT_EQ(checkAttentionHeads(h), "3 kv heads do not divide 4 heads");
  h.kvHeads = 0;
  EXPECT_NE(checkAttentionHeads(h), "");
}
