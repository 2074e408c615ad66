//===- Conv.cu - 1-D convolutions over token-major frames on the GPU ------===//
//
// The pieces of cpu/Conv.h a GPU executor needs around its GEMMs: im2col1d
// (a copy) and its adjoint col2im1d (one thread gathers each input element,
// adding the column entries that read it in ascending tap order, as the CPU
// kernel: the same bits), and the direct depthwise convolution of conformer
// blocks. Its weight gradient is a two-stage sum over chunks of frames, the
// chunks then added in order; the bias gradient is sumRows. No atomics.
//
//===----------------------------------------------------------------------===//

#include "Reduce.cuh"

#include "mllm/kernels/cuda/Layers.h"

#include <algorithm>
#include <initializer_list>
#include <string>

using namespace mllm::kernels;
using namespace mllm::kernels::cuda;

namespace {

constexpr int kThreads = 256;
constexpr int64_t kChunk = 128; // frames per partial weight-gradient sum

unsigned blocks(int64_t n) {
  return static_cast<unsigned>((n + kThreads - 1) / kThreads);
}

__device__ inline float f(bf16 v) { return __bfloat162float(v); }

/// The fields of a Conv1dShape the kernels read (its member functions are
/// host code).
struct ConvDims {
  int64_t frames, in, kernel, stride, padding, outFrames;
};

ConvDims dims(const cpu::Conv1dShape &s) {
  return {s.frames, s.inChannels, s.kernel, s.stride, s.padding, s.outFrames()};
}

/// One thread per column element: cols[(item, t), c * k + j] is
/// x[(item, t * s - p + j), c], or 0 outside the item's frames.
__global__ void im2colKernel(const bf16 *x, bf16 *cols, ConvDims d,
                             int64_t total) {
  const int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (e >= total)
    return;
  const int64_t j = e % d.kernel, c = (e / d.kernel) % d.in;
  const int64_t row = e / (d.kernel * d.in);
  const int64_t item = row / d.outFrames, t = row % d.outFrames;
  const int64_t frame = t * d.stride - d.padding + j;
  cols[e] = frame >= 0 && frame < d.frames
                ? x[(item * d.frames + frame) * d.in + c]
                : __float2bfloat16(0.0f);
}

/// One thread per input element: dx[(item, frame), c] adds, in ascending
/// tap j, the entries dcols[(item, t), c * k + j] with t * s = frame + p - j
/// (the j congruent to frame + p modulo s), starting from 0.
__global__ void col2imKernel(const bf16 *dcols, bf16 *dx, ConvDims d,
                             int64_t total) {
  const int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (e >= total)
    return;
  const int64_t c = e % d.in, row = e / d.in;
  const int64_t item = row / d.frames, frame = row % d.frames;
  const int64_t width = d.in * d.kernel, reach = frame + d.padding;
  const bf16 *base = dcols + item * d.outFrames * width + c * d.kernel;
  float sum = 0.0f;
  for (int64_t j = reach % d.stride; j < d.kernel && j <= reach;
       j += d.stride) {
    const int64_t t = (reach - j) / d.stride;
    if (t < d.outFrames)
      sum += f(base[t * width + j]);
  }
  dx[e] = __float2bfloat16(sum);
}

/// One thread per element of a depthwise convolution ('same' padding,
/// left = (k - 1) / 2): the forward y[(item, t), c] = b[c] + sum_j w[c, j]
/// x[(item, t - left + j), c], or with kInput the input gradient
/// dx[(item, t), c] = sum_j w[c, j] dy[(item, t + left - j), c]. Each
/// product and sum rounded to fp32 in the CPU kernel's order (no FMA).
template <bool kInput>
__global__ void depthwiseKernel(const bf16 *x, const bf16 *w, const bf16 *b,
                                bf16 *y, int64_t frames, int64_t channels,
                                int64_t kernel, int64_t total) {
  const int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (e >= total)
    return;
  const int64_t c = e % channels, row = e / channels;
  const int64_t t = row % frames, first = row - t;
  const int64_t left = (kernel - 1) / 2;
  float acc = b ? f(b[c]) : 0.0f;
  for (int64_t j = 0; j < kernel; ++j) {
    const int64_t src = kInput ? t + left - j : t - left + j;
    if (src < 0 || src >= frames)
      continue;
    acc = __fadd_rn(acc, __fmul_rn(f(w[c * kernel + j]),
                                   f(x[(first + src) * channels + c])));
  }
  y[e] = __float2bfloat16(acc);
}

/// The depthwise weight gradient over chunks of `chunk` rows of the items'
/// frames (blockIdx.y): thread (j, c), c fastest for coalesced reads, sums
/// dy[r, c] x[r - left + j, c] over its chunk's rows whose neighbour lies in
/// the same item, into part[chunk][c * k + j], or adds it to out[c * k + j]
/// when there is one chunk.
__global__ void depthwiseWeightPartials(const bf16 *x, const bf16 *dy,
                                        int64_t rows, int64_t frames,
                                        int64_t channels, int64_t kernel,
                                        int64_t chunk, float *part,
                                        float *out) {
  const int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (e >= channels * kernel)
    return;
  const int64_t c = e % channels, j = e / channels;
  const int64_t shift = j - (kernel - 1) / 2;
  const int64_t r0 = blockIdx.y * chunk, r1 = min(rows, r0 + chunk);
  float sum = 0.0f;
  for (int64_t r = r0, t = r0 % frames; r < r1; ++r) {
    const int64_t src = t + shift;
    if (src >= 0 && src < frames)
      sum += f(dy[r * channels + c]) * f(x[(r + shift) * channels + c]);
    if (++t == frames)
      t = 0;
  }
  const int64_t o = c * kernel + j;
  if (out)
    out[o] += sum;
  else
    part[blockIdx.y * channels * kernel + o] = sum;
}

Status checkConv(const char *kernel, const cpu::Conv1dShape &shape,
                 int64_t items) {
  if (std::string why = checkConv1dShape(shape); !why.empty())
    return Status::error(std::string(kernel) + ": " + why);
  if (items < 0)
    return Status::error(std::string(kernel) + ": negative size " +
                         std::to_string(items));
  return Status();
}

Status checkDepthwise(const char *kernel, int64_t frames, int64_t channels,
                      int64_t taps, int64_t items) {
  for (int64_t n : {frames, channels, items})
    if (n < 0)
      return Status::error(std::string(kernel) + ": negative size " +
                           std::to_string(n));
  if (taps < 1)
    return Status::error(std::string(kernel) + ": a kernel of " +
                         std::to_string(taps) + " taps is not positive");
  return Status();
}

} // namespace

