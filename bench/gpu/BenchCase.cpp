//===- BenchCase.cpp - One (mask family, length) row of the GPU bench -----===//
//
// The flash kernel (plan, forward, backward) and the dense reference on the
// same inputs. The dense path runs per query chunk of C rows, all heads at
// once (strided-batched GEMMs): S = Q K^T, masked softmax, O = P V; the
// backward recomputes S and P (an S x S probability matrix does not fit at
// 128k), dP = dO V^T, dS = P (dP - delta), dV += P^T dO, dK += dS^T Q,
// dQ = dS K. C is as large as --dense-mem-gib allows.
//
//===----------------------------------------------------------------------===//

#include "Bench.h"

#include <chrono>

using namespace mllm;
using namespace mllm::bench;
using namespace mllm::kernels;

namespace {

/// The dense reference's buffers and one pass over all query chunks.
struct Dense {
  const Options &o;
  gpu::Gemm &gemm;
  const gpu::AttentionPlan &plan;
  int64_t s, chunk;
  int h, d;
  float scale;
  float *scores, *lse, *delta, *dkf, *dvf;
  bf16 *p, *ds, *out, *dq;

  Dense(const Options &o, gpu::Gemm &gemm, const gpu::AttentionPlan &plan,
        int64_t s)
      : o(o), gemm(gemm), plan(plan), s(s), h(o.heads), d(o.headDim),
        scale(1.0f / std::sqrt(static_cast<float>(o.headDim))) {
    // fp32 scores, bf16 P and dS: 8 bytes per (head, row, key).
    double bytes = o.denseGiB * double(1 << 30);
    chunk = static_cast<int64_t>(bytes / (8.0 * h * s)) / 64 * 64;
    chunk = std::max<int64_t>(64, std::min(chunk, s));
    scores = deviceAlloc<float>(size_t(h) * chunk * s);
    p = deviceAlloc<bf16>(size_t(h) * chunk * s);
    ds = deviceAlloc<bf16>(size_t(h) * chunk * s);
    lse = deviceAlloc<float>(size_t(h) * s);
    delta = deviceAlloc<float>(size_t(h) * chunk);
    out = deviceAlloc<bf16>(size_t(s) * h * d);
    dq = deviceAlloc<bf16>(size_t(s) * h * d);
    dkf = deviceAlloc<float>(size_t(s) * h * d);
    dvf = deviceAlloc<float>(size_t(s) * h * d);
  }
  ~Dense() {
    for (void *ptr :
         {(void *)scores, (void *)p, (void *)ds, (void *)lse, (void *)delta,
          (void *)out, (void *)dq, (void *)dkf, (void *)dvf})
      cudaFree(ptr);
  }

  /// Rows [c0, c0 + rows) of every head: a [h, rows, s] product of a
  /// [s, h, d] operand chunk and the whole other operand.
  gpu::GemmShape scoresShape(int64_t rows) const {
    gpu::GemmShape g;
    g.transB = true;
    g.m = rows;
    g.n = s;
    g.k = d;
    g.lda = g.ldb = int64_t(h) * d;
    g.ldc = s;
    g.batch = h;
    g.strideA = g.strideB = d;
    g.strideC = rows * s;
    return g;
  }

  void probabilities(const bf16 *q, const bf16 *k, int64_t c0, int64_t rows) {
    CHECK_OK(gemm.run(scoresShape(rows), 1.0f, q + c0 * h * d, k, 0.0f, scores,
                      nullptr));
    DenseTokens t{plan.qWords.data(), plan.qSegs.data(), plan.qPos.data(), s};
    CHECK_CUDA(denseSoftmax(scores, p, lse, h, rows, c0, scale, plan.policy, t,
                            nullptr));
  }

  void forward(const bf16 *q, const bf16 *k, const bf16 *v) {
    for (int64_t c0 = 0; c0 < s; c0 += chunk) {
      int64_t rows = std::min(chunk, s - c0);
      probabilities(q, k, c0, rows);
      gpu::GemmShape g; // O = P V
      g.m = rows;
      g.n = d;
      g.k = s;
      g.lda = s;
      g.ldb = g.ldc = int64_t(h) * d;
      g.batch = h;
      g.strideA = rows * s;
      g.strideB = g.strideC = d;
      CHECK_OK(gemm.run(g, 1.0f, p, v, 0.0f, out + c0 * h * d, nullptr));
    }
  }

