//===- AttentionForward.cpp - Flash-attention forward on the CPU ----------===//
//
// One task per (query tile, head), heaviest query tiles first, handed out
// dynamically. A task keeps its tile's running maximum, sum and output
// accumulator and visits only the plan's spans (runs of non-skipped key
// tiles, one GEMM each): S = scale * QK^T, the mask bits of Partial tiles,
// ALiBi, the online-softmax update, then acc = alpha * acc + PV. No S x S
// matrix and no sharing between tasks, so every output is reduced in the
// same order whichever thread runs it.
//
//===----------------------------------------------------------------------===//

#include "mllm/kernels/cpu/AttentionBlocks.h"

#include <algorithm>

using namespace mllm::kernels;
using namespace mllm::kernels::cpu;
using namespace mllm::kernels::cpu::impl;

namespace {

template <typename T>
struct ForwardScratch {
  int64_t ld, accLd;
  Scratch<T> s, acc, rowMax, rowSum, alpha;
  ForwardScratch(const AttentionPlan &plan, int64_t headDim)
      : ld(paddedLd(std::max<int64_t>(plan.maxSpanKeys, 1))),
        accLd(paddedLd(headDim)), s(plan.shape.rows * ld),
        acc(plan.shape.rows * accLd), rowMax(plan.shape.rows),
        rowSum(plan.shape.rows), alpha(plan.shape.rows) {}
};

template <typename T>
void forwardTile(const AttentionPlan &plan, const AttentionHeads &heads,
                 int64_t row, int64_t head, const T *q, const T *k, const T *v,
                 T *o, T *lse, ForwardScratch<T> &w) {
  const int64_t nh = heads.heads, nkv = heads.kvHeads, d = heads.headDim;
  const int64_t kvHead = head / (nh / nkv);
  const int64_t m = tileRows(plan, row), q0 = row * plan.shape.rows;
  T *rowMax = w.rowMax.data(), *rowSum = w.rowSum.data(), *acc = w.acc.data();
  for (int64_t i = 0; i < m; ++i) {
    rowMax[i] = negativeInfinity<T>();
    rowSum[i] = T(0);
    std::fill(acc + i * w.accLd, acc + i * w.accLd + d, T(0));
  }
  for (int64_t s = plan.spanStart[row]; s < plan.spanStart[row + 1]; ++s) {
    const AttentionPlan::Span &span = plan.spans[s];
    int64_t n = spanKeys(plan, span.first, span.last);
    int64_t k0 = span.first * plan.shape.cols;
    scoreBlock(plan, heads, head, row, span.first, span.last, q, k, w.s.data(),
               w.ld);
    softmaxBlock(w.s.data(), w.ld, m, n, rowMax, rowSum, w.alpha.data());
    scaleRows(acc, w.accLd, m, d, w.alpha.data());
    gemm(false, false, m, d, n, T(1), w.s.data(), w.ld,
         v + (k0 * nkv + kvHead) * d, nkv * d, T(1), acc, w.accLd);
  }
  for (int64_t i = 0; i < m; ++i) {
    T norm = softmaxNormalizer(rowSum[i]);
    T *out = o + ((q0 + i) * nh + head) * d;
    const T *a = acc + i * w.accLd;
    for (int64_t j = 0; j < d; ++j)
      out[j] = a[j] * norm;
    lse[head * plan.qLen + q0 + i] = softmaxLse(rowMax[i], rowSum[i]);
  }
}

} // namespace

template <typename T>
void cpu::attentionForward(const AttentionPlan &plan,
                           const AttentionHeads &heads, const T *q, const T *k,
                           const T *v, T *o, T *lse,
                           const AttentionOptions &options) {
  const int64_t nh = heads.heads;
  const int64_t tasks = plan.rowTiles * nh;
  BlasSingleThread blas;
#pragma omp parallel num_threads(threadCount(options))
  {
    ForwardScratch<T> scratch(plan, heads.headDim);
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; ++t)
      forwardTile(plan, heads, plan.rowOrder[t / nh], t % nh, q, k, v, o, lse,
                  scratch);
  }
}

template void cpu::attentionForward<float>(const AttentionPlan &,
                                           const AttentionHeads &,
                                           const float *, const float *,
                                           const float *, float *, float *,
                                           const AttentionOptions &);
template void cpu::attentionForward<double>(const AttentionPlan &,
                                            const AttentionHeads &,
                                            const double *, const double *,
                                            const double *, double *, double *,
                                            const AttentionOptions &);
