//===- AttentionGpuTest.cpp - CUDA bitfield attention against the CPU -----===//
//
// The device plan's exact classes against the CPU plan at the kernel's tile
// (64 x 64), and forward and backward against the CPU kernel in fp32 on the
// same bf16-rounded inputs, for both kernels (AttentionKernel): every mask
// family, CP orderings, GQA, ALiBi, both head sizes, split-KV against no
// split, padding rows (O = 0, LSE = -inf), and bitwise reproducibility.
// Skipped without a GPU.
//
//===----------------------------------------------------------------------===//

#include "GpuTestUtil.h"

#include "../Attention/AttentionTestUtil.h"

#include "mllm/kernels/OnlineSoftmax.h"
#include "mllm/kernels/cuda/Attention.h"

#include <numeric>

using namespace mllm;
using namespace mllm::attention_test;
using namespace mllm::cuda_test;
namespace gpu = mllm::kernels::cuda;

namespace {

gpu::AttentionTokens gpuTokens(const Problem &p) {
  gpu::AttentionTokens t;
  t.layout = &p.layout;
  t.policy = p.policy;
  t.qPos = p.qPos.data();
  t.qLen = p.qLen();
  t.kPos = p.kPos.data();
  t.kLen = p.kLen();
  return t;
}

/// What the GPU computed, as floats.
struct GpuRun {
  std::vector<float> o, lse, dq, dk, dv;
};

GpuRun runGpu(const Problem &p, const Inputs<float> &in, int splits,
              const DeviceArray<float> &slopes, gpu::AttentionKernel kernel) {
  GpuRun r;
  gpu::AttentionPlan plan;
  gpu::Status s = gpu::prepareAttention(gpuTokens(p), plan);
  EXPECT_TRUE(s.ok()) << s.message();
  gpu::AttentionHeads h;
  h.heads = p.heads;
  h.kvHeads = p.kvHeads;
  h.headDim = p.headDim;
  h.scale = static_cast<float>(p.headSpec().scale);
  h.alibiSlopes = p.slopes.empty() ? nullptr : slopes.data();
  const int64_t qn = p.qLen() * p.heads * p.headDim;
  auto q = upload(toBf16(in.q)), k = upload(toBf16(in.k)),
       v = upload(toBf16(in.v)), dO = upload(toBf16(in.dO));
  auto o = upload(std::vector<bf16>(qn)), dq = upload(std::vector<bf16>(qn));
  auto dk = upload(std::vector<bf16>(in.k.size())),
       dv = upload(std::vector<bf16>(in.v.size()));
  auto lse = upload(std::vector<float>(p.qLen() * p.heads));
  gpu::AttentionOptions options;
  options.splits = splits;
  options.kernel = kernel;
  s = gpu::attentionForward(plan, h, q.data(), k.data(), v.data(), o.data(),
                            lse.data(), options);
  EXPECT_TRUE(s.ok()) << s.message();
  s = gpu::attentionBackward(plan, h, q.data(), k.data(), v.data(), o.data(),
                             lse.data(), dO.data(), dq.data(), dk.data(),
                             dv.data(), options);
  EXPECT_TRUE(s.ok()) << s.message();
  r.o = toFloat(download(o));
  r.lse = download(lse);
  r.dq = toFloat(download(dq));
  r.dk = toFloat(download(dk));
  r.dv = toFloat(download(dv));
  return r;
}

/// Inputs rounded to bf16, so both backends see the same values.
Inputs<float> bf16Inputs(const Problem &p, uint64_t seed) {
  Inputs<float> in = randomInputs<float>(p, seed);
  for (std::vector<float> *t : {&in.q, &in.k, &in.v, &in.dO})
    *t = roundBf16(*t);
  return in;
}

const gpu::AttentionKernel kKernels[] = {gpu::AttentionKernel::Staged,
                                         gpu::AttentionKernel::Registers};

const char *kernelName(gpu::AttentionKernel kernel) {
  return kernel == gpu::AttentionKernel::Staged ? "staged" : "registers";
}

/// Every kernel against the CPU kernel.
void expectClose(const Problem &p, int splits) {
  Inputs<float> in = bf16Inputs(p, 42);
  Outputs<float> ref = runKernel<float>(p, in);
  DeviceArray<float> slopes = upload(p.slopes);
  for (gpu::AttentionKernel kernel : kKernels) {
    SCOPED_TRACE(kernelName(kernel));
    GpuRun g = runGpu(p, in, splits, slopes, kernel);
    EXPECT_LT(relError(g.o, ref.o), 2e-2);
    EXPECT_LT(relError(g.lse, ref.lse), 1e-3);
    EXPECT_LT(relError(g.dq, ref.dq), 3e-2);
    EXPECT_LT(relError(g.dk, ref.dk), 3e-2);
    EXPECT_LT(relError(g.dv, ref.dv), 3e-2);
  }
}

TEST(AttentionGpu, PlanEqualsTheCpuPlan) {
  MLLM_REQUIRE_GPU();
  for (MaskFamily family : allFamilies())
    for (int64_t n : {1, 65, 1000, 3000}) {
      SCOPED_TRACE(testing::Message() << familyName(family) << " " << n);
      GeneratedMask m = generateMask(family, n, 3);
      Problem p = plainProblem(m.layout, m.policy, {64, 64}, 1, 1, 64);
      gpu::AttentionPlan plan;
      ASSERT_OK(gpu::prepareAttention(gpuTokens(p), plan));
      cpu::AttentionPlan cpuPlan = cpu::prepareAttention(p.tokens());
      std::vector<uint8_t> classes;
      ASSERT_OK(plan.downloadClasses(classes, nullptr));
      for (int64_t r = 0; r < cpuPlan.rowTiles; ++r)
        for (int64_t c = 0; c < cpuPlan.colTiles; ++c)
          ASSERT_EQ(classes[r * cpuPlan.colTiles + c],
                    static_cast<uint8_t>(cpuPlan.tileClass(r, c)))
              << "tile " << r << "," << c;
      EXPECT_EQ(plan.visiblePairs, cpuPlan.visiblePairs());
      EXPECT_EQ(plan.nonSkippedTiles, cpuPlan.nonSkippedTiles());
    }
}

// A plan made again for another batch reuses its arrays where they fit
// (DeviceArray): larger, smaller, a single tile and larger again, each
// equal to a plan made fresh.
TEST(AttentionGpu, APlanMadeAgainEqualsAFreshOne) {
  MLLM_REQUIRE_GPU();
  gpu::AttentionPlan reused;
  for (int64_t n : {3000, 65, 1, 1500}) {
    SCOPED_TRACE(n);
    GeneratedMask m = generateMask(MaskFamily::MllmEmbedded, n, 5);
    Problem p = plainProblem(m.layout, m.policy, {64, 64}, 1, 1, 64);
    gpu::AttentionPlan fresh;
    ASSERT_OK(gpu::prepareAttention(gpuTokens(p), fresh));
    ASSERT_OK(gpu::prepareAttention(gpuTokens(p), reused));
    EXPECT_EQ(reused.rowTiles, fresh.rowTiles);
    EXPECT_EQ(reused.colTiles, fresh.colTiles);
    EXPECT_EQ(reused.nonSkippedTiles, fresh.nonSkippedTiles);
    EXPECT_EQ(reused.partialTiles, fresh.partialTiles);
    EXPECT_EQ(reused.maxRowWork, fresh.maxRowWork);
    EXPECT_EQ(reused.visiblePairs, fresh.visiblePairs);
    std::vector<uint8_t> a, b;
    ASSERT_OK(reused.downloadClasses(a, nullptr));
    ASSERT_OK(fresh.downloadClasses(b, nullptr));
    EXPECT_EQ(a, b);
    std::vector<int32_t> x, y;
    for (auto member :
         {&gpu::AttentionPlan::rowStart, &gpu::AttentionPlan::rowCols,
          &gpu::AttentionPlan::colStart, &gpu::AttentionPlan::colRows,
          &gpu::AttentionPlan::rowOrder, &gpu::AttentionPlan::colOrder}) {
      ASSERT_OK((reused.*member).download(x, nullptr));
      ASSERT_OK((fresh.*member).download(y, nullptr));
      EXPECT_EQ(x, y);
    }
  }
}

// Reserved for the largest batch (reserveAttention), a plan made again for
// smaller and larger batches keeps every array where it is: no cudaMalloc
// or cudaFree, which wait for the whole device.
TEST(AttentionGpu, AReservedPlanKeepsItsArrays) {
  MLLM_REQUIRE_GPU();
  gpu::AttentionPlan plan;
  ASSERT_OK(gpu::reserveAttention(plan, 3000, 3000));
  std::vector<const void *> first;
  for (int64_t n : {65, 3000, 1, 1500}) {
    SCOPED_TRACE(n);
    GeneratedMask m = generateMask(MaskFamily::MultimodalPacked, n, 5);
    Problem p = plainProblem(m.layout, m.policy, {64, 64}, 1, 1, 64);
    ASSERT_OK(gpu::prepareAttention(gpuTokens(p), plan));
    const std::vector<const void *> arrays = {
        plan.qWords.data(),   plan.kWords.data(),   plan.qSegs.data(),
        plan.kSegs.data(),    plan.qPos.data(),     plan.kPos.data(),
        plan.classes.data(),  plan.rowStart.data(), plan.rowCols.data(),
        plan.colStart.data(), plan.colRows.data(),  plan.rowOrder.data(),
        plan.colOrder.data()};
    if (first.empty())
      first = arrays;
    EXPECT_EQ(arrays, first);
  }
}

TEST(AttentionGpu, FamiliesAgainstTheCpu) {
  MLLM_REQUIRE_GPU();
  for (MaskFamily family : allFamilies())
    for (int64_t n : {1, 200, 1500}) {
      SCOPED_TRACE(testing::Message() << familyName(family) << " " << n);
      GeneratedMask m = generateMask(family, n, 9);
      expectClose(plainProblem(m.layout, m.policy, {64, 64}, 4, 2, 64), 1);
    }
}

TEST(AttentionGpu, HeadDim128GqaAlibi) {
  MLLM_REQUIRE_GPU();
  GeneratedMask m = generateMask(MaskFamily::MllmEmbedded, 700, 4);
  Problem p = plainProblem(m.layout, m.policy, {64, 64}, 4, 1, 128);
  p.slopes = alibiSlopes(p.heads);
  expectClose(p, 1);
}

TEST(AttentionGpu, SplitKvMergesToTheSameResult) {
  MLLM_REQUIRE_GPU();
  GeneratedMask m = generateMask(MaskFamily::PrefixLm, 900, 5);
  for (int splits : {2, 3, 16}) {
    SCOPED_TRACE(testing::Message() << splits << " splits");
    expectClose(plainProblem(m.layout, m.policy, {64, 64}, 2, 2, 64), splits);
  }
}

TEST(AttentionGpu, ContextParallelOrdersAndPadding) {
  MLLM_REQUIRE_GPU();
  std::mt19937_64 rng(8);
  for (int iter = 0; iter < 4; ++iter) {
    const int64_t n = 500 + 100 * iter;
    Problem p = plainProblem(randomLayout(rng, n), {}, {64, 64}, 2, 1, 64);
    std::vector<int64_t> order(numTiles(n, 128));
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    p.kPos = blockPositions(n, 128, order);
    p.qPos = blockPositions(n, 128, {order[0], order.back()});
    SCOPED_TRACE(testing::Message() << "iteration " << iter);
    expectClose(p, iter % 2 ? 0 : 1); // relError also checks -inf LSEs
  }
}

TEST(AttentionGpu, BitwiseReproducible) {
  MLLM_REQUIRE_GPU();
  GeneratedMask m = generateMask(MaskFamily::MultimodalPacked, 2000, 6);
  Problem p = plainProblem(m.layout, m.policy, {64, 64}, 4, 2, 64);
  Inputs<float> in = bf16Inputs(p, 1);
  DeviceArray<float> none;
  for (gpu::AttentionKernel kernel : kKernels) {
    SCOPED_TRACE(kernelName(kernel));
    GpuRun a = runGpu(p, in, 3, none, kernel),
           b = runGpu(p, in, 3, none, kernel);
    EXPECT_EQ(a.o, b.o);
    EXPECT_EQ(a.lse, b.lse);
    EXPECT_EQ(a.dq, b.dq);
    EXPECT_EQ(a.dk, b.dk);
    EXPECT_EQ(a.dv, b.dv);
  }
}

} // namespace
