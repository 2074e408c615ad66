//===- ElementwiseTest.cpp - Residual add, scale, sums, token merging -----===//

#include "GradCheck.h"

#include "mllm/kernels/cpu/Elementwise.h"

using namespace mllm::kernels::cpu;
using namespace mllm::test;

namespace {

TEST(Elementwise, AddScaleColumnSum) {
  Vec y = {1, 2, 3}, x = {10, 20, 30};
  add(y.data(), x.data(), 3);
  expectAllNear(y, {11, 22, 33});
  scale(y.data(), 0.5, y.data(), 3);
  expectAllNear(y, {5.5, 11, 16.5});
  Vec sums = {1, 1}, m = {1, 2, 3, 4, 5, 6}; // 3 x 2
  columnSum(m.data(), sums.data(), 3, 2);
  expectAllNear(sums, {10, 13});
}

TEST(Elementwise, MergeTokensByHand) {
  // 5 tokens of width 2, merge 2: rows [t0 t1], [t2 t3], [t4 0].
  Vec x = {0, 1, 10, 11, 20, 21, 30, 31, 40, 41};
  ASSERT_EQ(mergedTokens(5, 2), 3);
  Vec y = nanVec(12);
  mergeTokensForward(x.data(), y.data(), 5, 2, 2);
  expectAllNear(y, {0, 1, 10, 11, 20, 21, 30, 31, 40, 41, 0, 0});
  Vec dx = nanVec(10);
  mergeTokensBackward(y.data(), dx.data(), 5, 2, 2);
  expectAllNear(dx, x);
  ASSERT_EQ(mergedTokens(4, 4), 1);
  ASSERT_EQ(mergedTokens(1, 4), 1);
}

TEST(Elementwise, MergeTokensGradient) {
  int64_t tokens = 7, dim = 3, merge = 3;
  Vec x = randomVec(tokens * dim, 1);
  Vec u = randomVec(mergedTokens(tokens, merge) * merge * dim, 2);
  auto fwd = [&] {
    Vec y(u.size());
    mergeTokensForward(x.data(), y.data(), tokens, dim, merge);
    return y;
  };
  Vec dx = nanVec(x.size());
  mergeTokensBackward(u.data(), dx.data(), tokens, dim, merge);
  expectGradNear(dx, numericGrad(x, u, fwd));
}

} // namespace
