//===- GradCheckTest.cpp - Finite differences, LSE merge, determinism -----===//
//
// The double kernel's backward against central differences of its own
// forward (loss = sum(O * W), so dO = W), the shared online-softmax helpers,
// and bitwise reproducibility of the fp32 kernel.
//
//===----------------------------------------------------------------------===//

#include "AttentionTestUtil.h"

#include "mllm/kernels/OnlineSoftmax.h"

#include "gtest/gtest.h"

#include <cmath>
#include <cstring>

using namespace mllm::attention_test;

namespace {

/// Central differences of sum(O * dO) over every input element against the
/// kernel's dQ, dK and dV.
void expectFiniteDifferences(const Problem &p, uint64_t seed) {
  Inputs<double> in = randomInputs<double>(p, seed);
  Outputs<double> analytic = runKernel(p, in, 2);
  auto loss = [&](const Inputs<double> &x) {
    Outputs<double> out = runKernel(p, x, 2, /*backward=*/false);
    double l = 0;
    for (size_t i = 0; i < out.o.size(); ++i)
      l += out.o[i] * x.dO[i];
    return l;
  };
  const double eps = 1e-6;
  auto check = [&](std::vector<double> Inputs<double>::*field,
                   const std::vector<double> &grad, const char *name) {
    double worst = 0;
    for (size_t i = 0; i < grad.size(); ++i) {
      Inputs<double> plus = in, minus = in;
      (plus.*field)[i] += eps;
      (minus.*field)[i] -= eps;
      double fd = (loss(plus) - loss(minus)) / (2 * eps);
      worst = std::max(worst, std::abs(fd - grad[i]) / (1 + std::abs(fd)));
    }
    EXPECT_LE(worst, 1e-7) << name;
  };
  check(&Inputs<double>::q, analytic.dq, "dQ");
  check(&Inputs<double>::k, analytic.dk, "dK");
  check(&Inputs<double>::v, analytic.dv, "dV");
}

} // namespace

TEST(GradCheck, MaskedRowsAndGqa) {
  // Padding rows and keys, several samples and items, tiles small enough
  // that Skip, Partial and Full all occur; GQA with 3 query heads per kv
  // head.
  std::mt19937_64 rng(5);
  TokenLayout l = randomLayout(rng, 29);
  l.words[3] = l.words[4] = 0;
  Problem p = plainProblem(l, {}, {4, 3}, 3, 1, 4);
  expectFiniteDifferences(p, 1);
}

TEST(GradCheck, AlibiWindowTwoKvHeads) {
  GeneratedMask g = generateMask(MaskFamily::Lambda, 33, 2);
  Problem p = plainProblem(g.layout, g.policy, {8, 4}, 4, 2, 3);
  p.slopes = alibiSlopes(4);
  expectFiniteDifferences(p, 2);
}

TEST(GradCheck, ContextParallelOrder) {
  GeneratedMask g = generateMask(MaskFamily::MultimodalPacked, 40, 3);
  Problem p = plainProblem(g.layout, g.policy, {8, 4}, 2, 1, 4);
  p.qPos = blockPositions(40, 8, {4, 1});
  p.kPos = blockPositions(40, 8, {2, 4, 0, 3, 1});
  expectFiniteDifferences(p, 3);
}

TEST(GradCheck, DoubleKernelMatchesDense) {
  GeneratedMask g = generateMask(MaskFamily::SharedQuestion, 150, 4);
  Problem p = plainProblem(g.layout, g.policy, {16, 8}, 4, 2, 8);
  p.slopes = alibiSlopes(4);
  Inputs<double> in = randomInputs<double>(p, 4);
  Outputs<double> got = runKernel(p, in), want = denseReference(p, in);
  EXPECT_LE(relativeError(got.o, want.o), 1e-13);
  EXPECT_LE(relativeError(got.lse, want.lse), 1e-13);
  EXPECT_LE(relativeError(got.dq, want.dq), 1e-12);
  EXPECT_LE(relativeError(got.dk, want.dk), 1e-12);
  EXPECT_LE(relativeError(got.dv, want.dv), 1e-12);
}

