//===- Norm.cu - RMSNorm, LayerNorm, RoPE and column sums on the GPU ------===//
//
// One block per token for the row statistics (fixed-order block sums in
// fp32), and the weight gradients as a two-stage column sum: per chunk of
// tokens, then over the chunks in order. sumRows (bias and position-table
// gradients) is the same column sum without the norm. No atomics anywhere.
//
//===----------------------------------------------------------------------===//

#include "mllm/kernels/cuda/Layers.h"

#include "Reduce.cuh"

#include <algorithm>
#include <string>

using namespace mllm::kernels;
using namespace mllm::kernels::cuda;
using namespace mllm::kernels::cuda::dev;

namespace {

constexpr int kThreads = 256;
constexpr int kChunk = 128; // tokens per partial column sum

__device__ inline float f(bf16 v) { return __bfloat162float(v); }
__device__ inline float weight(const bf16 *w, int64_t d) {
  return w ? f(w[d]) : 1.0f;
}

__global__ void rmsForwardKernel(const bf16 *x, const bf16 *w, bf16 *y,
                                 float *rstd, int64_t dim, float eps) {
  __shared__ float scratch[32];
  const bf16 *row = x + blockIdx.x * dim;
  float ss = 0.0f;
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x)
    ss += f(row[d]) * f(row[d]);
  ss = blockReduce(ss, scratch);
  const float r = 1.0f / sqrtf(ss / static_cast<float>(dim) + eps);
  if (rstd && threadIdx.x == 0)
    rstd[blockIdx.x] = r;
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x)
    y[blockIdx.x * dim + d] = __float2bfloat16(f(row[d]) * r * weight(w, d));
}

__global__ void lnForwardKernel(const bf16 *x, const bf16 *w, const bf16 *b,
                                bf16 *y, float *mean, float *rstd, int64_t dim,
                                float eps) {
  __shared__ float scratch[32];
  const bf16 *row = x + blockIdx.x * dim;
  float sum = 0.0f;
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x)
    sum += f(row[d]);
  const float mu = blockReduce(sum, scratch) / static_cast<float>(dim);
  float var = 0.0f;
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x)
    var += (f(row[d]) - mu) * (f(row[d]) - mu);
  var = blockReduce(var, scratch) / static_cast<float>(dim);
  const float r = 1.0f / sqrtf(var + eps);
  if (threadIdx.x == 0) {
    if (mean)
      mean[blockIdx.x] = mu;
    if (rstd)
      rstd[blockIdx.x] = r;
  }
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x)
    y[blockIdx.x * dim + d] = __float2bfloat16(
        (f(row[d]) - mu) * r * weight(w, d) + (b ? f(b[d]) : 0.0f));
}

/// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * w and
/// xhat = (x - mean) * rstd; RMSNorm is the case mean = 0 without mean(g).
__global__ void normBackwardKernel(const bf16 *dy, const bf16 *x, const bf16 *w,
                                   const float *mean, const float *rstd,
                                   bf16 *dx, int64_t dim) {
  __shared__ float scratch[32];
  const int64_t base = blockIdx.x * dim;
  const float mu = mean ? mean[blockIdx.x] : 0.0f, r = rstd[blockIdx.x];
  float gSum = 0.0f, gxSum = 0.0f;
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) {
    float g = f(dy[base + d]) * weight(w, d);
    gSum += g;
    gxSum += g * (f(x[base + d]) - mu) * r;
  }
  const float n = static_cast<float>(dim);
  const float gMean = mean ? blockReduce(gSum, scratch) / n : 0.0f;
  const float gxMean = blockReduce(gxSum, scratch) / n;
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) {
    float g = f(dy[base + d]) * weight(w, d);
    float xhat = (f(x[base + d]) - mu) * r;
    dx[base + d] = __float2bfloat16(r * (g - gMean - xhat * gxMean));
  }
}

/// partial[chunk][c] = sum over the chunk's tokens of dy * xhat (and of dy
/// for LayerNorm's bias).
__global__ void normWeightPartials(const bf16 *dy, const bf16 *x,
                                   const float *mean, const float *rstd,
                                   int64_t tokens, int64_t dim, float *dwPart,
                                   float *dbPart) {
  const int64_t c = blockIdx.y * int64_t(blockDim.x) + threadIdx.x;
  if (c >= dim)
    return;
  const int64_t t0 = blockIdx.x * int64_t(kChunk);
  const int64_t t1 = min(tokens, t0 + kChunk);
  float dw = 0.0f, db = 0.0f;
  for (int64_t t = t0; t < t1; ++t) {
    float g = f(dy[t * dim + c]);
    dw += g * (f(x[t * dim + c]) - (mean ? mean[t] : 0.0f)) * rstd[t];
    db += g;
  }
  dwPart[blockIdx.x * dim + c] = dw;
  if (dbPart)
    dbPart[blockIdx.x * dim + c] = db;
}