Status cuda::im2col1d(const bf16 *x, bf16 *cols, const cpu::Conv1dShape &shape,
                      int64_t items, cudaStream_t stream) {
  MLLM_STATUS_TRY(checkConv("im2col1d", shape, items));
  const int64_t n = items * shape.outFrames() * shape.colsWidth();
  if (n > 0) {
    im2colKernel<<<blocks(n), kThreads, 0, stream>>>(x, cols, dims(shape), n);
    MLLM_CUDA_LAUNCHED();
  }
  return Status();
}

Status cuda::col2im1d(const bf16 *dcols, bf16 *dx,
                      const cpu::Conv1dShape &shape, int64_t items,
                      cudaStream_t stream) {
  MLLM_STATUS_TRY(checkConv("col2im1d", shape, items));
  const int64_t n = items * shape.frames * shape.inChannels;
  if (n > 0) {
    col2imKernel<<<blocks(n), kThreads, 0, stream>>>(dcols, dx, dims(shape), n);
    MLLM_CUDA_LAUNCHED();
  }
  return Status();
}

Status cuda::depthwiseConv1dForward(const bf16 *x, const bf16 *w, const bf16 *b,
                                    bf16 *y, int64_t frames, int64_t channels,
                                    int64_t kernel, int64_t items,
                                    cudaStream_t stream) {
  MLLM_STATUS_TRY(checkDepthwise("depthwiseConv1dForward", frames, channels,
                                 kernel, items));
  const int64_t n = items * frames * channels;
  if (n > 0) {
    depthwiseKernel<false><<<blocks(n), kThreads, 0, stream>>>(
        x, w, b, y, frames, channels, kernel, n);
    MLLM_CUDA_LAUNCHED();
  }
  return Status();
}

Status cuda::depthwiseConv1dBackwardInput(const bf16 *dy, const bf16 *w,
                                          bf16 *dx, int64_t frames,
                                          int64_t channels, int64_t kernel,
                                          int64_t items, cudaStream_t stream) {
  MLLM_STATUS_TRY(checkDepthwise("depthwiseConv1dBackwardInput", frames,
                                 channels, kernel, items));
  const int64_t n = items * frames * channels;
  if (n > 0) {
    depthwiseKernel<true><<<blocks(n), kThreads, 0, stream>>>(
        dy, w, nullptr, dx, frames, channels, kernel, n);
    MLLM_CUDA_LAUNCHED();
  }
  return Status();
}

Status cuda::depthwiseConv1dBackwardWeight(const bf16 *x, const bf16 *dy,
                                           float *dw, float *db, int64_t frames,
                                           int64_t channels, int64_t kernel,
                                           int64_t items, cudaStream_t stream) {
  MLLM_STATUS_TRY(checkDepthwise("depthwiseConv1dBackwardWeight", frames,
                                 channels, kernel, items));
  const int64_t rows = items * frames, n = channels * kernel;
  if (rows == 0 || n == 0)
    return Status();
  if (db)
    MLLM_STATUS_TRY(sumRows(dy, db, rows, channels, stream));
  // Chunks on the grid's y (at most 65535 of them), (j, c) on its x.
  constexpr int64_t kMaxChunks = 65535;
  const int64_t chunk =
      std::max<int64_t>(kChunk, (rows + kMaxChunks - 1) / kMaxChunks);
  const int64_t chunks = (rows + chunk - 1) / chunk;
  const dim3 grid(blocks(n), static_cast<unsigned>(chunks));
  if (chunks == 1) {
    depthwiseWeightPartials<<<grid, kThreads, 0, stream>>>(
        x, dy, rows, frames, channels, kernel, chunk, nullptr, dw);
    MLLM_CUDA_LAUNCHED();
    return Status();
  }
  float *part = nullptr;
  MLLM_CUDA_TRY(cudaMallocAsync(reinterpret_cast<void **>(&part),
                                chunks * n * sizeof(float), stream));
  depthwiseWeightPartials<<<grid, kThreads, 0, stream>>>(
      x, dy, rows, frames, channels, kernel, chunk, part, nullptr);
  dev::sumChunks<<<blocks(n), kThreads, 0, stream>>>(part, chunks, n, dw);
  cudaError_t launched = cudaGetLastError();
  MLLM_CUDA_TRY(cudaFreeAsync(part, stream));
  MLLM_CUDA_TRY(launched);
  return Status();
}
