//===- DenseCompareTest.cpp - Kernel against dense masked attention -------===//
//
// Forward (O, LSE) and backward (dQ, dK, dV) of the fp32 kernel against the
// double dense reference on every mask family and length, with GQA, ALiBi,
// padding and CP orderings.
//
//===----------------------------------------------------------------------===//

#include "AttentionTestUtil.h"

#include "gtest/gtest.h"

#include <algorithm>
#include <cmath>
#include <tuple>

using namespace mllm::attention_test;

namespace {

constexpr double kTol = 1e-5;

void expectMatches(const Problem &p, uint64_t seed, int threads = 2) {
  Inputs<float> in = randomInputs<float>(p, seed);
  Outputs<float> got = runKernel(p, in, threads);
  Outputs<double> want = denseReference(p, in);
  EXPECT_LE(relativeError(got.o, want.o), kTol) << "O";
  EXPECT_LE(relativeError(got.lse, want.lse), kTol) << "LSE";
  EXPECT_LE(relativeError(got.dq, want.dq), kTol) << "dQ";
  EXPECT_LE(relativeError(got.dk, want.dk), kTol) << "dK";
  EXPECT_LE(relativeError(got.dv, want.dv), kTol) << "dV";
}

using FamilyCase = std::tuple<MaskFamily, int64_t, TileShape>;

class FamilyTest : public testing::TestWithParam<FamilyCase> {};

std::string caseName(const testing::TestParamInfo<FamilyCase> &info) {
  auto [f, n, t] = info.param;
  return std::string(familyName(f)) + "_" + std::to_string(n) + "_" +
         std::to_string(t.rows) + "x" + std::to_string(t.cols);
}

} // namespace

TEST_P(FamilyTest, MatchesDense) {
  auto [family, n, tiles] = GetParam();
  GeneratedMask g = generateMask(family, n, 7);
  Problem p = plainProblem(g.layout, g.policy, tiles, 4, 2, 32);
  expectMatches(p, 100 + n);
}

INSTANTIATE_TEST_SUITE_P(
    Lengths, FamilyTest,
    testing::Combine(testing::ValuesIn(allFamilies()),
                     testing::Values<int64_t>(1, 31, 129, 300),
                     testing::Values(TileShape{128, 32}, TileShape{16, 8})),
    caseName);

INSTANTIATE_TEST_SUITE_P(Long, FamilyTest,
                         testing::Combine(testing::ValuesIn(allFamilies()),
                                          testing::Values<int64_t>(1000),
                                          testing::Values(TileShape{128, 32})),
                         caseName);

TEST(Dense, CornstarchPolicy) {
  GeneratedMask g = generateMask(MaskFamily::MultimodalPacked, 400, 3);
  Problem p =
      plainProblem(g.layout, {PolicyKind::Cornstarch, 0}, {64, 16}, 2, 1, 32);
  expectMatches(p, 11);
}

TEST(Dense, GqaOneKvHead) {
  GeneratedMask g = generateMask(MaskFamily::MllmEmbedded, 300, 5);
  Problem p = plainProblem(g.layout, g.policy, {128, 32}, 4, 1, 64);
  expectMatches(p, 12);
}

TEST(Dense, GqaTwoKvHeadsHeadDim64) {
  GeneratedMask g = generateMask(MaskFamily::PrefixLm, 257, 5);
  Problem p = plainProblem(g.layout, g.policy, {128, 32}, 4, 2, 64);
  expectMatches(p, 13);
}

TEST(Dense, Alibi) {
  for (MaskFamily f :
       {MaskFamily::Causal, MaskFamily::Lambda, MaskFamily::MultimodalPacked}) {
    SCOPED_TRACE(familyName(f));
    GeneratedMask g = generateMask(f, 300, 9);
    Problem p = plainProblem(g.layout, g.policy, {32, 16}, 4, 2, 32);
    p.slopes = alibiSlopes(4);
    expectMatches(p, 14);
  }
}

TEST(Dense, ScaleIsApplied) {
  GeneratedMask g = generateMask(MaskFamily::Causal, 100, 1);
  Problem p = plainProblem(g.layout, g.policy, {32, 16}, 2, 2, 16);
  p.scale = 0.9;
  expectMatches(p, 15);
}

