//===- LossTest.cpp - Softmax cross-entropy -------------------------------===//

#include "GradCheck.h"

#include "mllm/kernels/cpu/CrossEntropy.h"

#include <cmath>

using namespace mllm::kernels::cpu;
using namespace mllm::test;

namespace {

TEST(CrossEntropy, ForwardByHand) {
  // Row 0: uniform over 4 -> ln 4. Row 1: [0, ln 3, -inf-ish...]: softmax of
  // [0, ln 3] is [1/4, 3/4], target 1 -> ln(4/3). Row 2 is ignored.
  double ln3 = std::log(3.0);
  Vec logits = {0, 0, 0, 0, 0, ln3, -1e30, -1e30, 9, 9, 9, 9};
  int64_t targets[] = {2, 1, -100};
  Vec lse(3);
  CrossEntropyResult r =
      softmaxCrossEntropyForward(logits.data(), targets, lse.data(), 3, 4);
  EXPECT_EQ(r.count, 2);
  EXPECT_NEAR(r.lossSum, std::log(4.0) + std::log(4.0 / 3.0), 1e-14);
  expectAllNear(lse, {std::log(4.0), std::log(4.0), 9 + std::log(4.0)});

  // dlogits = scale * (softmax - onehot); zeros on the ignored row.
  Vec d = nanVec(12);
  softmaxCrossEntropyBackward(logits.data(), targets, nullptr, d.data(), 0.5, 3,
                              4);
  expectAllNear(d,
                {0.125, 0.125, -0.375, 0.125, 0.125, -0.125, 0, 0, 0, 0, 0, 0});
}

TEST(CrossEntropy, StableForHugeLogits) {
  Vec logits = {1000, 1000, -1000};
  int64_t targets[] = {0};
  CrossEntropyResult r =
      softmaxCrossEntropyForward(logits.data(), targets, nullptr, 1, 3);
  // lse = 1000 + ln 2 carries ulp(1000) ~ 1e-13 of rounding.
  EXPECT_NEAR(r.lossSum, std::log(2.0), 1e-12);
  std::vector<float> lf = {1000.f, 1000.f, -1000.f}, df(3);
  CrossEntropyResult rf =
      softmaxCrossEntropyForward(lf.data(), targets, nullptr, 1, 3);
  EXPECT_NEAR(rf.lossSum, std::log(2.0), 1e-6);
  softmaxCrossEntropyBackward(lf.data(), targets, nullptr, df.data(), 1.0, 1,
                              3);
  EXPECT_NEAR(df[0], -0.5, 1e-7);
  EXPECT_NEAR(df[1], 0.5, 1e-7);
  EXPECT_EQ(df[2], 0.0f);
}

TEST(CrossEntropy, AllIgnored) {
  Vec logits = {1, 2, 3, 4};
  int64_t targets[] = {-100, -100};
  CrossEntropyResult r =
      softmaxCrossEntropyForward(logits.data(), targets, nullptr, 2, 2);
  EXPECT_EQ(r.count, 0);
  EXPECT_EQ(r.lossSum, 0.0);
}

TEST(CrossEntropy, Gradients) {
  for (std::pair<int64_t, int64_t> size :
       {std::pair<int64_t, int64_t>{1, 1}, {1, 5}, {6, 19}, {4, 64}}) {
    int64_t tokens = size.first, vocab = size.second;
    SCOPED_TRACE(testing::Message() << tokens << "x" << vocab);
    Vec logits = randomVec(tokens * vocab, 1, -4, 4);
    std::vector<int64_t> targets(tokens);
    for (int64_t t = 0; t < tokens; ++t)
      targets[t] = (t % 3 == 2) ? kIgnoreIndex : (t * 7 + 3) % vocab;
    auto fwd = [&] {
      return Vec{softmaxCrossEntropyForward(logits.data(), targets.data(),
                                            nullptr, tokens, vocab)
                     .lossSum};
    };
    double scale = 0.37;
    Vec numeric = numericGrad(logits, {scale}, fwd);
    Vec lse(tokens), d = nanVec(logits.size());
    softmaxCrossEntropyForward(logits.data(), targets.data(), lse.data(),
                               tokens, vocab);
    softmaxCrossEntropyBackward(logits.data(), targets.data(), lse.data(),
                                d.data(), scale, tokens, vocab);
    expectGradNear(d, numeric);
    // Without the saved lse: the same up to rounding of the recomputation.
    Vec d2 = nanVec(logits.size());
    softmaxCrossEntropyBackward(logits.data(), targets.data(), nullptr,
                                d2.data(), scale, tokens, vocab);
    expectAllNear(d2, d, 1e-14);
  }
}

} // namespace
