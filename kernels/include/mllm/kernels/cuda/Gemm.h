//===- Gemm.h - Row-major GEMMs through cuBLASLt ----------------*- C++ -*-===//
//
// The GPU counterpart of cpu/Gemm.h: C = alpha * op(A) op(B) + beta * C on
// row-major matrices, A and B in bf16, C in bf16 (activations) or fp32
// (weight gradients accumulated with beta = 1), fp32 accumulation. A thin
// wrapper: cuBLASLt is column-major, so the call computes C^T = op(B)^T
// op(A)^T, which is the same memory. Optionally strided-batched (one
// matrix product per head, for the dense attention reference).
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_KERNELS_CUDA_GEMM_H
#define MLLM_KERNELS_CUDA_GEMM_H

#include "mllm/kernels/cuda/Status.h"

#include <cuda_bf16.h>

#include <cstdint>

namespace mllm {
namespace kernels {
namespace cuda {

/// Sizes and strides of one (batched) product; strides are in elements.
struct GemmShape {
  bool transA = false, transB = false;
  int64_t m = 0, n = 0, k = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;
  int64_t batch = 1, strideA = 0, strideB = 0, strideC = 0;
};

/// One cuBLASLt handle and its workspace; use from one thread at a time.
class Gemm {
public:
  Gemm() = default;
  ~Gemm();
  Gemm(const Gemm &) = delete;
  Gemm &operator=(const Gemm &) = delete;

  /// Creates the handle and a workspace of `workspaceBytes` (32 MiB is
  /// what cuBLAS recommends for Hopper).
  Status init(size_t workspaceBytes = size_t(32) << 20);

  Status run(const GemmShape &shape, float alpha, const __nv_bfloat16 *a,
             const __nv_bfloat16 *b, float beta, __nv_bfloat16 *c,
             cudaStream_t stream);
  Status run(const GemmShape &shape, float alpha, const __nv_bfloat16 *a,
             const __nv_bfloat16 *b, float beta, float *c, cudaStream_t stream);

private:
  Status matmul(const GemmShape &shape, float alpha, const void *a,
                const void *b, float beta, void *c, cudaDataType_t cType,
                cudaStream_t stream);

  cublasLtHandle_t handle = nullptr;
  void *workspace = nullptr;
  size_t workspaceBytes = 0;
};

} // namespace cuda
} // namespace kernels
} // namespace mllm

#endif // MLLM_KERNELS_CUDA_GEMM_H
