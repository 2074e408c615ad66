//===- AttentionBackward.cpp - Flash-attention backward on the CPU --------===//
//
// FA2's backward without atomics, so that every sum has one owner and a
// fixed order (bitwise reproducible whatever the thread count):
//   1. delta = rowsum(dO * O) per (query, head);
//   2. key-stationary: one task per (key block, kv head) owns dK and dV of
//      its keys; it visits the query tiles that reach the block in
//      ascending order, and for each the query heads of its group, and
//      recomputes P = exp(S - LSE): dV += P^T dO, dS = P * (dO V^T - delta),
//      dK += scale * dS^T Q;
//   3. query-stationary: one task per (query tile, head) owns dQ of its
//      rows: the same S, P and dS over the forward's spans, dQ += scale *
//      dS K.
// Pass 3 recomputes QK^T and dO V^T once more; that is the price of no
// atomics (brief §6, item 4).
//
//===----------------------------------------------------------------------===//

#include "mllm/kernels/cpu/AttentionBlocks.h"

#include <algorithm>

using namespace mllm::kernels;
using namespace mllm::kernels::cpu;
using namespace mllm::kernels::cpu::impl;

namespace {

template <typename T>
struct BackwardScratch {
  int64_t ld, accLd;
  Scratch<T> p, dp, acc0, acc1;
  BackwardScratch(int64_t rows, int64_t keys, int64_t accRows, int64_t d)
      : ld(paddedLd(std::max<int64_t>(keys, 1))), accLd(paddedLd(d)),
        p(rows * ld), dp(rows * ld), acc0(accRows * accLd),
        acc1(accRows * accLd) {}
};

/// P and dS of query tile `row`, head `head`, against key tiles [first,
/// last], left in w.p and w.dp.
template <typename T>
void probsAndGrads(const AttentionPlan &plan, const AttentionHeads &heads,
                   int64_t head, int64_t row, int64_t first, int64_t last,
                   const T *q, const T *k, const T *v, const T *lse,
                   const T *dO, const T *delta, BackwardScratch<T> &w) {
  const int64_t nh = heads.heads, nkv = heads.kvHeads, d = heads.headDim;
  const int64_t m = tileRows(plan, row), n = spanKeys(plan, first, last);
  const int64_t q0 = row * plan.shape.rows, k0 = first * plan.shape.cols;
  const int64_t kvHead = head / (nh / nkv);
  scoreBlock(plan, heads, head, row, first, last, q, k, w.p.data(), w.ld);
  probsBlock(w.p.data(), w.ld, m, n, lse + head * plan.qLen + q0);
  gemm(false, true, m, n, d, T(1), dO + (q0 * nh + head) * d, nh * d,
       v + (k0 * nkv + kvHead) * d, nkv * d, T(0), w.dp.data(), w.ld);
  gradBlock(w.dp.data(), w.p.data(), w.ld, m, n, delta + head * plan.qLen + q0);
}

/// dK and dV of key block `block` for kv head `kvHead`.
template <typename T>
void keyBlock(const AttentionPlan &plan, const AttentionHeads &heads,
              int64_t block, int64_t kvHead, const T *q, const T *k, const T *v,
              const T *lse, const T *dO, const T *delta, T *dk, T *dv,
              BackwardScratch<T> &w) {
  const int64_t nh = heads.heads, nkv = heads.kvHeads, d = heads.headDim;
  const int64_t group = nh / nkv, cols = plan.shape.cols;
  const int64_t key0 = block * plan.blockTiles * cols;
  const int64_t keys =
      std::min(plan.kLen, key0 + plan.blockTiles * cols) - key0;
  T *dK = w.acc0.data(), *dV = w.acc1.data();
  for (int64_t j = 0; j < keys; ++j) {
    std::fill(dK + j * w.accLd, dK + j * w.accLd + d, T(0));
    std::fill(dV + j * w.accLd, dV + j * w.accLd + d, T(0));
  }
  for (int64_t e = plan.blockStart[block]; e < plan.blockStart[block + 1];
       ++e) {
    const AttentionPlan::BlockRow &br = plan.blockRows[e];
    int64_t m = tileRows(plan, br.row), q0 = br.row * plan.shape.rows;
    int64_t n = spanKeys(plan, br.first, br.last);
    int64_t off = (br.first * cols - key0) * w.accLd;
    for (int64_t head = kvHead * group; head < (kvHead + 1) * group; ++head) {
      probsAndGrads(plan, heads, head, br.row, br.first, br.last, q, k, v, lse,
                    dO, delta, w);
      const T *dORows = dO + (q0 * nh + head) * d,
              *qRows = q + (q0 * nh + head) * d;
      gemm(true, false, n, d, m, T(1), w.p.data(), w.ld, dORows, nh * d, T(1),
           dV + off, w.accLd);
      gemm(true, false, n, d, m, static_cast<T>(heads.scale), w.dp.data(), w.ld,
           qRows, nh * d, T(1), dK + off, w.accLd);
    }
  }
  for (int64_t j = 0; j < keys; ++j) {
    std::copy(dK + j * w.accLd, dK + j * w.accLd + d,
              dk + ((key0 + j) * nkv + kvHead) * d);
    std::copy(dV + j * w.accLd, dV + j * w.accLd + d,
              dv + ((key0 + j) * nkv + kvHead) * d);
  }
}

/// dQ of query tile `row` for head `head`.
template <typename T>
void queryTile(const AttentionPlan &plan, const AttentionHeads &heads,
               int64_t row, int64_t head, const T *q, const T *k, const T *v,
               const T *lse, const T *dO, const T *delta, T *dq,
               BackwardScratch<T> &w) {
  const int64_t nh = heads.heads, nkv = heads.kvHeads, d = heads.headDim;
  const int64_t kvHead = head / (nh / nkv);
  const int64_t m = tileRows(plan, row), q0 = row * plan.shape.rows;
  T *dQ = w.acc0.data();
  for (int64_t i = 0; i < m; ++i)
    std::fill(dQ + i * w.accLd, dQ + i * w.accLd + d, T(0));
  for (int64_t s = plan.spanStart[row]; s < plan.spanStart[row + 1]; ++s) {
    const AttentionPlan::Span &span = plan.spans[s];
    int64_t n = spanKeys(plan, span.first, span.last);
    int64_t k0 = span.first * plan.shape.cols;
    probsAndGrads(plan, heads, head, row, span.first, span.last, q, k, v, lse,
                  dO, delta, w);
    gemm(false, false, m, d, n, static_cast<T>(heads.scale), w.dp.data(), w.ld,
         k + (k0 * nkv + kvHead) * d, nkv * d, T(1), dQ, w.accLd);
  }
  for (int64_t i = 0; i < m; ++i)
    std::copy(dQ + i * w.accLd, dQ + i * w.accLd + d,
              dq + ((q0 + i) * nh + head) * d);
}

} // namespace

