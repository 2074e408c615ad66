//===- KernelsGpuTest.cpp - CUDA layer kernels against the CPU ------------===//
//
// Every kernel of kernels/cuda/Layers.h and the cuBLASLt GEMM on random
// bf16 inputs, against the CPU kernel run in fp32 on the same (bf16
// rounded) values: bf16 outputs within 2e-2 of max(1, max |ref|), fp32
// outputs within 1e-3, AdamW bit for bit. Skipped without a GPU.
//
//===----------------------------------------------------------------------===//

#include "GpuTestUtil.h"

#include "mllm/kernels/cpu/Activation.h"
#include "mllm/kernels/cpu/Embedding.h"
#include "mllm/kernels/cpu/Gemm.h"
#include "mllm/kernels/cpu/Norm.h"
#include "mllm/kernels/cpu/Rope.h"
#include "mllm/kernels/cuda/Gemm.h"
#include "mllm/kernels/cuda/Layers.h"

using namespace mllm;
using namespace mllm::cuda_test;
namespace cpu = mllm::kernels::cpu;
namespace gpu = mllm::kernels::cuda;

namespace {

constexpr double kBf16Tol = 2e-2, kF32Tol = 1e-3;

/// A bf16 tensor on the device and the float values it holds.
struct Tensor {
  std::vector<float> host;
  DeviceArray<bf16> dev;
  Tensor(size_t n, uint64_t seed, float scale = 1.0f)
      : host(roundBf16(randomFloats(n, seed, scale))),
        dev(upload(toBf16(host))) {}
  explicit Tensor(size_t n) : host(n, 0.0f), dev(upload(toBf16(host))) {}
  std::vector<float> read() const { return toFloat(download(dev)); }
};

TEST(KernelsGpu, RmsNorm) {
  MLLM_REQUIRE_GPU();
  const int64_t t = 37, d = 320;
  Tensor x(t * d, 1), w(d, 2), dy(t * d, 3), y(t * d), dx(t * d);
  DeviceArray<float> rstd = upload(std::vector<float>(t));
  DeviceArray<float> dw = upload(std::vector<float>(d, 0.5f));
  ASSERT_OK(gpu::rmsNormForward(x.dev.data(), w.dev.data(), y.dev.data(),
                                rstd.data(), t, d, 1e-5f, nullptr));
  ASSERT_OK(gpu::rmsNormBackward(dy.dev.data(), x.dev.data(), w.dev.data(),
                                 rstd.data(), dx.dev.data(), dw.data(), t, d,
                                 nullptr));
  std::vector<float> ry(t * d), rr(t), rdx(t * d), rdw(d, 0.5f);
  cpu::rmsNormForward(x.host.data(), w.host.data(), ry.data(), rr.data(), t, d,
                      1e-5);
  cpu::rmsNormBackwardInput(dy.host.data(), x.host.data(), w.host.data(),
                            rr.data(), rdx.data(), t, d);
  cpu::rmsNormBackwardWeight(dy.host.data(), x.host.data(), rr.data(),
                             rdw.data(), t, d);
  EXPECT_LT(relError(y.read(), ry), kBf16Tol);
  EXPECT_LT(relError(download(rstd), rr), kF32Tol);
  EXPECT_LT(relError(dx.read(), rdx), kBf16Tol);
  EXPECT_LT(relError(download(dw), rdw), kF32Tol);
}

TEST(KernelsGpu, LayerNormDeterministic) {
  MLLM_REQUIRE_GPU();
  const int64_t t = 300, d = 96;
  Tensor x(t * d, 4, 3.0f), w(d, 5), b(d, 6), dy(t * d, 7), y(t * d), dx(t * d);
  DeviceArray<float> mean = upload(std::vector<float>(t)),
                     rstd = upload(std::vector<float>(t));
  ASSERT_OK(gpu::layerNormForward(x.dev.data(), w.dev.data(), b.dev.data(),
                                  y.dev.data(), mean.data(), rstd.data(), t, d,
                                  1e-5f, nullptr));
  std::vector<float> gdw[2], gdb[2];
  for (int run = 0; run < 2; ++run) {
    DeviceArray<float> dw = upload(std::vector<float>(d)),
                       db = upload(std::vector<float>(d));
    ASSERT_OK(gpu::layerNormBackward(dy.dev.data(), x.dev.data(), w.dev.data(),
                                     mean.data(), rstd.data(), dx.dev.data(),
                                     dw.data(), db.data(), t, d, nullptr));
    gdw[run] = download(dw);
    gdb[run] = download(db);
  }
  EXPECT_EQ(gdw[0], gdw[1]); // fixed-order sums: same bits
  std::vector<float> ry(t * d), rm(t), rr(t), rdx(t * d), rdw(d), rdb(d);
  cpu::layerNormForward(x.host.data(), w.host.data(), b.host.data(), ry.data(),
                        rm.data(), rr.data(), t, d, 1e-5);
  cpu::layerNormBackwardInput(dy.host.data(), x.host.data(), w.host.data(),
                              rm.data(), rr.data(), rdx.data(), t, d);
  cpu::layerNormBackwardWeight(dy.host.data(), x.host.data(), rm.data(),
                               rr.data(), rdw.data(), rdb.data(), t, d);
  EXPECT_LT(relError(y.read(), ry), kBf16Tol);
  EXPECT_LT(relError(dx.read(), rdx), kBf16Tol);
  EXPECT_LT(relError(gdw[0], rdw), kF32Tol);
  EXPECT_LT(relError(gdb[0], rdb), kF32Tol);
}

TEST(KernelsGpu, RopeAtLongPositions) {
  MLLM_REQUIRE_GPU();
  const int64_t t = 19, h = 3, d = 64;
  std::vector<int64_t> pos(t);
  for (int64_t i = 0; i < t; ++i)
    pos[i] = i * 7001; // up to ~126k
  DeviceArray<int64_t> p = upload(pos);
  Tensor x(t * h * d, 8), y(t * h * d), back(t * h * d);
  ASSERT_OK(gpu::ropeForward(x.dev.data(), y.dev.data(), p.data(), t, h, d,
                             500000.0, nullptr));
  ASSERT_OK(gpu::ropeBackward(y.dev.data(), back.dev.data(), p.data(), t, h, d,
                              500000.0, nullptr));
  std::vector<float> ry(t * h * d);
  cpu::ropeForward(x.host.data(), ry.data(), pos.data(), t, h, d, 500000.0);
  EXPECT_LT(relError(y.read(), ry), kBf16Tol);
  EXPECT_LT(relError(back.read(), x.host), kBf16Tol); // a rotation inverts
}

TEST(KernelsGpu, Activations) {
  MLLM_REQUIRE_GPU();
  const int64_t t = 33, f = 130;
  Tensor in(t * 2 * f, 9, 4.0f), dout(t * f, 10), out(t * f), din(t * 2 * f);
  std::vector<float> ro(t * f), rdin(t * 2 * f);
  ASSERT_OK(gpu::swigluForward(in.dev.data(), out.dev.data(), t, f, nullptr));
  ASSERT_OK(gpu::swigluBackward(in.dev.data(), dout.dev.data(), din.dev.data(),
                                t, f, nullptr));
  cpu::swigluForward(in.host.data(), ro.data(), t, f);
  cpu::swigluBackward(in.host.data(), dout.host.data(), rdin.data(), t, f);
  EXPECT_LT(relError(out.read(), ro), kBf16Tol);
  EXPECT_LT(relError(din.read(), rdin), kBf16Tol);
  ASSERT_OK(gpu::gegluForward(in.dev.data(), out.dev.data(), t, f, nullptr));
  ASSERT_OK(gpu::gegluBackward(in.dev.data(), dout.dev.data(), din.dev.data(),
                               t, f, nullptr));
  cpu::gegluForward(in.host.data(), ro.data(), t, f);
  cpu::gegluBackward(in.host.data(), dout.host.data(), rdin.data(), t, f);
  EXPECT_LT(relError(out.read(), ro), kBf16Tol);
  EXPECT_LT(relError(din.read(), rdin), kBf16Tol);
  const int64_t n = t * f;
  ASSERT_OK(gpu::geluForward(in.dev.data(), out.dev.data(), n, nullptr));
  ASSERT_OK(gpu::geluBackward(in.dev.data(), dout.dev.data(), din.dev.data(), n,
                              nullptr));
  std::vector<float> rdx(n);
  cpu::geluForward(in.host.data(), ro.data(), n);
  cpu::geluBackward(in.host.data(), dout.host.data(), rdx.data(), n);
  EXPECT_LT(relError(out.read(), ro), kBf16Tol);
  std::vector<float> gdx = din.read();
  gdx.resize(n);
  EXPECT_LT(relError(gdx, rdx), kBf16Tol);
}

TEST(KernelsGpu, AddInPlaceRoundsTheSumOnce) {
  MLLM_REQUIRE_GPU();
  const int64_t n = 1000;
  Tensor y(n, 21, 3.0f), x(n, 22);
  ASSERT_OK(gpu::addInPlace(y.dev.data(), x.dev.data(), n, nullptr));
  // The fp32 sum of the two bf16 values, rounded to bf16 once.
  std::vector<float> want(n);
  for (int64_t i = 0; i < n; ++i)
    want[i] = y.host[i] + x.host[i];
  EXPECT_EQ(y.read(), roundBf16(want));
}

TEST(KernelsGpu, EmbeddingGatherAndScatter) {
  MLLM_REQUIRE_GPU();
  const int64_t vocab = 50, d = 72;
  std::vector<int64_t> ids = {3, 7, 3, 49, 0, 7, 7, 12, 3};
  const int64_t t = static_cast<int64_t>(ids.size());
  Tensor table(vocab * d, 11), out(t * d), dout(t * d, 12);
  DeviceArray<int64_t> dids = upload(ids);
  ASSERT_OK(gpu::embeddingForward(dids.data(), table.dev.data(), out.dev.data(),
                                  t, d, nullptr));
  std::vector<float> ro(t * d), rdt(vocab * d, 0.25f);
  cpu::embeddingForward(ids.data(), table.host.data(), ro.data(), t, vocab, d);
  EXPECT_EQ(out.read(), ro); // a copy: exact
  gpu::EmbeddingGradPlan plan;
  ASSERT_OK(gpu::prepareEmbeddingGrad(ids, vocab, plan, nullptr));
  EXPECT_EQ(plan.uniqueIds, 5); // 0, 3, 7, 12, 49
  DeviceArray<float> dt = upload(std::vector<float>(vocab * d, 0.25f));
  ASSERT_OK(
      gpu::embeddingBackward(plan, dout.dev.data(), dt.data(), d, nullptr));
  cpu::embeddingBackwardWeight(ids.data(), dout.host.data(), rdt.data(), t,
                               vocab, d);
  EXPECT_LT(relError(download(dt), rdt), 1e-6);
  gpu::EmbeddingGradPlan bad;
  EXPECT_FALSE(gpu::prepareEmbeddingGrad({1, 50}, vocab, bad, nullptr).ok());
}

} // namespace