TEST(OnlineSoftmax, StepCorners) {
  const float ninf = -INFINITY;
  SoftmaxStep<float> empty = softmaxStep(ninf, ninf);
  EXPECT_TRUE(empty.empty);
  EXPECT_EQ(empty.alpha, 1.0f);
  SoftmaxStep<float> first = softmaxStep(ninf, 2.0f);
  EXPECT_FALSE(first.empty);
  EXPECT_EQ(first.alpha, 0.0f);
  EXPECT_EQ(first.max, 2.0f);
  SoftmaxStep<float> grow = softmaxStep(1.0f, 3.0f);
  EXPECT_FLOAT_EQ(grow.alpha, std::exp(-2.0f));
  EXPECT_EQ(softmaxStep(3.0f, ninf).alpha, 1.0f);
  EXPECT_EQ(softmaxLse(ninf, 0.0f), ninf);
  EXPECT_EQ(softmaxNormalizer(0.0f), 0.0f);
  EXPECT_EQ(softmaxProb(ninf, 0.5f), 0.0f);
  LseMerge<double> none = mergeLse<double>(-INFINITY, -INFINITY);
  EXPECT_EQ(none.lse, -INFINITY);
  EXPECT_EQ(none.wa + none.wb, 0.0);
  LseMerge<double> one = mergeLse<double>(-INFINITY, 1.5);
  EXPECT_EQ(one.lse, 1.5);
  EXPECT_EQ(one.wb, 1.0);
}

TEST(OnlineSoftmax, MergeOfKeyHalvesIsTheWhole) {
  // What a CP ring step or a split-KV fallback does: attend over two halves
  // of the keys separately, then merge rows with mergeLse.
  GeneratedMask g = generateMask(MaskFamily::MllmEmbedded, 600, 6);
  Problem whole = plainProblem(g.layout, g.policy, {128, 32}, 2, 1, 32);
  Problem a = whole, b = whole;
  a.kPos = blockPositions(600, 128, {0, 2, 4});
  b.kPos = blockPositions(600, 128, {1, 3});
  Inputs<double> in = randomInputs<double>(whole, 8);
  auto keysOf = [&](const Problem &p) {
    Inputs<double> x = in;
    for (std::vector<double> *t : {&x.k, &x.v}) {
      std::vector<double> sub;
      for (int64_t pos : p.kPos)
        sub.insert(sub.end(), t->begin() + pos * 32,
                   t->begin() + pos * 32 + 32);
      *t = sub;
    }
    return x;
  };
  Outputs<double> all = runKernel(whole, in, 2, false);
  Outputs<double> oa = runKernel(a, keysOf(a), 2, false);
  Outputs<double> ob = runKernel(b, keysOf(b), 2, false);
  std::vector<double> o(all.o.size()), lse(all.lse.size());
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t i = 0; i < 600; ++i) {
      LseMerge<double> m = mergeLse(oa.lse[h * 600 + i], ob.lse[h * 600 + i]);
      lse[h * 600 + i] = m.lse;
      for (int64_t x = 0; x < 32; ++x) {
        size_t e = static_cast<size_t>((i * 2 + h) * 32 + x);
        o[e] = m.wa * oa.o[e] + m.wb * ob.o[e];
      }
    }
  EXPECT_LE(relativeError(o, all.o), 1e-13);
  EXPECT_LE(relativeError(lse, all.lse), 1e-13);
}

TEST(Determinism, SameBitsEveryRunAndThreadCount) {
  GeneratedMask g = generateMask(MaskFamily::MultimodalPacked, 1500, 10);
  Problem p = plainProblem(g.layout, g.policy, {128, 32}, 4, 2, 64);
  p.slopes = alibiSlopes(4);
  Inputs<float> in = randomInputs<float>(p, 10);
  Outputs<float> ref = runKernel(p, in, 2);
  auto same = [](const std::vector<float> &a, const std::vector<float> &b) {
    return a.size() == b.size() &&
           std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
  };
  for (int threads : {2, 1, 3}) {
    SCOPED_TRACE(threads);
    Outputs<float> out = runKernel(p, in, threads);
    EXPECT_TRUE(same(out.o, ref.o));
    EXPECT_TRUE(same(out.lse, ref.lse));
    EXPECT_TRUE(same(out.dq, ref.dq));
    EXPECT_TRUE(same(out.dk, ref.dk));
    EXPECT_TRUE(same(out.dv, ref.dv));
  }
}

TEST(Plan, ReusedAcrossLayerShapes) {
  // One plan, two layers with different heads and head sizes.
  GeneratedMask g = generateMask(MaskFamily::PrefixLm, 300, 12);
  Problem p1 = plainProblem(g.layout, g.policy, {64, 32}, 4, 1, 16);
  Problem p2 = plainProblem(g.layout, g.policy, {64, 32}, 2, 2, 48);
  AttentionPlan plan = prepareAttention(p1.tokens());
  for (const Problem *p : {&p1, &p2}) {
    Inputs<float> in = randomInputs<float>(*p, 13);
    std::vector<float> o(in.q.size()), lse(static_cast<size_t>(p->heads * 300));
    attentionForward(plan, p->headSpec(), in.q.data(), in.k.data(), in.v.data(),
                     o.data(), lse.data());
    Outputs<double> want = denseReference(*p, in);
    EXPECT_LE(relativeError(o, want.o), 1e-5);
    EXPECT_LE(relativeError(lse, want.lse), 1e-5);
  }
}
