//===- LossOptimGpuTest.cpp - Cross-entropy, AdamW and GEMMs on the GPU ---===//
//
// The loss over text positions (ignored targets elsewhere), the fused
// multi-tensor AdamW (bit for bit against cpu::adamwStep) and the cuBLASLt
// GEMM wrapper in every transpose combination. Skipped without a GPU.
//
//===----------------------------------------------------------------------===//

#include "GpuTestUtil.h"

#include "mllm/kernels/cpu/CrossEntropy.h"
#include "mllm/kernels/cpu/Gemm.h"
#include "mllm/kernels/cpu/Optimizer.h"
#include "mllm/kernels/cuda/Gemm.h"
#include "mllm/kernels/cuda/Layers.h"

using namespace mllm;
using namespace mllm::cuda_test;
namespace cpu = mllm::kernels::cpu;
namespace gpu = mllm::kernels::cuda;

namespace {

TEST(LossOptimGpu, CrossEntropyOverTextPositions) {
  MLLM_REQUIRE_GPU();
  const int64_t t = 23, vocab = 1000;
  std::vector<float> logits = roundBf16(randomFloats(t * vocab, 13, 8.0f));
  std::vector<int64_t> targets(t);
  for (int64_t i = 0; i < t; ++i) // every third position is not text
    targets[i] = i % 3 == 1 ? cpu::kIgnoreIndex : (i * 37) % vocab;
  DeviceArray<bf16> dl = upload(toBf16(logits)), dg = upload(toBf16(logits));
  DeviceArray<int64_t> dt = upload(targets);
  DeviceArray<float> lse = upload(std::vector<float>(t));
  DeviceArray<double> sum = upload(std::vector<double>(1));
  DeviceArray<int64_t> count = upload(std::vector<int64_t>(1));
  ASSERT_OK(gpu::crossEntropyForward(dl.data(), dt.data(), lse.data(),
                                     sum.data(), count.data(), t, vocab,
                                     nullptr));
  std::vector<double> rlse(t);
  cpu::CrossEntropyResult ref = cpu::softmaxCrossEntropyForward(
      logits.data(), targets.data(), rlse.data(), t, vocab);
  EXPECT_EQ(download(count)[0], ref.count);
  EXPECT_NEAR(download(sum)[0], ref.lossSum, 1e-4 * ref.lossSum);
  std::vector<float> glse = download(lse);
  for (int64_t i = 0; i < t; ++i)
    EXPECT_NEAR(glse[i], rlse[i], 1e-4 * std::fabs(rlse[i]) + 1e-5);
  const double scale = 1.0 / static_cast<double>(ref.count);
  ASSERT_OK(gpu::crossEntropyBackward(dl.data(), dt.data(), lse.data(),
                                      dg.data(), static_cast<float>(scale), t,
                                      vocab, nullptr));
  std::vector<float> rg(t * vocab);
  cpu::softmaxCrossEntropyBackward(logits.data(), targets.data(), rlse.data(),
                                   rg.data(), scale, t, vocab);
  std::vector<float> gg = toFloat(download(dg));
  // Element by element: the gradients are below 0.07, so a tolerance
  // relative to the largest would pass a softmax off by half. bf16 output
  // rounds to 2^-9 relative.
  int64_t off = 0;
  for (size_t i = 0; i < gg.size(); ++i)
    if (!(std::fabs(double(gg[i]) - rg[i]) <= 8e-3 * std::fabs(rg[i]) + 1e-7))
      ++off;
  EXPECT_EQ(off, 0) << "gradient elements off the CPU's";
  for (int64_t v = 0; v < vocab; ++v)
    EXPECT_EQ(gg[1 * vocab + v], 0.0f); // an ignored position
}

TEST(LossOptimGpu, AdamWMatchesTheCpuBitForBit) {
  MLLM_REQUIRE_GPU();
  cpu::AdamConfig config;
  config.lr = 3e-3;
  config.weightDecay = 0.1;
  // More tensors than one launch takes, of sizes around the block size.
  std::vector<int64_t> sizes;
  for (int i = 0; i < 40; ++i)
    sizes.push_back(i % 5 == 0 ? 0 : 1 + (i * 977) % 3000);
  std::vector<std::vector<float>> p, g, m, v;
  std::vector<DeviceArray<float>> dp, dg, dm, dv;
  std::vector<DeviceArray<bf16>> dcopy;
  std::vector<gpu::AdamWTensor> tensors;
  for (size_t i = 0; i < sizes.size(); ++i) {
    p.push_back(randomFloats(sizes[i], 100 + i));
    g.push_back(randomFloats(sizes[i], 200 + i, 0.1f));
    m.emplace_back(sizes[i], 0.0f);
    v.emplace_back(sizes[i], 0.0f);
    dp.push_back(upload(p[i]));
    dg.push_back(upload(g[i]));
    dm.push_back(upload(m[i]));
    dv.push_back(upload(v[i]));
    dcopy.push_back(upload(std::vector<bf16>(sizes[i])));
    gpu::AdamWTensor t;
    t.param = dp[i].data();
    t.grad = dg[i].data();
    t.expAvg = dm[i].data();
    t.expAvgSq = dv[i].data();
    t.paramBf16 = dcopy[i].data();
    t.n = sizes[i];
    tensors.push_back(t);
  }
  for (int64_t step = 1; step <= 3; ++step) {
    ASSERT_OK(gpu::adamwStep(tensors, step, config, nullptr));
    for (size_t i = 0; i < sizes.size(); ++i)
      cpu::adamwStep(p[i].data(), g[i].data(), m[i].data(), v[i].data(),
                     sizes[i], step, config);
  }
  for (size_t i = 0; i < sizes.size(); ++i) {
    ASSERT_EQ(download(dp[i]), p[i]) << "tensor " << i;
    ASSERT_EQ(download(dm[i]), m[i]) << "tensor " << i;
    ASSERT_EQ(download(dv[i]), v[i]) << "tensor " << i;
    ASSERT_EQ(toFloat(download(dcopy[i])), roundBf16(p[i]));
  }
}

TEST(LossOptimGpu, GemmEveryTransposition) {
  MLLM_REQUIRE_GPU();
  gpu::Gemm gemm;
  ASSERT_OK(gemm.init());
  const int64_t m = 37, n = 53, k = 70;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      SCOPED_TRACE(testing::Message() << "transA " << ta << " transB " << tb);
      std::vector<float> a = roundBf16(randomFloats(m * k, 20 + ta));
      std::vector<float> b = roundBf16(randomFloats(k * n, 30 + tb));
      std::vector<float> c = randomFloats(m * n, 40);
      gpu::GemmShape s;
      s.transA = ta;
      s.transB = tb;
      s.m = m;
      s.n = n;
      s.k = k;
      s.lda = ta ? m : k;
      s.ldb = tb ? k : n;
      s.ldc = n;
      DeviceArray<bf16> da = upload(toBf16(a)), db = upload(toBf16(b));
      DeviceArray<float> dc = upload(c);
      DeviceArray<bf16> dcb = upload(std::vector<bf16>(m * n));
      ASSERT_OK(
          gemm.run(s, 0.5f, da.data(), db.data(), 1.0f, dc.data(), nullptr));
      ASSERT_OK(
          gemm.run(s, 1.0f, da.data(), db.data(), 0.0f, dcb.data(), nullptr));
      std::vector<float> ref = c, plain(m * n);
      cpu::gemm<float>(ta, tb, m, n, k, 0.5f, a.data(), s.lda, b.data(), s.ldb,
                       1.0f, ref.data(), n);
      cpu::gemm<float>(ta, tb, m, n, k, 1.0f, a.data(), s.lda, b.data(), s.ldb,
                       0.0f, plain.data(), n);
      EXPECT_LT(relError(download(dc), ref), 1e-4);
      EXPECT_LT(relError(toFloat(download(dcb)), plain), 2e-2);
    }
}

} // namespace
