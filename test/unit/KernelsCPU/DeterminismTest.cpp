//===- DeterminismTest.cpp - Bitwise-reproducible results -----------------===//
//
// Sizes are above kParallelGrain so the OpenMP loops really run in parallel.
// Every op run twice with the same thread count must give identical bits;
// the non-GEMM kernels must also give identical bits for 1 and 2 threads
// (they never split a reduction across threads).
//
//===----------------------------------------------------------------------===//

#include "GradCheck.h"

#include "mllm/kernels/cpu/Activation.h"
#include "mllm/kernels/cpu/Conv.h"
#include "mllm/kernels/cpu/CrossEntropy.h"
#include "mllm/kernels/cpu/Embedding.h"
#include "mllm/kernels/cpu/Linear.h"
#include "mllm/kernels/cpu/Norm.h"
#include "mllm/kernels/cpu/Optimizer.h"
#include "mllm/kernels/cpu/Rope.h"
#include "mllm/kernels/cpu/Threads.h"

#include <cstring>

using namespace mllm::kernels::cpu;
using namespace mllm::test;

namespace {

using FVec = std::vector<float>;

FVec randomF(size_t n, uint64_t seed) {
  Vec d = randomVec(n, seed, -2, 2);
  return FVec(d.begin(), d.end());
}

bool sameBits(const FVec &a, const FVec &b) {
  return a.size() == b.size() &&
         std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0;
}

constexpr int64_t kTokens = 96, kDim = 384, kOut = 320, kVocab = 1000;

/// Forward and backward of a few layers; all outputs concatenated.
FVec runLayers(bool withGemm) {
  FVec x = randomF(kTokens * kDim, 1), dy = randomF(kTokens * kDim, 2);
  FVec w = randomF(kDim, 3), b = randomF(kDim, 4), out;
  auto append = [&](const FVec &v) {
    out.insert(out.end(), v.begin(), v.end());
  };

  FVec y(x.size()), mean(kTokens), rstd(kTokens), dx(x.size());
  FVec dw(kDim, 0.f), db(kDim, 0.f);
  layerNormForward(x.data(), w.data(), b.data(), y.data(), mean.data(),
                   rstd.data(), kTokens, kDim, 1e-5);
  layerNormBackwardInput(dy.data(), x.data(), w.data(), mean.data(),
                         rstd.data(), dx.data(), kTokens, kDim);
  layerNormBackwardWeight(dy.data(), x.data(), mean.data(), rstd.data(),
                          dw.data(), db.data(), kTokens, kDim);
  append(y), append(dx), append(dw), append(db);

  geluBackward(x.data(), dy.data(), dx.data(), kTokens * kDim);
  append(dx);
  std::vector<int64_t> pos(kTokens);
  for (int64_t t = 0; t < kTokens; ++t)
    pos[t] = 3 * t;
  ropeForward(x.data(), y.data(), pos.data(), kTokens, 6, 64, 10000.0);
  append(y);

  FVec logits = randomF(kTokens * kVocab, 5), dlogits(logits.size());
  std::vector<int64_t> targets(kTokens), ids(kTokens);
  for (int64_t t = 0; t < kTokens; ++t) {
    targets[t] = t % 5 == 0 ? kIgnoreIndex : (t * 37) % kVocab;
    ids[t] = (t * 13) % 17; // many repeats
  }
  CrossEntropyResult r = softmaxCrossEntropyForward(
      logits.data(), targets.data(), nullptr, kTokens, kVocab);
  softmaxCrossEntropyBackward(logits.data(), targets.data(), nullptr,
                              dlogits.data(), 1.0 / r.count, kTokens, kVocab);
  append(dlogits);
  out.push_back(static_cast<float>(r.lossSum));
  out.push_back(static_cast<float>(r.lossSum - static_cast<float>(r.lossSum)));

  FVec table(17 * kDim, 0.f);
  embeddingBackwardWeight(ids.data(), dy.data(), table.data(), kTokens, 17,
                          kDim);
  append(table);

  FVec dwDepth(kDim * 5, 0.f), dbDepth(kDim, 0.f);
  FVec wDepth = randomF(kDim * 5, 6);
  depthwiseConv1dForward(x.data(), wDepth.data(), b.data(), y.data(), kTokens,
                         kDim, 5);
  depthwiseConv1dBackwardInput(dy.data(), wDepth.data(), dx.data(), kTokens,
                               kDim, 5);
  depthwiseConv1dBackwardWeight(x.data(), dy.data(), dwDepth.data(),
                                dbDepth.data(), kTokens, kDim, 5);
  append(y), append(dx), append(dwDepth), append(dbDepth);

  FVec p = randomF(kTokens * kDim, 7), m(p.size(), 0.f), v(p.size(), 0.f);
  for (int s = 1; s <= 3; ++s)
    adamwStep(p.data(), dy.data(), m.data(), v.data(), kTokens * kDim, s,
              AdamConfig{1e-3, 0.9, 0.999, 1e-8, 0.01});
  append(p);

  if (!withGemm)
    return out;
  FVec wl = randomF(kOut * kDim, 8), bl = randomF(kOut, 9);
  FVec yl(kTokens * kOut), dyl = randomF(kTokens * kOut, 10);
  FVec dwl(wl.size(), 0.f), dbl(kOut, 0.f);
  linearForward(x.data(), wl.data(), bl.data(), yl.data(), kTokens, kDim, kOut);
  linearBackwardInput(dyl.data(), wl.data(), dx.data(), kTokens, kDim, kOut);
  linearBackwardWeight(x.data(), dyl.data(), dwl.data(), dbl.data(), kTokens,
                       kDim, kOut);
  append(yl), append(dx), append(dwl), append(dbl);
  Conv1dShape cs{kTokens, kDim, 64, 3, 2, 1};
  FVec wc = randomF(64 * kDim * 3, 11), yc(cs.outFrames() * 64);
  conv1dForward(x.data(), wc.data(), bl.data(), yc.data(), cs);
  append(yc);
  return out;
}

class Determinism : public testing::Test {
protected:
  void TearDown() override { setNumThreads(saved); }
  int saved = numThreads();
};

TEST_F(Determinism, SameThreadsSameBits) {
  setNumThreads(2);
  EXPECT_EQ(numThreads(), 2);
  FVec a = runLayers(true), b = runLayers(true);
  ASSERT_GT(a.size(), 100000u);
  EXPECT_TRUE(sameBits(a, b));
}

TEST_F(Determinism, NonGemmKernelsIgnoreThreadCount) {
  setNumThreads(1);
  FVec one = runLayers(false);
  setNumThreads(2);
  FVec two = runLayers(false);
  EXPECT_TRUE(sameBits(one, two));
}

} // namespace