template <typename T>
void cpu::attentionBackward(const AttentionPlan &plan,
                            const AttentionHeads &heads, const T *q, const T *k,
                            const T *v, const T *o, const T *lse, const T *dO,
                            T *dq, T *dk, T *dv,
                            const AttentionOptions &options) {
  const int64_t nh = heads.heads, nkv = heads.kvHeads, d = heads.headDim;
  const int64_t rows = plan.shape.rows;
  const int64_t blocks = static_cast<int64_t>(plan.blockWork.size());
  const int threads = threadCount(options);
  Scratch<T> deltaBuf(static_cast<size_t>(nh * plan.qLen));
  T *delta = deltaBuf.data();
  BlasSingleThread blas;
#pragma omp parallel num_threads(threads)
  {
#pragma omp for schedule(static)
    for (int64_t i = 0; i < plan.qLen; ++i)
      for (int64_t h = 0; h < nh; ++h) {
        const T *a = dO + (i * nh + h) * d, *b = o + (i * nh + h) * d;
        T sum = T(0);
        for (int64_t j = 0; j < d; ++j)
          sum += a[j] * b[j];
        delta[h * plan.qLen + i] = sum;
      }
    // The implicit barrier above makes delta complete before either pass.
    BackwardScratch<T> w(rows, std::max(plan.maxBlockKeys, plan.maxSpanKeys),
                         std::max(rows, plan.maxBlockKeys), d);
#pragma omp for schedule(dynamic, 1) nowait
    for (int64_t t = 0; t < blocks * nkv; ++t)
      keyBlock(plan, heads, plan.blockOrder[t / nkv], t % nkv, q, k, v, lse, dO,
               delta, dk, dv, w);
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < plan.rowTiles * nh; ++t)
      queryTile(plan, heads, plan.rowOrder[t / nh], t % nh, q, k, v, lse, dO,
                delta, dq, w);
  }
}

template void cpu::attentionBackward<float>(
    const AttentionPlan &, const AttentionHeads &, const float *, const float *,
    const float *, const float *, const float *, const float *, float *,
    float *, float *, const AttentionOptions &);
template void cpu::attentionBackward<double>(
    const AttentionPlan &, const AttentionHeads &, const double *,
    const double *, const double *, const double *, const double *,
    const double *, double *, double *, double *, const AttentionOptions &);
