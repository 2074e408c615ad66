//===- AttentionBlocks.cpp - Score-block operations of the CPU kernel -----===//
//
// GEMM wrappers over OpenBLAS, the element-wise passes over a block of
// scores and the shared score computation. The float passes are where the
// non-GEMM time goes (softmax was ~40% of the prototype's time, brief §6),
// so they are compiled for AVX-512, AVX2 and SSE4.1 and dispatched at load
// time; the double passes serve gradient checks and stay plain.
//
//===----------------------------------------------------------------------===//

#include "mllm/kernels/cpu/AttentionBlocks.h"

#include <cblas.h>
#include <omp.h>

#include <cmath>

using namespace mllm::kernels;
using namespace mllm::kernels::cpu;

// One clone per x86-64 level. Level 2 (SSE4.1) is the floor because below it
// rintf is a libm call per element, the pitfall the brief measured.
#if defined(__x86_64__) && defined(__ELF__) &&                                 \
    (defined(__clang__) || defined(__GNUC__))
#define MLLM_ATTN_CLONES                                                       \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3",             \
                               "arch=x86-64-v2", "default")))
#else
#define MLLM_ATTN_CLONES
#endif

// The element-wise bodies must be inlined into each clone: an outlined body
// is compiled for the baseline target only (and there rintf is a libm
// call), whatever clone calls it.
#if defined(__clang__) || defined(__GNUC__)
#define MLLM_ATTN_INLINE inline __attribute__((always_inline))
#else
#define MLLM_ATTN_INLINE inline
#endif

//===----------------------------------------------------------------------===//
// GEMM and threads
//===----------------------------------------------------------------------===//

static CBLAS_TRANSPOSE trans(bool t) { return t ? CblasTrans : CblasNoTrans; }

void impl::gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
                float alpha, const float *a, int64_t lda, const float *b,
                int64_t ldb, float beta, float *c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, trans(transA), trans(transB),
              static_cast<blasint>(m), static_cast<blasint>(n),
              static_cast<blasint>(k), alpha, a, static_cast<blasint>(lda), b,
              static_cast<blasint>(ldb), beta, c, static_cast<blasint>(ldc));
}

void impl::gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
                double alpha, const double *a, int64_t lda, const double *b,
                int64_t ldb, double beta, double *c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, trans(transA), trans(transB),
              static_cast<blasint>(m), static_cast<blasint>(n),
              static_cast<blasint>(k), alpha, a, static_cast<blasint>(lda), b,
              static_cast<blasint>(ldb), beta, c, static_cast<blasint>(ldc));
}

impl::BlasSingleThread::BlasSingleThread() : saved(openblas_get_num_threads()) {
  openblas_set_num_threads(1);
}

impl::BlasSingleThread::~BlasSingleThread() { openblas_set_num_threads(saved); }

int impl::threadCount(const AttentionOptions &options) {
  return options.threads > 0 ? options.threads : omp_get_max_threads();
}

//===----------------------------------------------------------------------===//
// Element-wise bodies, shared by both precisions
//===----------------------------------------------------------------------===//

