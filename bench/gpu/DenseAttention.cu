//===- DenseAttention.cu - Element-wise kernels of the dense reference ----===//

#include "DenseAttention.h"

#include "mllm/kernels/OnlineSoftmax.h"

using namespace mllm;
using namespace mllm::bench;
using namespace mllm::kernels;

namespace {

constexpr int kThreads = 256;

__device__ float blockReduce(float v, float *scratch, bool max) {
  for (int o = 16; o > 0; o /= 2) {
    float other = __shfl_xor_sync(0xffffffffu, v, o);
    v = max ? fmaxf(v, other) : v + other;
  }
  __syncthreads();
  if (threadIdx.x % 32 == 0)
    scratch[threadIdx.x / 32] = v;
  __syncthreads();
  if (threadIdx.x < 32) {
    v = threadIdx.x < kThreads / 32 ? scratch[threadIdx.x]
                                    : (max ? -INFINITY : 0.0f);
    for (int o = 16; o > 0; o /= 2) {
      float other = __shfl_xor_sync(0xffffffffu, v, o);
      v = max ? fmaxf(v, other) : v + other;
    }
    if (threadIdx.x == 0)
      scratch[0] = v;
  }
  __syncthreads();
  return scratch[0];
}

/// One block per (head, row): two passes over the row's scores.
__global__ void softmaxKernel(const float *s, __nv_bfloat16 *p, float *lse,
                              int64_t rows, int64_t c0, float scale,
                              MaskPolicy policy, DenseTokens t) {
  __shared__ float scratch[32];
  const int64_t hr = blockIdx.x, h = hr / rows, q = c0 + hr % rows;
  const float *row = s + hr * t.len;
  __nv_bfloat16 *out = p + hr * t.len;
  auto score = [&](int64_t k) {
    return attend(policy, t.words[q], t.segs[q], t.pos[q], t.words[k],
                  t.segs[k], t.pos[k])
               ? row[k] * scale
               : negativeInfinity<float>();
  };
  float m = negativeInfinity<float>();
  for (int64_t k = threadIdx.x; k < t.len; k += blockDim.x)
    m = fmaxf(m, score(k));
  m = blockReduce(m, scratch, true);
  float sum = 0.0f;
  for (int64_t k = threadIdx.x; k < t.len; k += blockDim.x)
    sum += softmaxProb(score(k), m);
  sum = blockReduce(sum, scratch, false);
  const float norm = softmaxNormalizer(sum);
  for (int64_t k = threadIdx.x; k < t.len; k += blockDim.x)
    out[k] = __float2bfloat16(softmaxProb(score(k), m) * norm);
  if (threadIdx.x == 0)
    lse[h * t.len + q] = softmaxLse(m, sum);
}

__global__ void deltaKernel(const __nv_bfloat16 *o, const __nv_bfloat16 *dO,
                            float *delta, int heads, int64_t rows, int64_t c0,
                            int dim) {
  const int64_t w = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) / 32;
  if (w >= heads * rows)
    return;
  const int64_t h = w / rows, i = w % rows;
  const int64_t base = ((c0 + i) * heads + h) * dim;
  float sum = 0.0f;
  for (int d = threadIdx.x % 32; d < dim; d += 32)
    sum += __bfloat162float(o[base + d]) * __bfloat162float(dO[base + d]);
  for (int off = 16; off > 0; off /= 2)
    sum += __shfl_xor_sync(0xffffffffu, sum, off);
  if (threadIdx.x % 32 == 0)
    delta[w] = sum;
}

__global__ void gradKernel(const __nv_bfloat16 *p, const float *dp,
                           const float *delta, __nv_bfloat16 *ds,
                           int64_t elements, int64_t len) {
  const int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (e < elements)
    ds[e] = __float2bfloat16(
        softmaxGrad(__bfloat162float(p[e]), dp[e], delta[e / len]));
}

__global__ void fillKernel(__nv_bfloat16 *x, int64_t n, uint64_t seed) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= n)
    return;
  uint64_t z = seed + 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(i + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  x[i] = __float2bfloat16(static_cast<float>(z >> 40) * 0x1p-23f - 1.0f);
}

unsigned blocks(int64_t n) {
  return static_cast<unsigned>((n + kThreads - 1) / kThreads);
}

} // namespace

cudaError_t bench::denseSoftmax(const float *s, __nv_bfloat16 *p, float *lse,
                                int heads, int64_t rows, int64_t c0,
                                float scale, MaskPolicy policy,
                                DenseTokens tokens, cudaStream_t stream) {
  softmaxKernel<<<static_cast<unsigned>(heads * rows), kThreads, 0, stream>>>(
      s, p, lse, rows, c0, scale, policy, tokens);
  return cudaGetLastError();
}

cudaError_t bench::denseDelta(const __nv_bfloat16 *o, const __nv_bfloat16 *dO,
                              float *delta, int heads, int64_t rows, int64_t c0,
                              int dim, cudaStream_t stream) {
  deltaKernel<<<blocks(heads * rows * 32), kThreads, 0, stream>>>(
      o, dO, delta, heads, rows, c0, dim);
  return cudaGetLastError();
}

cudaError_t bench::denseGrad(const __nv_bfloat16 *p, const float *dp,
                             const float *delta, __nv_bfloat16 *ds, int heads,
                             int64_t rows, int64_t len, cudaStream_t stream) {
  const int64_t n = heads * rows * len;
  gradKernel<<<blocks(n), kThreads, 0, stream>>>(p, dp, delta, ds, n, len);
  return cudaGetLastError();
}

cudaError_t bench::fillRandom(__nv_bfloat16 *x, int64_t n, uint64_t seed,
                              cudaStream_t stream) {
  if (n > 0)
    fillKernel<<<blocks(n), kThreads, 0, stream>>>(x, n, seed);
  return cudaGetLastError();
}