TEST(Dense, PaddingRowsAreEmpty) {
  // Padding inside and at the end: those queries see nothing (O = 0, LSE =
  // -inf, dQ = 0) and those keys are seen by nobody (dK = dV = 0).
  GeneratedMask g = generateMask(MaskFamily::MllmEmbedded, 300, 4);
  for (int64_t i = 100; i < 140; ++i)
    g.layout.words[i] = 0;
  for (int64_t i = 261; i < 300; ++i)
    g.layout.words[i] = 0;
  Problem p = plainProblem(g.layout, g.policy, {64, 32}, 4, 2, 32);
  expectMatches(p, 16);
  Inputs<float> in = randomInputs<float>(p, 17);
  Outputs<float> out = runKernel(p, in);
  for (int64_t pos : {100, 139, 261, 299}) {
    for (int64_t h = 0; h < p.heads; ++h) {
      EXPECT_EQ(out.lse[h * 300 + pos], -INFINITY);
      for (int64_t x = 0; x < p.headDim; ++x) {
        EXPECT_EQ(out.o[(pos * p.heads + h) * p.headDim + x], 0.0f);
        EXPECT_EQ(out.dq[(pos * p.heads + h) * p.headDim + x], 0.0f);
      }
    }
    for (int64_t g2 = 0; g2 < p.kvHeads; ++g2)
      for (int64_t x = 0; x < p.headDim; ++x) {
        EXPECT_EQ(out.dk[(pos * p.kvHeads + g2) * p.headDim + x], 0.0f);
        EXPECT_EQ(out.dv[(pos * p.kvHeads + g2) * p.headDim + x], 0.0f);
      }
  }
}

TEST(Dense, RandomLayouts) {
  std::mt19937_64 rng(77);
  const TileShape shapes[] = {{128, 32}, {16, 8}, {8, 64}, {5, 3}};
  for (int iter = 0; iter < 8; ++iter) {
    int64_t n = 1 + static_cast<int64_t>(rng() % 400);
    MaskPolicy policy{iter % 3 == 2 ? PolicyKind::Cornstarch : PolicyKind::Mllm,
                      iter % 3 == 1 ? static_cast<int64_t>(1 + rng() % 60) : 0};
    SCOPED_TRACE(testing::Message() << "iter " << iter << " n " << n);
    Problem p =
        plainProblem(randomLayout(rng, n), policy, shapes[iter % 4], 2, 1, 16);
    if (iter % 2)
      p.slopes = alibiSlopes(2);
    expectMatches(p, 200 + iter);
  }
}

TEST(Dense, ContextParallelOrder) {
  // A CP rank: a few tile-aligned query blocks (here out of order), and the
  // keys of every rank gathered in rank order, i.e. permuted by blocks.
  for (MaskFamily f : {MaskFamily::MultimodalPacked, MaskFamily::Lambda,
                       MaskFamily::PrefixLm}) {
    SCOPED_TRACE(familyName(f));
    GeneratedMask g = generateMask(f, 1000, 21);
    Problem p = plainProblem(g.layout, g.policy, {128, 32}, 4, 2, 32);
    p.qPos = blockPositions(1000, 128, {5, 1, 7, 2});
    p.kPos = blockPositions(1000, 128, {3, 0, 7, 5, 1, 6, 2, 4});
    p.slopes = alibiSlopes(4);
    expectMatches(p, 22);
  }
}

TEST(Dense, ContextParallelUnalignedBlocks) {
  // Blocks that are not tile multiples make tiles of scattered positions.
  GeneratedMask g = generateMask(MaskFamily::CausalBlockwise, 700, 23);
  Problem p = plainProblem(g.layout, g.policy, {64, 16}, 2, 1, 32);
  p.qPos = blockPositions(700, 100, {6, 0, 3, 4});
  p.kPos = blockPositions(700, 100, {2, 5, 0, 6, 1, 4, 3});
  expectMatches(p, 24);
}

TEST(Dense, KeySubsetLeavesRowsEmpty) {
  // Keys of only some blocks: causal queries of the first block see none of
  // them and must come out empty.
  GeneratedMask g = generateMask(MaskFamily::Causal, 512, 1);
  Problem p = plainProblem(g.layout, g.policy, {128, 32}, 2, 2, 32);
  p.kPos = blockPositions(512, 128, {3, 2});
  expectMatches(p, 25);
  Outputs<float> out = runKernel(p, randomInputs<float>(p, 26));
  EXPECT_EQ(out.lse[0], -INFINITY);
  EXPECT_EQ(out.lse[255], -INFINITY);
  EXPECT_NE(out.lse[256], -INFINITY);
}

TEST(Dense, EmptyKeyOrQueryList) {
  // No keys: every row is empty. No queries: dK and dV are zero.
  GeneratedMask g = generateMask(MaskFamily::Causal, 200, 1);
  Problem noKeys = plainProblem(g.layout, g.policy, {64, 32}, 2, 1, 16);
  noKeys.kPos.clear();
  expectMatches(noKeys, 27);
  Outputs<float> out = runKernel(noKeys, randomInputs<float>(noKeys, 28));
  EXPECT_EQ(out.lse[17], -INFINITY);
  Problem noQueries = plainProblem(g.layout, g.policy, {64, 32}, 2, 1, 16);
  noQueries.qPos.clear();
  expectMatches(noQueries, 29);
  out = runKernel(noQueries, randomInputs<float>(noQueries, 30));
  EXPECT_EQ(*std::max_element(out.dk.begin(), out.dk.end()), 0.0f);
  EXPECT_EQ(*std::min_element(out.dv.begin(), out.dv.end()), 0.0f);
}