namespace {

/// exp(x) for x <= 0 (scores minus a row maximum or LSE): Cephes' range
/// reduction with rintf (one vrndscaleps, not a libm call) and degree-6
/// polynomial, ~1 ulp; exactly 0 below -87, -inf included, where the true
/// value is a denormal at most.
MLLM_ATTN_INLINE float expNonPositive(float x) {
  float xc = x < -87.0f ? -87.0f : x;
  float kf = rintf(xc * 1.44269504088896341f);
  float r = xc - kf * 0.693359375f;
  r = r - kf * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  float e = p * r * r + r + 1.0f;
  auto twoK = __builtin_bit_cast(float, (static_cast<int32_t>(kf) + 127) << 23);
  return x < -87.0f ? 0.0f : e * twoK;
}

struct FastExp {
  MLLM_ATTN_INLINE float operator()(float x) const { return expNonPositive(x); }
};
struct LibmExp {
  double operator()(double x) const { return std::exp(x); }
};

template <typename T>
MLLM_ATTN_INLINE void maskTileBody(T *s, int64_t ld, int64_t m, int64_t n,
                                   const uint64_t *bits) {
  const T ninf = negativeInfinity<T>();
  for (int64_t i = 0; i < m; ++i) {
    T *row = s + i * ld;
    uint64_t b = bits[i];
#pragma omp simd
    for (int64_t j = 0; j < n; ++j)
      row[j] = ((b >> j) & 1) ? row[j] : ninf;
  }
}

template <typename T>
MLLM_ATTN_INLINE void addAlibiBody(T *s, int64_t ld, int64_t m, int64_t n,
                                   T slope, const int64_t *qPos,
                                   const int64_t *kPos) {
  for (int64_t i = 0; i < m; ++i) {
    T *row = s + i * ld;
    int64_t qp = qPos[i];
#pragma omp simd
    for (int64_t j = 0; j < n; ++j)
      row[j] += alibiBias(slope, qp, kPos[j]);
  }
}

/// The largest of n values. Sixteen independent lanes, because clang
/// leaves a `simd reduction(max:)` loop scalar: one dependent vmaxss per
/// element was a third of the forward's softmax time. Max is exact, so the
/// lane split cannot change the result.
template <typename T>
MLLM_ATTN_INLINE T maxOf(const T *x, int64_t n) {
  constexpr int64_t kLanes = 16;
  T lanes[kLanes];
  for (int64_t l = 0; l < kLanes; ++l)
    lanes[l] = negativeInfinity<T>();
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int64_t l = 0; l < kLanes; ++l)
      lanes[l] = x[j + l] > lanes[l] ? x[j + l] : lanes[l];
  for (; j < n; ++j)
    lanes[0] = x[j] > lanes[0] ? x[j] : lanes[0];
  T m = lanes[0];
  for (int64_t l = 1; l < kLanes; ++l)
    m = lanes[l] > m ? lanes[l] : m;
  return m;
}

template <typename T, typename Exp>
MLLM_ATTN_INLINE void softmaxBody(T *s, int64_t ld, int64_t m, int64_t n,
                                  T *rowMax, T *rowSum, T *alpha, Exp exp) {
  for (int64_t i = 0; i < m; ++i) {
    T *row = s + i * ld;
    SoftmaxStep<T> step = softmaxStep(rowMax[i], maxOf(row, n));
    alpha[i] = step.alpha;
    if (step.empty) {
      for (int64_t j = 0; j < n; ++j)
        row[j] = T(0);
      continue;
    }
    // Masked scores are -inf and exp gives exactly 0 for them (softmaxProb).
    T max = step.max, sum = T(0);
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < n; ++j) {
      T p = exp(row[j] - max);
      row[j] = p;
      sum += p;
    }
    rowMax[i] = max;
    rowSum[i] = rowSum[i] * step.alpha + sum;
  }
}

template <typename T, typename Exp>
MLLM_ATTN_INLINE void probsBody(T *s, int64_t ld, int64_t m, int64_t n,
                                const T *lse, Exp exp) {
  for (int64_t i = 0; i < m; ++i) {
    T *row = s + i * ld;
    T ref = lse[i];
    if (ref == negativeInfinity<T>()) { // nothing visible: no gradient
      for (int64_t j = 0; j < n; ++j)
        row[j] = T(0);
      continue;
    }
#pragma omp simd
    for (int64_t j = 0; j < n; ++j)
      row[j] = exp(row[j] - ref);
  }
}

template <typename T>
MLLM_ATTN_INLINE void gradBody(T *dp, const T *p, int64_t ld, int64_t m,
                               int64_t n, const T *delta) {
  for (int64_t i = 0; i < m; ++i) {
    T *dRow = dp + i * ld;
    const T *pRow = p + i * ld;
    T di = delta[i];
#pragma omp simd
    for (int64_t j = 0; j < n; ++j)
      dRow[j] = softmaxGrad(pRow[j], dRow[j], di);
  }
}

template <typename T>
MLLM_ATTN_INLINE void scaleRowsBody(T *x, int64_t ld, int64_t m, int64_t n,
                                    const T *factor) {
  for (int64_t i = 0; i < m; ++i) {
    T f = factor[i];
    if (f == T(1))
      continue;
    T *row = x + i * ld;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j)
      row[j] *= f;
  }
}

} // namespace

//===----------------------------------------------------------------------===//
// Overloads
//===----------------------------------------------------------------------===//

MLLM_ATTN_CLONES void impl::maskTile(float *s, int64_t ld, int64_t m, int64_t n,
                                     const uint64_t *bits) {
  maskTileBody(s, ld, m, n, bits);
}
void impl::maskTile(double *s, int64_t ld, int64_t m, int64_t n,
                    const uint64_t *bits) {
  maskTileBody(s, ld, m, n, bits);
}

