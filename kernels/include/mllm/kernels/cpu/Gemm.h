//===- Gemm.h - Row-major GEMM over OpenBLAS --------------------*- C++ -*-===//
//
// The one place the CPU kernels call BLAS: C = alpha * op(A) * op(B) +
// beta * C on row-major matrices, for float (cblas_sgemm) and double
// (cblas_dgemm). Linear layers, im2col convolutions and patch embeddings are
// all built on it.
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_KERNELS_CPU_GEMM_H
#define MLLM_KERNELS_CPU_GEMM_H

#include <cstdint>

namespace mllm {
namespace kernels {
namespace cpu {

/// C[m, n] = alpha * op(A)[m, k] * op(B)[k, n] + beta * C, row-major, with
/// op(X) = X^T when the flag is set. lda/ldb/ldc are the row strides of the
/// matrices as stored. beta == 0 overwrites C (NaNs in C do not propagate).
template <typename T>
void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k, T alpha,
          const T *a, int64_t lda, const T *b, int64_t ldb, T beta, T *c,
          int64_t ldc);

} // namespace cpu
} // namespace kernels
} // namespace mllm

#endif // MLLM_KERNELS_CPU_GEMM_H
