//===- Gemm.cpp - Row-major GEMMs through cuBLASLt ------------------------===//
//
// Descriptors are built per call (a few microseconds, against GEMMs of
// milliseconds) and the first heuristic answer is taken: the thin wrapper
// the issue asks for. A cache keyed by shape would be the next step.
//
//===----------------------------------------------------------------------===//

#include "mllm/kernels/cuda/Gemm.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

using namespace mllm::kernels;
using namespace mllm::kernels::cuda;

namespace {

/// Destroys whatever cuBLASLt descriptors were created, on every path.
struct Descriptors {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  ~Descriptors() {
    if (pref)
      cublasLtMatmulPreferenceDestroy(pref);
    for (cublasLtMatrixLayout_t l : {a, b, c})
      if (l)
        cublasLtMatrixLayoutDestroy(l);
    if (op)
      cublasLtMatmulDescDestroy(op);
  }
};

/// A stored row-major matrix of `rows` x `cols` is the column-major matrix
/// cols x rows with the same leading dimension.
Status layout(cublasLtMatrixLayout_t &out, cudaDataType_t type, int64_t rows,
              int64_t cols, int64_t ld, int64_t batch, int64_t stride) {
  MLLM_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&out, type, cols, rows, ld));
  if (batch > 1) {
    int count = static_cast<int>(batch);
    MLLM_CUBLAS_TRY(cublasLtMatrixLayoutSetAttribute(
        out, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
    MLLM_CUBLAS_TRY(cublasLtMatrixLayoutSetAttribute(
        out, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride,
        sizeof(stride)));
  }
  return Status();
}

/// The largest power of two up to 256 that every batch's pointer is a
/// multiple of: cuBLASLt assumes 256 unless told, and may pick an algorithm
/// that needs it (the runtime's arenas align to 64).
uint32_t alignmentOf(const void *p, int64_t batch, int64_t stride,
                     size_t elemBytes) {
  auto bits = reinterpret_cast<uintptr_t>(p);
  if (batch > 1)
    bits |= static_cast<uintptr_t>(stride) * elemBytes;
  uint32_t a = 256;
  while (a > 1 && bits % a != 0)
    a /= 2;
  return a;
}

/// C = beta * C without a product (k = 0), as BLAS defines it.
Status scaleOnly(const GemmShape &s, float beta, void *c, size_t elemBytes,
                 cudaStream_t stream) {
  if (beta == 1.0f)
    return Status();
  if (beta != 0.0f)
    return Status::error("Gemm::run: k = 0 with beta " + std::to_string(beta) +
                         " (only 0 and 1 are supported without a product)");
  for (int64_t i = 0; i < std::max<int64_t>(1, s.batch); ++i)
    MLLM_CUDA_TRY(
        cudaMemset2DAsync(static_cast<char *>(c) + i * s.strideC * elemBytes,
                          s.ldc * elemBytes, 0, s.n * elemBytes, s.m, stream));
  return Status();
}

} // namespace

Gemm::~Gemm() {
  if (workspace)
    cudaFree(workspace);
  if (handle)
    cublasLtDestroy(handle);
}

Status Gemm::init(size_t bytes) {
  if (!handle)
    MLLM_CUBLAS_TRY(cublasLtCreate(&handle));
  if (!workspace && bytes) {
    MLLM_CUDA_TRY(cudaMalloc(&workspace, bytes));
    workspaceBytes = bytes;
  }
  return Status();
}

Status Gemm::run(const GemmShape &s, float alpha, const __nv_bfloat16 *a,
                 const __nv_bfloat16 *b, float beta, __nv_bfloat16 *c,
                 cudaStream_t stream) {
  return matmul(s, alpha, a, b, beta, c, CUDA_R_16BF, stream);
}

Status Gemm::run(const GemmShape &s, float alpha, const __nv_bfloat16 *a,
                 const __nv_bfloat16 *b, float beta, float *c,
                 cudaStream_t stream) {
  return matmul(s, alpha, a, b, beta, c, CUDA_R_32F, stream);
}

Status Gemm::matmul(const GemmShape &s, float alpha, const void *a,
                    const void *b, float beta, void *c, cudaDataType_t cType,
                    cudaStream_t stream) {
  if (!handle)
    return Status::error("Gemm::run before Gemm::init");
  if (s.m == 0 || s.n == 0)
    return Status();
  const size_t cBytes = cType == CUDA_R_32F ? sizeof(float) : 2;
  if (s.k == 0)
    return scaleOnly(s, beta, c, cBytes, stream);
  Descriptors d;
  MLLM_CUBLAS_TRY(
      cublasLtMatmulDescCreate(&d.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  // Column-major C^T = op(B)^T op(A)^T: B is cuBLASLt's first operand.
  cublasOperation_t opFirst = s.transB ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasOperation_t opSecond = s.transA ? CUBLAS_OP_T : CUBLAS_OP_N;
  MLLM_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(
      d.op, CUBLASLT_MATMUL_DESC_TRANSA, &opFirst, sizeof(opFirst)));
  MLLM_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(
      d.op, CUBLASLT_MATMUL_DESC_TRANSB, &opSecond, sizeof(opSecond)));
  // Stored shapes (row-major): B is k x n (n x k when transposed), A is
  // m x k (k x m), C is m x n.
  MLLM_STATUS_TRY(layout(d.a, CUDA_R_16BF, s.transB ? s.n : s.k,
                         s.transB ? s.k : s.n, s.ldb, s.batch, s.strideB));
  MLLM_STATUS_TRY(layout(d.b, CUDA_R_16BF, s.transA ? s.k : s.m,
                         s.transA ? s.m : s.k, s.lda, s.batch, s.strideA));
  MLLM_STATUS_TRY(layout(d.c, cType, s.m, s.n, s.ldc, s.batch, s.strideC));
  MLLM_CUBLAS_TRY(cublasLtMatmulPreferenceCreate(&d.pref));
  MLLM_CUBLAS_TRY(cublasLtMatmulPreferenceSetAttribute(
      d.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspaceBytes,
      sizeof(workspaceBytes)));
  // cuBLASLt's A is our B (see above).
  const std::pair<cublasLtMatmulPreferenceAttributes_t, uint32_t> aligned[] = {
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
       alignmentOf(b, s.batch, s.strideB, 2)},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
       alignmentOf(a, s.batch, s.strideA, 2)},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
       alignmentOf(c, s.batch, s.strideC, cBytes)},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
       alignmentOf(c, s.batch, s.strideC, cBytes)}};
  for (const auto &[attribute, bytes] : aligned)
    MLLM_CUBLAS_TRY(cublasLtMatmulPreferenceSetAttribute(
        d.pref, attribute, &bytes, sizeof(bytes)));
  cublasLtMatmulHeuristicResult_t best = {};
  int found = 0;
  MLLM_CUBLAS_TRY(cublasLtMatmulAlgoGetHeuristic(
      handle, d.op, d.a, d.b, d.c, d.c, d.pref, 1, &best, &found));
  if (found == 0)
    return Status::error("cuBLASLt has no algorithm for this GEMM");
  MLLM_CUBLAS_TRY(cublasLtMatmul(handle, d.op, &alpha, b, d.a, a, d.b, &beta, c,
                                 d.c, c, d.c, &best.algo, workspace,
                                 workspaceBytes, stream));
  return Status();
}