void impl::maskAll(float *s, int64_t ld, int64_t m, int64_t n) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j)
      s[i * ld + j] = negativeInfinity<float>();
}
void impl::maskAll(double *s, int64_t ld, int64_t m, int64_t n) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j)
      s[i * ld + j] = negativeInfinity<double>();
}

MLLM_ATTN_CLONES void impl::addAlibi(float *s, int64_t ld, int64_t m, int64_t n,
                                     float slope, const int64_t *qPos,
                                     const int64_t *kPos) {
  addAlibiBody(s, ld, m, n, slope, qPos, kPos);
}
void impl::addAlibi(double *s, int64_t ld, int64_t m, int64_t n, double slope,
                    const int64_t *qPos, const int64_t *kPos) {
  addAlibiBody(s, ld, m, n, slope, qPos, kPos);
}

MLLM_ATTN_CLONES void impl::softmaxBlock(float *s, int64_t ld, int64_t m,
                                         int64_t n, float *rowMax,
                                         float *rowSum, float *alpha) {
  softmaxBody(s, ld, m, n, rowMax, rowSum, alpha, FastExp());
}
void impl::softmaxBlock(double *s, int64_t ld, int64_t m, int64_t n,
                        double *rowMax, double *rowSum, double *alpha) {
  softmaxBody(s, ld, m, n, rowMax, rowSum, alpha, LibmExp());
}

MLLM_ATTN_CLONES void impl::probsBlock(float *s, int64_t ld, int64_t m,
                                       int64_t n, const float *lse) {
  probsBody(s, ld, m, n, lse, FastExp());
}
void impl::probsBlock(double *s, int64_t ld, int64_t m, int64_t n,
                      const double *lse) {
  probsBody(s, ld, m, n, lse, LibmExp());
}

MLLM_ATTN_CLONES void impl::gradBlock(float *dp, const float *p, int64_t ld,
                                      int64_t m, int64_t n,
                                      const float *delta) {
  gradBody(dp, p, ld, m, n, delta);
}
void impl::gradBlock(double *dp, const double *p, int64_t ld, int64_t m,
                     int64_t n, const double *delta) {
  gradBody(dp, p, ld, m, n, delta);
}

MLLM_ATTN_CLONES void impl::scaleRows(float *x, int64_t ld, int64_t m,
                                      int64_t n, const float *factor) {
  scaleRowsBody(x, ld, m, n, factor);
}
void impl::scaleRows(double *x, int64_t ld, int64_t m, int64_t n,
                     const double *factor) {
  scaleRowsBody(x, ld, m, n, factor);
}

//===----------------------------------------------------------------------===//
// Scores
//===----------------------------------------------------------------------===//

template <typename T>
void impl::scoreBlock(const AttentionPlan &plan, const AttentionHeads &heads,
                      int64_t head, int64_t row, int64_t first, int64_t last,
                      const T *q, const T *k, T *s, int64_t ld) {
  const int64_t nh = heads.heads, nkv = heads.kvHeads, d = heads.headDim;
  const int64_t cols = plan.shape.cols;
  int64_t kvHead = head / (nh / nkv);
  int64_t m = tileRows(plan, row), n = spanKeys(plan, first, last);
  int64_t q0 = row * plan.shape.rows, k0 = first * cols;
  gemm(false, true, m, n, d, static_cast<T>(heads.scale),
       q + (q0 * nh + head) * d, nh * d, k + (k0 * nkv + kvHead) * d, nkv * d,
       T(0), s, ld);
  for (int64_t c = first; c <= last; ++c) {
    int32_t ref = plan.ref(row, c);
    T *tile = s + (c - first) * cols;
    int64_t width = tileExtent(plan.kLen, cols, c);
    if (ref == kSkipTile)
      maskAll(tile, ld, m, width);
    else if (ref >= 0)
      maskTile(tile, ld, m, width, plan.bits(ref));
  }
  if (heads.alibiSlopes)
    addAlibi(s, ld, m, n, static_cast<T>(heads.alibiSlopes[head]),
             plan.qPos.data() + q0, plan.kPos.data() + k0);
}

template void impl::scoreBlock<float>(const AttentionPlan &,
                                      const AttentionHeads &, int64_t, int64_t,
                                      int64_t, int64_t, const float *,
                                      const float *, float *, int64_t);
template void impl::scoreBlock<double>(const AttentionPlan &,
                                       const AttentionHeads &, int64_t, int64_t,
                                       int64_t, int64_t, const double *,
                                       const double *, double *, int64_t);
