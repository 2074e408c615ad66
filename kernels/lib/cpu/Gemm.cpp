//===- Gemm.cpp - Row-major GEMM over OpenBLAS ----------------------------===//
//
// Thin wrapper over cblas_{s,d}gemm. OpenBLAS is built with 32-bit ints, so
// the sizes are checked to fit.
//
//===----------------------------------------------------------------------===//

#include "mllm/kernels/cpu/Gemm.h"

#include <cassert>
#include <cblas.h>
#include <climits>

using namespace mllm::kernels::cpu;

static blasint toBlas(int64_t v) {
  assert(v >= 0 && v <= INT_MAX && "size does not fit OpenBLAS's int");
  return static_cast<blasint>(v);
}

static void blasGemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, blasint m,
                     blasint n, blasint k, float alpha, const float *a,
                     blasint lda, const float *b, blasint ldb, float beta,
                     float *c, blasint ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c,
              ldc);
}

static void blasGemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, blasint m,
                     blasint n, blasint k, double alpha, const double *a,
                     blasint lda, const double *b, blasint ldb, double beta,
                     double *c, blasint ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c,
              ldc);
}

template <typename T>
void mllm::kernels::cpu::gemm(bool transA, bool transB, int64_t m, int64_t n,
                              int64_t k, T alpha, const T *a, int64_t lda,
                              const T *b, int64_t ldb, T beta, T *c,
                              int64_t ldc) {
  if (m == 0 || n == 0)
    return;
  if (k == 0) {
    // An empty product leaves beta * C. BLAS would too, but its natural
    // leading dimension is then 0, which cblas rejects (lda >= max(1, k)).
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j)
        c[i * ldc + j] = beta == T(0) ? T(0) : beta * c[i * ldc + j];
    return;
  }
  blasGemm(transA ? CblasTrans : CblasNoTrans,
           transB ? CblasTrans : CblasNoTrans, toBlas(m), toBlas(n), toBlas(k),
           alpha, a, toBlas(lda), b, toBlas(ldb), beta, c, toBlas(ldc));
}

template void mllm::kernels::cpu::gemm<float>(bool, bool, int64_t, int64_t,
                                              int64_t, float, const float *,
                                              int64_t, const float *, int64_t,
                                              float, float *, int64_t);
template void mllm::kernels::cpu::gemm<double>(bool, bool, int64_t, int64_t,
                                               int64_t, double, const double *,
                                               int64_t, const double *, int64_t,
                                               double, double *, int64_t);