/// Column sums of x[rows, cols] over chunks of `chunk` rows (blockIdx.y):
/// into part[chunk][c], or added to out[c] when there is one chunk.
__global__ void columnSumPartials(const bf16 *x, int64_t rows, int64_t cols,
                                  int64_t chunk, float *part, float *out) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= cols)
    return;
  const int64_t r0 = blockIdx.y * chunk, r1 = min(rows, r0 + chunk);
  float sum = 0.0f;
  for (int64_t r = r0; r < r1; ++r)
    sum += f(x[r * cols + c]);
  if (out)
    out[c] += sum;
  else
    part[blockIdx.y * cols + c] = sum;
}

Status normWeightGrads(const bf16 *dy, const bf16 *x, const float *mean,
                       const float *rstd, float *dw, float *db, int64_t tokens,
                       int64_t dim, cudaStream_t stream) {
  if ((!dw && !db) || tokens == 0)
    return Status();
  const int64_t chunks = (tokens + kChunk - 1) / kChunk;
  float *part = nullptr;
  MLLM_CUDA_TRY(cudaMallocAsync(reinterpret_cast<void **>(&part),
                                2 * chunks * dim * sizeof(float), stream));
  const unsigned cols = static_cast<unsigned>((dim + kThreads - 1) / kThreads);
  normWeightPartials<<<dim3(static_cast<unsigned>(chunks), cols), kThreads, 0,
                       stream>>>(dy, x, mean, rstd, tokens, dim, part,
                                 db ? part + chunks * dim : nullptr);
  if (dw)
    dev::sumChunks<<<cols, kThreads, 0, stream>>>(part, chunks, dim, dw);
  if (db)
    dev::sumChunks<<<cols, kThreads, 0, stream>>>(part + chunks * dim, chunks,
                                                  dim, db);
  cudaError_t launched = cudaGetLastError();
  MLLM_CUDA_TRY(cudaFreeAsync(part, stream));
  MLLM_CUDA_TRY(launched);
  return Status();
}

/// One thread per (token, head, pair i): the angle in double, as the CPU
/// kernel (float angles are off by ~1e-2 rad at 128k positions).
__global__ void ropeKernel(const bf16 *x, bf16 *y, const int64_t *positions,
                           int64_t tokens, int64_t heads, int64_t headDim,
                           double theta, double sign) {
  const int64_t half = headDim / 2;
  const int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (e >= tokens * heads * half)
    return;
  const int64_t i = e % half, th = e / half, t = th / heads;
  const double inv =
      pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(headDim));
  double s, c;
  sincos(static_cast<double>(positions[t]) * inv, &s, &c);
  const float cs = static_cast<float>(c), sn = static_cast<float>(sign * s);
  const int64_t base = th * headDim;
  const float x1 = f(x[base + i]), x2 = f(x[base + i + half]);
  y[base + i] = __float2bfloat16(x1 * cs - x2 * sn);
  y[base + i + half] = __float2bfloat16(x2 * cs + x1 * sn);
}

unsigned blocks(int64_t n) {
  return static_cast<unsigned>((n + kThreads - 1) / kThreads);
}

Status rope(const bf16 *x, bf16 *y, const int64_t *positions, int64_t tokens,
            int64_t heads, int64_t headDim, double theta, double sign,
            cudaStream_t stream) {
  if (headDim % 2 != 0)
    return Status::error("RoPE needs an even head dimension");
  const int64_t n = tokens * heads * (headDim / 2);
  if (n == 0)
    return Status();
  ropeKernel<<<blocks(n), kThreads, 0, stream>>>(x, y, positions, tokens, heads,
                                                 headDim, theta, sign);
  MLLM_CUDA_LAUNCHED();
  return Status();
}

} // namespace

Status cuda::rmsNormForward(const bf16 *x, const bf16 *w, bf16 *y, float *rstd,
                            int64_t tokens, int64_t dim, float eps,
                            cudaStream_t stream) {
  if (tokens > 0) {
    rmsForwardKernel<<<static_cast<unsigned>(tokens), kThreads, 0, stream>>>(
        x, w, y, rstd, dim, eps);
    MLLM_CUDA_LAUNCHED();
  }
  return Status();
}

