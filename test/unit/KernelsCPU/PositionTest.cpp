//===- PositionTest.cpp - RoPE, sinusoidal table, embeddings --------------===//

#include "GradCheck.h"

#include "mllm/kernels/cpu/Embedding.h"
#include "mllm/kernels/cpu/Positions.h"
#include "mllm/kernels/cpu/Rope.h"

#include <cmath>
#include <tuple>

using namespace mllm::kernels::cpu;
using namespace mllm::test;

namespace {

TEST(Rope, ForwardByHand) {
  // headDim 4, theta 100: inverse frequencies 1 and 100^(-1/2) = 0.1; pairs
  // (0, 2) and (1, 3). Token 0 at position 0 (identity), token 1 at 2.
  Vec x = {1, 2, 3, 4, 1, 2, 3, 4}, y(8);
  int64_t pos[] = {0, 2};
  ropeForward(x.data(), y.data(), pos, 2, 1, 4, 100.0);
  double c0 = std::cos(2.0), s0 = std::sin(2.0);
  double c1 = std::cos(0.2), s1 = std::sin(0.2);
  expectAllNear(y, {1, 2, 3, 4, 1 * c0 - 3 * s0, 2 * c1 - 4 * s1,
                    3 * c0 + 1 * s0, 4 * c1 + 2 * s1});
}

TEST(Rope, HeadsShareTheRotation) {
  Vec x = {1, 0, 1, 0}, y(4); // two heads of headDim 2, position 1
  int64_t pos[] = {1};
  ropeForward(x.data(), y.data(), pos, 1, 2, 2, 10000.0);
  expectAllNear(y,
                {std::cos(1.0), std::sin(1.0), std::cos(1.0), std::sin(1.0)});
}

TEST(Rope, GradientAndInPlace) {
  for (std::tuple<int64_t, int64_t, int64_t> size :
       {std::tuple<int64_t, int64_t, int64_t>{1, 1, 2},
        {3, 2, 6},
        {4, 3, 10}}) {
    int64_t tokens = std::get<0>(size), heads = std::get<1>(size),
            headDim = std::get<2>(size);
    SCOPED_TRACE(testing::Message()
                 << tokens << "x" << heads << "x" << headDim);
    std::vector<int64_t> pos = {5, 0, 1000, 3};
    Vec x = randomVec(tokens * heads * headDim, 1), u = randomVec(x.size(), 2);
    auto fwd = [&] {
      Vec y(x.size());
      ropeForward(x.data(), y.data(), pos.data(), tokens, heads, headDim,
                  10000.0);
      return y;
    };
    Vec dx = nanVec(x.size());
    ropeBackward(u.data(), dx.data(), pos.data(), tokens, heads, headDim,
                 10000.0);
    expectGradNear(dx, numericGrad(x, u, fwd));
    // In place, and the backward undoes the forward (rotations are
    // orthogonal).
    Vec z = x;
    ropeForward(z.data(), z.data(), pos.data(), tokens, heads, headDim,
                10000.0);
    expectAllNear(z, fwd(), 0);
    ropeBackward(z.data(), z.data(), pos.data(), tokens, heads, headDim,
                 10000.0);
    expectAllNear(z, x, 1e-14);
  }
}

TEST(SinusoidalPositions, ByHand) {
  // dim 4: h = 2, timescales 1 and 10000 (both ends included).
  Vec table(8);
  int64_t pos[] = {0, 1};
  sinusoidalPositions(table.data(), pos, 2, 4);
  expectAllNear(table, {0, 0, 1, 1, std::sin(1.0), std::sin(1e-4),
                        std::cos(1.0), std::cos(1e-4)});
  // dim 6: timescales 1, 100, 10000; position 3.
  Vec t6(6);
  int64_t p3[] = {3};
  sinusoidalPositions(t6.data(), p3, 1, 6);
  expectAllNear(t6, {std::sin(3.0), std::sin(0.03), std::sin(3e-4),
                     std::cos(3.0), std::cos(0.03), std::cos(3e-4)});
}

TEST(Embedding, ForwardByHand) {
  Vec table = {0, 1, 10, 11, 20, 21}, out(6); // vocab 3, dim 2
  int64_t ids[] = {2, 0, 2};
  embeddingForward(ids, table.data(), out.data(), 3, 3, 2);
  expectAllNear(out, {20, 21, 0, 1, 20, 21});
}

TEST(Embedding, WeightGradientWithRepeats) {
  int64_t tokens = 9, vocab = 7, dim = 5;
  std::vector<int64_t> ids = {3, 0, 3, 6, 1, 3, 0, 2, 6};
  Vec table = randomVec(vocab * dim, 1), u = randomVec(tokens * dim, 2);
  auto fwd = [&] {
    Vec out(tokens * dim);
    embeddingForward(ids.data(), table.data(), out.data(), tokens, vocab, dim);
    return out;
  };
  Vec d0 = randomVec(table.size(), 3), d = d0;
  embeddingBackwardWeight(ids.data(), u.data(), d.data(), tokens, vocab, dim);
  expectGradNear(minus(d, d0), numericGrad(table, u, fwd));
  // Row 4 and 5 are never used: untouched.
  for (int64_t c = 0; c < dim; ++c) {
    EXPECT_EQ(d[4 * dim + c], d0[4 * dim + c]);
    EXPECT_EQ(d[5 * dim + c], d0[5 * dim + c]);
  }
}

TEST(EmbeddingDeathTest, OutOfRangeIdStops) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Vec table(6), out(2);
  int64_t bad[] = {3};
  EXPECT_DEATH(embeddingForward(bad, table.data(), out.data(), 1, 3, 2),
               "token id out of range");
  int64_t negative[] = {-1};
  EXPECT_DEATH(
      embeddingBackwardWeight(negative, out.data(), table.data(), 1, 3, 2),
      "token id out of range");
}

} // namespace