  void backward(const bf16 *q, const bf16 *k, const bf16 *v, const bf16 *dO) {
    for (int64_t c0 = 0; c0 < s; c0 += chunk) {
      int64_t rows = std::min(chunk, s - c0);
      probabilities(q, k, c0, rows);
      CHECK_OK(gemm.run(scoresShape(rows), 1.0f, dO + c0 * h * d, v, 0.0f,
                        scores, nullptr)); // dP
      CHECK_CUDA(denseDelta(out, dO, delta, h, rows, c0, d, nullptr));
      CHECK_CUDA(denseGrad(p, scores, delta, ds, h, rows, s, nullptr));
      gpu::GemmShape t; // dV += P^T dO, dK += scale dS^T Q
      t.transA = true;
      t.m = s;
      t.n = d;
      t.k = rows;
      t.lda = s;
      t.ldb = t.ldc = int64_t(h) * d;
      t.batch = h;
      t.strideA = rows * s;
      t.strideB = t.strideC = d;
      float beta = c0 > 0 ? 1.0f : 0.0f;
      CHECK_OK(gemm.run(t, 1.0f, p, dO + c0 * h * d, beta, dvf, nullptr));
      CHECK_OK(gemm.run(t, scale, ds, q + c0 * h * d, beta, dkf, nullptr));
      gpu::GemmShape g = t; // dQ = scale dS K
      g.transA = false;
      g.m = rows;
      g.k = s;
      CHECK_OK(gemm.run(g, scale, ds, k, 0.0f, dq + c0 * h * d, nullptr));
    }
  }
};

double tflops(double flops, double ms) { return flops / (ms * 1e-3) / 1e12; }

} // namespace

void bench::runCase(const Options &o, gpu::Gemm &gemm, MaskFamily family,
                    int64_t s) {
  GeneratedMask mask = generateMask(family, s, o.seed);
  gpu::AttentionPlan plan;
  auto t0 = std::chrono::steady_clock::now();
  CHECK_OK(gpu::prepareAttention(
      gpu::AttentionTokens::whole(mask.layout, mask.policy), plan));
  double planMs = std::chrono::duration<double, std::milli>(
                      std::chrono::steady_clock::now() - t0)
                      .count();
  const int h = o.heads, d = o.headDim;
  const size_t n = size_t(s) * h * d;
  bf16 *q = deviceAlloc<bf16>(n), *k = deviceAlloc<bf16>(n),
       *v = deviceAlloc<bf16>(n), *dO = deviceAlloc<bf16>(n),
       *out = deviceAlloc<bf16>(n), *dq = deviceAlloc<bf16>(n),
       *dk = deviceAlloc<bf16>(n), *dv = deviceAlloc<bf16>(n);
  float *lse = deviceAlloc<float>(size_t(h) * s);
  bf16 *inputs[] = {q, k, v, dO};
  for (int i = 0; i < 4; ++i)
    CHECK_CUDA(fillRandom(inputs[i], int64_t(n), o.seed * 4 + i, nullptr));

  gpu::AttentionHeads heads;
  heads.heads = heads.kvHeads = h;
  heads.headDim = d;
  heads.scale = 1.0f / std::sqrt(static_cast<float>(d));
  gpu::AttentionOptions options;
  options.splits = o.splits;
  options.kernel = o.kernel;
  double fwdMs = bestMs(o.reps, [&] {
    CHECK_OK(gpu::attentionForward(plan, heads, q, k, v, out, lse, options));
  });
  double bwdMs = bestMs(o.reps, [&] {
    CHECK_OK(gpu::attentionBackward(plan, heads, q, k, v, out, lse, dO, dq, dk,
                                    dv, options));
  });
  const double pairs = double(plan.visiblePairs) * h;
  const double fwdFlops = pairs * 4.0 * d, bwdFlops = pairs * 10.0 * d;
  const double skip = plan.skippedFraction();
  const double all = double(plan.rowTiles) * plan.colTiles;
  std::printf("| %lldk | %s | %.1f%% | %.1f%% | %.1f | %.2f | %.1f | %.2f | "
              "%.1f |",
              static_cast<long long>(s / 1024), familyName(family), 100 * skip,
              all ? 100.0 * plan.partialTiles / all : 0.0, planMs, fwdMs,
              tflops(fwdFlops, fwdMs), bwdMs, tflops(bwdFlops, bwdMs));
  if (o.dense) {
    Dense dense(o, gemm, plan, s);
    // The dense path is slow at long lengths: one timed run after 128k.
    int reps = s >= 65536 ? 1 : o.reps;
    double dfMs = bestMs(reps, [&] { dense.forward(q, k, v); });
    double dbMs = bestMs(reps, [&] { dense.backward(q, k, v, dO); });
    std::printf(" %.2f | %.1f | %.2f | %.1f | %.2fx | %.2fx |", dfMs,
                tflops(fwdFlops, dfMs), dbMs, tflops(bwdFlops, dbMs),
                dfMs / fwdMs, dbMs / bwdMs);
    if (s <= o.checkUpTo) {
      double err = std::max(
          {maxRelError(out, dense.out, n), maxRelError(dq, dense.dq, n),
           maxRelError(dk, dense.dkf, n), maxRelError(dv, dense.dvf, n)});
      std::printf(" %.2fx | %.1e |\n", 1.0 / std::max(1e-9, 1.0 - skip), err);
    } else {
      std::printf(" %.2fx | - |\n", 1.0 / std::max(1e-9, 1.0 - skip));
    }
  } else {
    std::printf(" - | - | - | - | - | - | %.2fx | - |\n",
                1.0 / std::max(1e-9, 1.0 - skip));
  }
  std::fflush(stdout);
  for (void *ptr : {(void *)q, (void *)k, (void *)v, (void *)dO, (void *)out,
                    (void *)dq, (void *)dk, (void *)dv, (void *)lse})
    cudaFree(ptr);
}