Status cuda::rmsNormBackward(const bf16 *dy, const bf16 *x, const bf16 *w,
                             const float *rstd, bf16 *dx, float *dw,
                             int64_t tokens, int64_t dim, cudaStream_t stream) {
  if (tokens > 0) {
    normBackwardKernel<<<static_cast<unsigned>(tokens), kThreads, 0, stream>>>(
        dy, x, w, nullptr, rstd, dx, dim);
    MLLM_CUDA_LAUNCHED();
  }
  return normWeightGrads(dy, x, nullptr, rstd, dw, nullptr, tokens, dim,
                         stream);
}

Status cuda::layerNormForward(const bf16 *x, const bf16 *w, const bf16 *b,
                              bf16 *y, float *mean, float *rstd, int64_t tokens,
                              int64_t dim, float eps, cudaStream_t stream) {
  if (tokens > 0) {
    lnForwardKernel<<<static_cast<unsigned>(tokens), kThreads, 0, stream>>>(
        x, w, b, y, mean, rstd, dim, eps);
    MLLM_CUDA_LAUNCHED();
  }
  return Status();
}

Status cuda::layerNormBackward(const bf16 *dy, const bf16 *x, const bf16 *w,
                               const float *mean, const float *rstd, bf16 *dx,
                               float *dw, float *db, int64_t tokens,
                               int64_t dim, cudaStream_t stream) {
  if (!mean)
    return Status::error("layerNormBackward needs the saved mean");
  if (tokens > 0) {
    normBackwardKernel<<<static_cast<unsigned>(tokens), kThreads, 0, stream>>>(
        dy, x, w, mean, rstd, dx, dim);
    MLLM_CUDA_LAUNCHED();
  }
  return normWeightGrads(dy, x, mean, rstd, dw, db, tokens, dim, stream);
}

Status cuda::sumRows(const bf16 *dx, float *dv, int64_t rows, int64_t cols,
                     cudaStream_t stream) {
  if (rows < 0 || cols < 0)
    return Status::error("sumRows: negative size " +
                         std::to_string(rows < 0 ? rows : cols));
  if (rows == 0 || cols == 0)
    return Status();
  // Chunks on the grid's y (at most 65535 of them), columns on its x.
  constexpr int64_t kMaxChunks = 65535;
  const int64_t chunk =
      std::max<int64_t>(kChunk, (rows + kMaxChunks - 1) / kMaxChunks);
  const int64_t chunks = (rows + chunk - 1) / chunk;
  const dim3 grid(blocks(cols), static_cast<unsigned>(chunks));
  if (chunks == 1) {
    columnSumPartials<<<grid, kThreads, 0, stream>>>(dx, rows, cols, chunk,
                                                     nullptr, dv);
    MLLM_CUDA_LAUNCHED();
    return Status();
  }
  float *part = nullptr;
  MLLM_CUDA_TRY(cudaMallocAsync(reinterpret_cast<void **>(&part),
                                chunks * cols * sizeof(float), stream));
  columnSumPartials<<<grid, kThreads, 0, stream>>>(dx, rows, cols, chunk, part,
                                                   nullptr);
  dev::sumChunks<<<blocks(cols), kThreads, 0, stream>>>(part, chunks, cols, dv);
  cudaError_t launched = cudaGetLastError();
  MLLM_CUDA_TRY(cudaFreeAsync(part, stream));
  MLLM_CUDA_TRY(launched);
  return Status();
}

Status cuda::ropeForward(const bf16 *x, bf16 *y, const int64_t *positions,
                         int64_t tokens, int64_t heads, int64_t headDim,
                         double theta, cudaStream_t stream) {
  return rope(x, y, positions, tokens, heads, headDim, theta, 1.0, stream);
}

Status cuda::ropeBackward(const bf16 *dy, bf16 *dx, const int64_t *positions,
                          int64_t tokens, int64_t heads, int64_t headDim,
                          double theta, cudaStream_t stream) {
  return rope(dy, dx, positions, tokens, heads, headDim, theta, -1.0, stream);
}

__global__ void dev::sumChunks(const float *part, int64_t chunks, int64_t n,
                               float *out) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= n)
    return;
  float sum = 0.0f;
  for (int64_t k = 0; k < chunks; ++k)
    sum += part[k * n + i];
  out[i] += sum;
}
