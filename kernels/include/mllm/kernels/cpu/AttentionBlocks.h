//===- AttentionBlocks.h - CPU attention internals --------------*- C++ -*-===//
//
// Not part of the API: the GEMM wrappers, the element-wise operations on a
// block of scores (mask, ALiBi, online softmax, recomputed probabilities,
// dS) and the score computation that the forward, dK/dV and dQ passes
// share. Blocks are row-major with a leading dimension `ld`; float versions
// are compiled for several x86 levels and picked at load time.
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_KERNELS_CPU_ATTENTIONBLOCKS_H
#define MLLM_KERNELS_CPU_ATTENTIONBLOCKS_H

#include "mllm/kernels/OnlineSoftmax.h"
#include "mllm/kernels/cpu/Attention.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>

namespace mllm {
namespace kernels {
namespace cpu {
namespace impl {

/// Row-major C = alpha * op(A) op(B) + beta * C through OpenBLAS.
void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
          float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
          float beta, float *c, int64_t ldc);
void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
          double alpha, const double *a, int64_t lda, const double *b,
          int64_t ldb, double beta, double *c, int64_t ldc);

/// Keeps OpenBLAS at one thread while it lives: our OpenMP threads call it
/// concurrently, one GEMM each. Restores the previous count.
class BlasSingleThread {
public:
  BlasSingleThread();
  ~BlasSingleThread();
  BlasSingleThread(const BlasSingleThread &) = delete;
  BlasSingleThread &operator=(const BlasSingleThread &) = delete;

private:
  int saved;
};

/// The OpenMP thread count a call runs with.
int threadCount(const AttentionOptions &options);

/// A zeroed, 64-byte aligned scratch array. Alignment is fixed so that a
/// vectorised loop peels the same way on every run (determinism).
template <typename T>
class Scratch {
public:
  explicit Scratch(size_t n)
      : ptr(static_cast<T *>(std::aligned_alloc(64, roundUp(n)))) {
    for (size_t i = 0; i < n; ++i)
      ptr[i] = T(0);
  }
  ~Scratch() { std::free(ptr); }
  Scratch(const Scratch &) = delete;
  Scratch &operator=(const Scratch &) = delete;
  T *data() { return ptr; }

private:
  static size_t roundUp(size_t n) { return (n * sizeof(T) + 63) / 64 * 64; }
  T *ptr;
};

/// A leading dimension for `n` columns that keeps every row 64-byte aligned.
inline int64_t paddedLd(int64_t n) { return (n + 15) / 16 * 16; }

// Element-wise block operations (one overload per precision).

/// s = -inf where bit j of bits[i] is clear (n <= 64).
void maskTile(float *s, int64_t ld, int64_t m, int64_t n, const uint64_t *bits);
void maskTile(double *s, int64_t ld, int64_t m, int64_t n,
              const uint64_t *bits);
/// s = -inf on a whole sub-block (a Skip tile inside a dK/dV block).
void maskAll(float *s, int64_t ld, int64_t m, int64_t n);
void maskAll(double *s, int64_t ld, int64_t m, int64_t n);
/// s += slope * (kPos[j] - qPos[i]).
void addAlibi(float *s, int64_t ld, int64_t m, int64_t n, float slope,
              const int64_t *qPos, const int64_t *kPos);
void addAlibi(double *s, int64_t ld, int64_t m, int64_t n, double slope,
              const int64_t *qPos, const int64_t *kPos);
/// Online-softmax update of m rows with a block of n scores: s becomes the
/// block's probabilities exp(s - newMax), rowMax/rowSum are updated and
/// alpha receives each row's rescale factor for the accumulator.
void softmaxBlock(float *s, int64_t ld, int64_t m, int64_t n, float *rowMax,
                  float *rowSum, float *alpha);
void softmaxBlock(double *s, int64_t ld, int64_t m, int64_t n, double *rowMax,
                  double *rowSum, double *alpha);
/// s = exp(s - lse[i]) (0 for a row with lse = -inf).
void probsBlock(float *s, int64_t ld, int64_t m, int64_t n, const float *lse);
void probsBlock(double *s, int64_t ld, int64_t m, int64_t n, const double *lse);
/// dp = p * (dp - delta[i]) (dS), p and dp with the same ld.
void gradBlock(float *dp, const float *p, int64_t ld, int64_t m, int64_t n,
               const float *delta);
void gradBlock(double *dp, const double *p, int64_t ld, int64_t m, int64_t n,
               const double *delta);
/// x[i][:] *= factor[i].
void scaleRows(float *x, int64_t ld, int64_t m, int64_t n, const float *factor);
void scaleRows(double *x, int64_t ld, int64_t m, int64_t n,
               const double *factor);

/// Masked, scaled (plus ALiBi) scores of query tile `row` (head `head`)
/// against key tiles [first, last], into s (m x keys, leading dimension ld).
/// Skip tiles inside the range become -inf.
template <typename T>
void scoreBlock(const AttentionPlan &plan, const AttentionHeads &heads,
                int64_t head, int64_t row, int64_t first, int64_t last,
                const T *q, const T *k, T *s, int64_t ld);

/// Query rows of tile `row` and keys of tiles [first, last].
inline int64_t tileRows(const AttentionPlan &plan, int64_t row) {
  return tileExtent(plan.qLen, plan.shape.rows, row);
}
inline int64_t spanKeys(const AttentionPlan &plan, int64_t first,
                        int64_t last) {
  int64_t end = (last + 1) * plan.shape.cols;
  return (end < plan.kLen ? end : plan.kLen) - first * plan.shape.cols;
}

} // namespace impl
} // namespace cpu
} // namespace kernels
} // namespace mllm

#endif // MLLM_KERNELS_CPU_ATTENTIONBLOCKS_H
