//===- Gemm.cpp - Row-major GEMMs of the host twin ------------------------===//
//
// Gemm's members as in kernels/lib/cuda/Gemm.cpp, with cpu::gemm (OpenBLAS,
// fp32) in place of cuBLASLt: per batch, A and B are widened from bf16, C is
// read in its type unless beta is 0 (cuBLAS then never reads it, so NaN
// there does not propagate), and the result is stored back rounded (bf16)
// or as is (fp32). The handle is a token; the workspace is allocated as the
// real one, so memory accounting matches.
//
//===----------------------------------------------------------------------===//

#include "mllm/kernels/cuda/Gemm.h"

#include "Twin.h"

#include "mllm/kernels/cpu/Gemm.h"

#include <algorithm>
#include <string>
#include <vector>

using namespace mllm::kernels;
using namespace mllm::kernels::cuda;

namespace {

char handleToken;

/// One stored row-major matrix of a (batched) product.
struct Operand {
  const char *name;
  int64_t rows, cols, ld, stride;

  /// Elements from the first to one past the last it touches.
  int64_t extent(int64_t batch) const {
    if (rows == 0 || cols == 0)
      return 0;
    return (batch - 1) * stride + (rows - 1) * ld + cols;
  }
  Status check(const void *p, int64_t batch, size_t elementBytes) const {
    if (cols > 0 && ld < cols)
      return Status::error(std::string("Gemm::run: ld") + name + " = " +
                           std::to_string(ld) + " is below the " +
                           std::to_string(cols) +
                           " columns of its stored rows "
                           "(cuBLASLt: CUBLAS_STATUS_INVALID_VALUE)");
    return twin::checkArg("Gemm::run", name, p, extent(batch), elementBytes);
  }
};

template <typename T>
float widen(T v) {
  return static_cast<float>(v);
}
template <>
float widen(__nv_bfloat16 v) {
  return __bfloat162float(v);
}

template <typename T>
void store(float v, T *out) {
  *out = v;
}
template <>
void store(float v, __nv_bfloat16 *out) {
  *out = __float2bfloat16(v);
}

/// A stored matrix as contiguous floats (leading dimension = cols).
template <typename T>
std::vector<float> gather(const T *p, const Operand &o) {
  std::vector<float> out(static_cast<size_t>(o.rows * o.cols));
  for (int64_t r = 0; r < o.rows; ++r)
    for (int64_t c = 0; c < o.cols; ++c)
      out[r * o.cols + c] = widen(p[r * o.ld + c]);
  return out;
}

template <typename C>
Status product(const GemmShape &s, float alpha, const __nv_bfloat16 *a,
               const __nv_bfloat16 *b, float beta, C *c) {
  const Operand oa{"a", s.transA ? s.k : s.m, s.transA ? s.m : s.k, s.lda,
                   s.strideA};
  const Operand ob{"b", s.transB ? s.n : s.k, s.transB ? s.k : s.n, s.ldb,
                   s.strideB};
  const Operand oc{"c", s.m, s.n, s.ldc, s.strideC};
  MLLM_STATUS_TRY(oa.check(a, s.batch, sizeof(*a)));
  MLLM_STATUS_TRY(ob.check(b, s.batch, sizeof(*b)));
  MLLM_STATUS_TRY(oc.check(c, s.batch, sizeof(*c)));
  for (int64_t i = 0; i < s.batch; ++i) {
    std::vector<float> fa = gather(a + i * s.strideA, oa);
    std::vector<float> fb = gather(b + i * s.strideB, ob);
    C *ci = c + i * s.strideC;
    std::vector<float> fc =
        beta == 0.0f ? std::vector<float>(s.m * s.n, 0.0f) : gather(ci, oc);
    cpu::gemm<float>(s.transA, s.transB, s.m, s.n, s.k, alpha, fa.data(),
                     oa.cols, fb.data(), ob.cols, beta, fc.data(), s.n);
    for (int64_t r = 0; r < s.m; ++r)
      for (int64_t col = 0; col < s.n; ++col)
        store(fc[r * s.n + col], ci + r * s.ldc + col);
  }
  return Status();
}

} // namespace

Gemm::~Gemm() {
  if (workspace)
    cudaFree(workspace);
}

Status Gemm::init(size_t bytes) {
  if (!handle)
    handle = reinterpret_cast<cublasLtHandle_t>(&handleToken);
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
  MLLM_STATUS_TRY(twin::checkStream("Gemm::run", stream));
  MLLM_STATUS_TRY(
      twin::checkSizes("Gemm::run", {s.m, s.n, s.k, s.lda, s.ldb, s.ldc,
                                     s.strideA, s.strideB, s.strideC}));
  if (s.m == 0 || s.n == 0)
    return Status();
  // As the real wrapper, which computes no product for k = 0.
  if (s.k == 0 && beta != 0.0f && beta != 1.0f)
    return Status::error("Gemm::run: k = 0 with beta " + std::to_string(beta) +
                         " (only 0 and 1 are supported without a product)");
  // As the real wrapper: a batch below 2 is one product.
  GemmShape one = s;
  one.batch = std::max<int64_t>(1, s.batch);
  const auto *ab = static_cast<const __nv_bfloat16 *>(a);
  const auto *bb = static_cast<const __nv_bfloat16 *>(b);
  if (cType == CUDA_R_16BF)
    return product(one, alpha, ab, bb, beta, static_cast<__nv_bfloat16 *>(c));
  return product(one, alpha, ab, bb, beta, static_cast<float *>(c));
}
