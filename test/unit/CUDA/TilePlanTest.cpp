//===- TilePlanTest.cpp - The device tile plan's logic on the CPU ---------===//
//
// The CUDA attention's map comes from TilePlan.h's steps (summaries,
// classifyTile on whole tiles, exact refinement). Run on the host, they
// must give exactly the CPU plan's classes (cpu::prepareAttention at the
// same tile shape) and the dense mask's truth, for every mask family,
// random layouts and CP orderings; the conservative step must be sound.
//
//===----------------------------------------------------------------------===//

#include "TilePlanHost.h"

#include "../Attention/AttentionTestUtil.h"

#include "mllm/kernels/HostDevice.h"

#include "gtest/gtest.h"

#include <algorithm>
#include <numeric>

using namespace mllm::attention_test;
using namespace mllm::cuda_test;

namespace {

// The portability macro is empty for a host compiler: the CPU build of the
// shared headers is what it was.
#define MLLM_STRINGIFY(x) #x
#define MLLM_EXPAND(x) MLLM_STRINGIFY(x)
static_assert(sizeof(MLLM_EXPAND(MLLM_HD)) == 1, "MLLM_HD must be empty");
static_assert(MLLM_DEVICE_PASS == 0, "host pass");

/// The host plan against the CPU plan and the dense mask.
void expectSameAsCpu(const Problem &p, int64_t rows, int64_t cols) {
  HostTokenList q(p.layout, p.qPos), k(p.layout, p.kPos);
  HostTilePlan host = buildHostTilePlan(q, k, p.policy, rows, cols);
  Problem shaped = p;
  shaped.tiles = {rows, cols};
  AttentionPlan cpu = prepareAttention(shaped.tokens());
  ASSERT_EQ(host.rowTiles, cpu.rowTiles);
  ASSERT_EQ(host.colTiles, cpu.colTiles);
  std::vector<uint8_t> dense = buildDenseMask(p.layout, p.policy);
  const int64_t s = p.layout.size();
  for (int64_t r = 0; r < host.rowTiles; ++r)
    for (int64_t c = 0; c < host.colTiles; ++c) {
      SCOPED_TRACE(testing::Message() << "tile " << r << "," << c);
      int64_t allowed = 0, total = 0;
      for (int64_t i = r * rows; i < std::min(p.qLen(), (r + 1) * rows); ++i)
        for (int64_t j = c * cols; j < std::min(p.kLen(), (c + 1) * cols);
             ++j, ++total)
          allowed += dense[p.qPos[i] * s + p.kPos[j]];
      TileClass truth = allowed == 0       ? TileClass::Skip
                        : allowed == total ? TileClass::Full
                                           : TileClass::Partial;
      TileClass summary = host.conservative[r * host.colTiles + c];
      if (summary == TileClass::Skip)
        ASSERT_EQ(allowed, 0) << "unsound Skip";
      if (summary == TileClass::Full)
        ASSERT_EQ(allowed, total) << "unsound Full";
      ASSERT_EQ(host.exact[r * host.colTiles + c], truth);
      ASSERT_EQ(host.exact[r * host.colTiles + c], cpu.tileClass(r, c));
    }
  EXPECT_EQ(host.visiblePairs, cpu.visiblePairs());
}

TEST(TilePlan, FamiliesAtTheKernelTile) {
  for (MaskFamily family : allFamilies())
    for (int64_t n : {1, 63, 64, 65, 300, 1000}) {
      SCOPED_TRACE(testing::Message() << familyName(family) << " " << n);
      GeneratedMask g = generateMask(family, n, 7);
      Problem p = plainProblem(g.layout, g.policy, {64, 64}, 1, 1, 64);
      expectSameAsCpu(p, 64, 64); // the CUDA kernels' tile (LinkTest.cpp)
    }
}

TEST(TilePlan, CornstarchPolicy) {
  GeneratedMask g = generateMask(MaskFamily::MultimodalPacked, 700, 3);
  MaskPolicy policy;
  policy.kind = PolicyKind::Cornstarch;
  expectSameAsCpu(plainProblem(g.layout, policy, {64, 64}, 1, 1, 64), 64, 64);
}

TEST(TilePlan, RandomLayoutsOtherTiles) {
  std::mt19937_64 rng(11);
  const int64_t shapes[][2] = {{64, 64}, {16, 8}, {5, 3}, {128, 32}};
  for (int iter = 0; iter < 24; ++iter) {
    int64_t n = 50 + static_cast<int64_t>(rng() % 400);
    MaskPolicy policy;
    policy.window = iter % 3 == 0 ? 17 : 0;
    Problem p = plainProblem(randomLayout(rng, n), policy, {64, 64}, 1, 1, 64);
    SCOPED_TRACE(testing::Message() << "iteration " << iter);
    expectSameAsCpu(p, shapes[iter % 4][0], shapes[iter % 4][1]);
  }
}

TEST(TilePlan, ContextParallelOrders) {
  std::mt19937_64 rng(5);
  for (int iter = 0; iter < 12; ++iter) {
    int64_t n = 200 + static_cast<int64_t>(rng() % 600);
    Problem p = plainProblem(randomLayout(rng, n), {}, {64, 64}, 1, 1, 64);
    // Keys in a permuted block order (an all-gather in rank order), the
    // queries one rank's blocks, some blocks not tile multiples.
    int64_t block = 64 + 32 * (iter % 2);
    std::vector<int64_t> order(numTiles(n, block));
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    p.kPos = blockPositions(n, block, order);
    std::vector<int64_t> mine(order.begin(),
                              order.begin() + (order.size() + 1) / 2);
    p.qPos = blockPositions(n, block, mine);
    SCOPED_TRACE(testing::Message() << "iteration " << iter);
    expectSameAsCpu(p, 64, 64);
  }
}

TEST(TilePlan, EmptyLists) {
  GeneratedMask g = generateMask(MaskFamily::Causal, 100, 1);
  Problem p = plainProblem(g.layout, g.policy, {64, 64}, 1, 1, 64);
  p.qPos.clear();
  HostTokenList q(p.layout, p.qPos), k(p.layout, p.kPos);
  HostTilePlan host = buildHostTilePlan(q, k, p.policy, 64, 64);
  EXPECT_EQ(host.rowTiles, 0);
  EXPECT_EQ(host.visiblePairs, 0);
}

} // namespace
