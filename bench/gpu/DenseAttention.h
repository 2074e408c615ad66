//===- DenseAttention.h - The dense reference of the GPU bench --*- C++ -*-===//
//
// What a dense masked attention costs on the same GPU: full S x S score
// blocks from cuBLASLt GEMMs (kernels/cuda/Gemm.h) and these element-wise
// kernels, in query chunks so that 128k tokens fit in memory. The mask is
// the same attend() predicate, evaluated for every pair; nothing is
// skipped. Bench code only.
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_BENCH_GPU_DENSEATTENTION_H
#define MLLM_BENCH_GPU_DENSEATTENTION_H

#include "mllm/kernels/Bitfield.h"

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace mllm {
namespace bench {

/// The whole sequence's tokens on the device (queries and keys alike).
struct DenseTokens {
  const uint64_t *words;
  const uint32_t *segs;
  const int64_t *pos;
  int64_t len;
};

/// Rows [c0, c0 + rows) of every head: p = softmax(scale * s) over the
/// allowed keys (0 elsewhere), lse[h * len + q] = its log-sum-exp. s is fp32
/// [heads, rows, len], p bf16 in the same layout.
cudaError_t denseSoftmax(const float *s, __nv_bfloat16 *p, float *lse,
                         int heads, int64_t rows, int64_t c0, float scale,
                         kernels::MaskPolicy policy, DenseTokens tokens,
                         cudaStream_t stream);

/// delta[h, i] = rowsum(dO * O) for rows [c0, c0 + rows); O and dO are
/// [len, heads, dim].
cudaError_t denseDelta(const __nv_bfloat16 *o, const __nv_bfloat16 *dO,
                       float *delta, int heads, int64_t rows, int64_t c0,
                       int dim, cudaStream_t stream);

/// ds = p * (dp - delta[h, i]) (bf16), all [heads, rows, len].
cudaError_t denseGrad(const __nv_bfloat16 *p, const float *dp,
                      const float *delta, __nv_bfloat16 *ds, int heads,
                      int64_t rows, int64_t len, cudaStream_t stream);

/// n bf16 values uniform in [-1, 1) from a counter-based hash of
/// (seed, index): inputs of any size without a host round trip.
cudaError_t fillRandom(__nv_bfloat16 *x, int64_t n, uint64_t seed,
                       cudaStream_t stream);

} // namespace bench
} // namespace mllm

#endif // MLLM_BENCH_GPU_DENSEATTENTION_H
