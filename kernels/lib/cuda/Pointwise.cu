//===- Pointwise.cu - Activations, cross-entropy, rows, patches, AdamW ----===//
//
// Element-wise and per-row kernels with the CPU kernels' formulas: the
// activations, the loss and the embedding (whole, or over a vocabulary
// slice), bias and position-table adds, row gathers and scatters, patchify
// and the optimizer. The loss sum, the embedding scatter and the optimizer
// avoid float atomics so that every result is reproducible bit for bit;
// AdamW rounds each operation as the CPU code does (no fused multiply-add),
// so both give the same bits.
//
//===----------------------------------------------------------------------===//

#include "mllm/kernels/cuda/Layers.h"

#include "Reduce.cuh"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <numeric>
#include <string>

using namespace mllm::kernels;
using namespace mllm::kernels::cuda;
using namespace mllm::kernels::cuda::dev;

namespace {

constexpr int kThreads = 256;

unsigned blocks(int64_t n) {
  return static_cast<unsigned>((n + kThreads - 1) / kThreads);
}

__device__ inline float f(bf16 v) { return __bfloat162float(v); }
__device__ inline float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
__device__ inline float gelu(float x) {
  return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
}
__device__ inline float geluGrad(float x) {
  float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752f));
  return cdf + x * 0.39894228040143268f * expf(-0.5f * x * x);
}

enum class Act { Gelu, Relu, Silu, SwiGlu, GeGlu, Glu };

/// A plain activation (GELU, ReLU, SiLU) over n elements, else a gated one
/// over [tokens, 2 ffn] inputs; `din` null means the forward.
template <Act kAct>
__global__ void activationKernel(const bf16 *in, const bf16 *dout, bf16 *out,
                                 bf16 *din, int64_t n, int64_t ffn) {
  const int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (e >= n)
    return;
  if constexpr (kAct == Act::Gelu || kAct == Act::Relu || kAct == Act::Silu) {
    const float x = f(in[e]);
    float act, grad;
    if constexpr (kAct == Act::Gelu) {
      act = gelu(x);
      grad = geluGrad(x);
    } else if constexpr (kAct == Act::Relu) {
      act = x > 0.0f ? x : 0.0f;
      grad = x > 0.0f ? 1.0f : 0.0f; // 0 at x == 0, as PyTorch
    } else {
      const float s = sigmoid(x);
      act = x * s;
      grad = s * (1.0f + x * (1.0f - s));
    }
    if (din)
      din[e] = __float2bfloat16(f(dout[e]) * grad);
    else
      out[e] = __float2bfloat16(act);
    return;
  } else {
    const int64_t t = e / ffn, i = e % ffn;
    // The activated half: the first for SwiGLU/GeGLU ([gate | up]), the
    // second for the GLU ([a | b], out = a * sigmoid(b)).
    const int64_t first = t * 2 * ffn + i;
    const int64_t gi = kAct == Act::Glu ? first + ffn : first;
    const int64_t ui = kAct == Act::Glu ? first : first + ffn;
    const float g = f(in[gi]), u = f(in[ui]);
    float act, grad;
    if constexpr (kAct == Act::SwiGlu) {
      float s = sigmoid(g);
      act = g * s;
      grad = s * (1.0f + g * (1.0f - s));
    } else if constexpr (kAct == Act::Glu) {
      act = sigmoid(g);
      grad = act * (1.0f - act);
    } else {
      act = gelu(g);
      grad = geluGrad(g);
    }
    if (!din) {
      out[e] = __float2bfloat16(act * u);
      return;
    }
    const float d = f(dout[e]);
    din[gi] = __float2bfloat16(d * u * grad);
    din[ui] = __float2bfloat16(d * act);
  }
}

template <Act kAct>
Status activation(const bf16 *in, const bf16 *dout, bf16 *out, bf16 *din,
                  int64_t n, int64_t ffn, cudaStream_t stream) {
  if (n > 0) {
    activationKernel<kAct>
        <<<blocks(n), kThreads, 0, stream>>>(in, dout, out, din, n, ffn);
    MLLM_CUDA_LAUNCHED();
  }
  return Status();
}

/// The largest logit of a row (-inf for an empty one); every thread gets
/// it.
__device__ inline float blockRowMax(const bf16 *row, int64_t vocab,
                                    float *scratch) {
  float m = -INFINITY;
  for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x)
    m = fmaxf(m, f(row[v]));
  return blockReduce<float, true>(m, scratch);
}

/// The sum of exp(logit - m) over a row in fp32: each thread its strided
/// terms in order, then the fixed block reduction. The unsplit forward and
/// the slices' sums share it, so one slice over the whole vocabulary sums
/// exactly as crossEntropyForward does.
__device__ inline float blockRowSumExp(const bf16 *row, int64_t vocab, float m,
                                       float *scratch) {
  float sum = 0.0f;
  for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x)
    sum += expf(f(row[v]) - m);
  return blockReduce(sum, scratch);
}

/// One block per token: lse and the token's loss (NaN for a target outside
/// the vocabulary, so the bug shows in the loss).
__global__ void ceForwardKernel(const bf16 *logits, const int64_t *targets,
                                float *lse, float *loss, int64_t vocab,
                                int64_t ignoreIndex) {
  __shared__ float scratch[32];
  const bf16 *row = logits + blockIdx.x * vocab;
  const float m = blockRowMax(row, vocab, scratch);
  const float sum = blockRowSumExp(row, vocab, m, scratch);
  if (threadIdx.x != 0)
    return;
  const float l = m + logf(sum);
  lse[blockIdx.x] = l;
  const int64_t target = targets[blockIdx.x];
  if (target == ignoreIndex)
    loss[blockIdx.x] = 0.0f;
  else if (target < 0 || target >= vocab)
    loss[blockIdx.x] = NAN;
  else
    loss[blockIdx.x] = l - f(row[target]);
}

/// For one block: each thread sums a contiguous run of tokens in order,
/// then a fixed-order block sum (double); thread 0 stores the sum and the
/// count of counted tokens. loss(t) is token t's loss, 0 when ignored.
template <typename Loss>
__device__ void sumLosses(Loss loss, const int64_t *targets, int64_t tokens,
                          int64_t ignoreIndex, double *lossSum,
                          int64_t *count) {
  __shared__ double scratch[32];
  __shared__ long long countScratch[32];
  const int64_t per = (tokens + blockDim.x - 1) / blockDim.x;
  const int64_t t0 = threadIdx.x * per, t1 = min(tokens, t0 + per);
  double sum = 0.0;
  long long n = 0;
  for (int64_t t = t0; t < t1; ++t) {
    sum += loss(t);
    n += targets[t] != ignoreIndex;
  }
  sum = blockReduce(sum, scratch);
  n = blockReduce(n, countScratch);
  if (threadIdx.x == 0) {
    *lossSum = sum;
    *count = n;
  }
}

__global__ void ceSumKernel(const float *loss, const int64_t *targets,
                            int64_t tokens, int64_t ignoreIndex,
                            double *lossSum, int64_t *count) {
  sumLosses([&](int64_t t) { return static_cast<double>(loss[t]); }, targets,
            tokens, ignoreIndex, lossSum, count);
}

/// One block per token of the slice.
__global__ void ceRowMaxKernel(const bf16 *logits, float *rowMax,
                               int64_t vocab) {
  __shared__ float scratch[32];
  const float m = blockRowMax(logits + blockIdx.x * vocab, vocab, scratch);
  if (threadIdx.x == 0)
    rowMax[blockIdx.x] = m;
}

/// One block per token: the first index holding the row's largest logit,
/// as the largest of the negated indices (exact in fp32 below 2^24).
__global__ void rowArgmaxKernel(const bf16 *logits, int64_t *argmax,
                                int64_t vocab) {
  __shared__ float scratch[32];
  const bf16 *row = logits + blockIdx.x * vocab;
  const float m = blockRowMax(row, vocab, scratch);
  float first = -INFINITY;
  for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x)
    if (f(row[v]) == m) {
      first = -static_cast<float>(v);
      break;
    }
  first = blockReduce<float, true>(first, scratch);
  if (threadIdx.x == 0)
    argmax[blockIdx.x] = first == -INFINITY ? -1 : static_cast<int64_t>(-first);
}

/// One block per token of the slice: its sum of exponentials and, when the
/// slice holds the target, the target's logit.
__global__ void ceSliceSumsKernel(const bf16 *logits, const int64_t *targets,
                                  const float *rowMax, double *sums,
                                  int64_t tokens, int64_t vocab,
                                  int64_t first) {
  __shared__ float scratch[32];
  const bf16 *row = logits + blockIdx.x * vocab;
  const float sum = blockRowSumExp(row, vocab, rowMax[blockIdx.x], scratch);
  if (threadIdx.x != 0)
    return;
  sums[blockIdx.x] = static_cast<double>(sum);
  const int64_t target = targets[blockIdx.x];
  sums[tokens + blockIdx.x] = target >= first && target - first < vocab
                                  ? static_cast<double>(f(row[target - first]))
                                  : 0.0;
}

/// One block: lse of every token and the loss sum, in double.
__global__ void ceFromSumsKernel(const float *rowMax, const double *sums,
                                 const int64_t *targets, float *lse,
                                 int64_t tokens, int64_t ignoreIndex,
                                 double *lossSum, int64_t *count) {
  sumLosses(
      [&](int64_t t) {
        const double l = static_cast<double>(rowMax[t]) + log(sums[t]);
        lse[t] = static_cast<float>(l);
        return targets[t] != ignoreIndex ? l - sums[tokens + t] : 0.0;
      },
      targets, tokens, ignoreIndex, lossSum, count);
}

/// One block per token; the one-hot at column target - first when the
/// slice holds it (first = 0 over the whole vocabulary).
__global__ void ceBackwardKernel(const bf16 *logits, const int64_t *targets,
                                 const float *lse, bf16 *dlogits, float scale,
                                 int64_t vocab, int64_t first,
                                 int64_t ignoreIndex) {
  const int64_t base = blockIdx.x * vocab;
  const int64_t target = targets[blockIdx.x];
  const bool counted = target != ignoreIndex;
  const int64_t hot = target >= first ? target - first : -1;
  const float l = lse[blockIdx.x];
  for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) {
    float g =
        counted
            ? scale * (expf(f(logits[base + v]) - l) - (v == hot ? 1.0f : 0.0f))
            : 0.0f;
    dlogits[base + v] = __float2bfloat16(g);
  }
}

__global__ void addKernel(bf16 *y, const bf16 *x, int64_t n) {
  const int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (e < n)
    y[e] = __float2bfloat16(f(y[e]) + f(x[e]));
}

__global__ void scaleAddKernel(bf16 *y, const bf16 *x, float a, int64_t n) {
  const int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  // Unfused, so that the host twin's a * x + y gives the same bits.
  if (e < n)
    y[e] = __float2bfloat16(__fadd_rn(f(y[e]), __fmul_rn(a, f(x[e]))));
}

__global__ void addRowVectorKernel(bf16 *x, const bf16 *v, int64_t n,
                                   int64_t cols) {
  const int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (e < n)
    x[e] = __float2bfloat16(f(x[e]) + f(v[e % cols]));
}

/// One thread per element of the `rows` rows copied (or zeroed).
__global__ void copyRowsKernel(const bf16 *src, const int64_t *srcRows,
                               bf16 *dst, const int64_t *dstRows, int64_t n,
                               int64_t width) {
  const int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (e >= n)
    return;
  const int64_t i = e / width, c = e % width;
  const int64_t to = dstRows ? dstRows[i] : i;
  dst[to * width + c] = src ? src[(srcRows ? srcRows[i] : i) * width + c]
                            : __float2bfloat16(0.0f);
}

/// One thread per patch element: element j of patch n (n over the items'
/// patches, item after item) reads its pixel (cpu::patchify's layout).
__global__ void patchifyKernel(const bf16 *image, bf16 *patches,
                               cpu::PatchShape s, int64_t total) {
  const int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (e >= total)
    return;
  const int64_t p = s.patch, tp = s.temporalPatch;
  const int64_t rows = s.height / p, cols = s.width / p;
  const int64_t perItem = (s.frames / tp) * rows * cols;
  const int64_t dim = s.channels * tp * p * p;
  const int64_t j = e % dim, n = e / dim;
  const int64_t item = n / perItem, q = n % perItem;
  const int64_t ti = q / (rows * cols), hi = (q / cols) % rows, wi = q % cols;
  // Columns run over (c, dt, dy, dx).
  const int64_t dx = j % p, dy = (j / p) % p, dt = (j / (p * p)) % tp,
                c = j / (p * p * tp);
  const int64_t plane = (item * s.channels + c) * s.frames + ti * tp + dt;
  patches[e] = image[(plane * s.height + hi * p + dy) * s.width + wi * p + dx];
}

/// The host-side check of the new kernels' sizes: never launch on a
/// negative one.
Status checkSizes(const char *kernel, std::initializer_list<int64_t> sizes) {
  for (int64_t n : sizes)
    if (n < 0)
      return Status::error(std::string(kernel) + ": negative size " +
                           std::to_string(n));
  return Status();
}

__global__ void embeddingKernel(const int64_t *ids, const bf16 *table,
                                bf16 *out, int64_t tokens, int64_t dim) {
  const int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (e < tokens * dim)
    out[e] = table[ids[e / dim] * dim + e % dim];
}

/// out[t] = the slice's row of ids[t], zeros when the slice lacks it.
__global__ void embeddingSliceKernel(const int64_t *ids, const bf16 *table,
                                     bf16 *out, int64_t tokens, int64_t dim,
                                     int64_t first, int64_t count) {
  const int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (e >= tokens * dim)
    return;
  const int64_t id = ids[e / dim];
  out[e] = id >= first && id - first < count
               ? table[(id - first) * dim + e % dim]
               : __float2bfloat16(0.0f);
}

/// Block (u, column chunk): the rows of unique id u, in token order.
__global__ void embeddingGradKernel(const int64_t *ids, const int32_t *start,
                                    const int32_t *order, const bf16 *dout,
                                    float *dtable, int64_t dim) {
  const int64_t c = blockIdx.y * int64_t(blockDim.x) + threadIdx.x;
  if (c >= dim)
    return;
  float sum = 0.0f;
  for (int32_t i = start[blockIdx.x]; i < start[blockIdx.x + 1]; ++i)
    sum += f(dout[order[i] * dim + c]);
  dtable[ids[blockIdx.x] * dim + c] += sum;
}

/// Up to kMaxTensors tensors per launch; block b works on the tensor whose
/// block range holds b.
constexpr int kMaxTensors = 32;
constexpr int64_t kPerBlock = 4 * kThreads;

struct AdamWBatch {
  AdamWTensor tensors[kMaxTensors];
  int64_t firstBlock[kMaxTensors + 1];
  int count;
  float decay, beta1, oneMinusBeta1, beta2, oneMinusBeta2, negStepSize, bc2Sqrt,
      eps;
};

/// cpu::adamwStep's operations one by one, each rounded (the _rn
/// intrinsics stop nvcc from fusing them into FMAs).
__global__ void adamwKernel(AdamWBatch batch) {
  int t = 0;
  while (t + 1 < batch.count && batch.firstBlock[t + 1] <= blockIdx.x)
    ++t;
  const AdamWTensor &x = batch.tensors[t];
  const int64_t begin = (blockIdx.x - batch.firstBlock[t]) * kPerBlock;
  const int64_t end = min(x.n, begin + kPerBlock);
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const float g = x.grad[i];
    float p = __fmul_rn(x.param[i], batch.decay);
    float m = __fadd_rn(__fmul_rn(x.expAvg[i], batch.beta1),
                        __fmul_rn(batch.oneMinusBeta1, g));
    float v = __fadd_rn(__fmul_rn(x.expAvgSq[i], batch.beta2),
                        __fmul_rn(__fmul_rn(batch.oneMinusBeta2, g), g));
    float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(v), batch.bc2Sqrt), batch.eps);
    p = __fadd_rn(p, __fdiv_rn(__fmul_rn(batch.negStepSize, m), denom));
    x.param[i] = p;
    x.expAvg[i] = m;
    x.expAvgSq[i] = v;
    if (x.paramBf16)
      x.paramBf16[i] = __float2bfloat16(p);
  }
}

} // namespace

Status cuda::geluForward(const bf16 *x, bf16 *y, int64_t n,
                         cudaStream_t stream) {
  return activation<Act::Gelu>(x, nullptr, y, nullptr, n, 0, stream);
}
Status cuda::geluBackward(const bf16 *x, const bf16 *dy, bf16 *dx, int64_t n,
                          cudaStream_t stream) {
  return activation<Act::Gelu>(x, dy, nullptr, dx, n, 0, stream);
}
Status cuda::reluForward(const bf16 *x, bf16 *y, int64_t n,
                         cudaStream_t stream) {
  MLLM_STATUS_TRY(checkSizes("reluForward", {n}));
  return activation<Act::Relu>(x, nullptr, y, nullptr, n, 0, stream);
}
Status cuda::reluBackward(const bf16 *x, const bf16 *dy, bf16 *dx, int64_t n,
                          cudaStream_t stream) {
  MLLM_STATUS_TRY(checkSizes("reluBackward", {n}));
  return activation<Act::Relu>(x, dy, nullptr, dx, n, 0, stream);
}
Status cuda::siluForward(const bf16 *x, bf16 *y, int64_t n,
                         cudaStream_t stream) {
  MLLM_STATUS_TRY(checkSizes("siluForward", {n}));
  return activation<Act::Silu>(x, nullptr, y, nullptr, n, 0, stream);
}
Status cuda::siluBackward(const bf16 *x, const bf16 *dy, bf16 *dx, int64_t n,
                          cudaStream_t stream) {
  MLLM_STATUS_TRY(checkSizes("siluBackward", {n}));
  return activation<Act::Silu>(x, dy, nullptr, dx, n, 0, stream);
}
Status cuda::swigluForward(const bf16 *in, bf16 *out, int64_t tokens,
                           int64_t ffn, cudaStream_t stream) {
  return activation<Act::SwiGlu>(in, nullptr, out, nullptr, tokens * ffn, ffn,
                                 stream);
}
Status cuda::swigluBackward(const bf16 *in, const bf16 *dout, bf16 *din,
                            int64_t tokens, int64_t ffn, cudaStream_t stream) {
  return activation<Act::SwiGlu>(in, dout, nullptr, din, tokens * ffn, ffn,
                                 stream);
}
Status cuda::gegluForward(const bf16 *in, bf16 *out, int64_t tokens,
                          int64_t ffn, cudaStream_t stream) {
  return activation<Act::GeGlu>(in, nullptr, out, nullptr, tokens * ffn, ffn,
                                stream);
}
Status cuda::gegluBackward(const bf16 *in, const bf16 *dout, bf16 *din,
                           int64_t tokens, int64_t ffn, cudaStream_t stream) {
  return activation<Act::GeGlu>(in, dout, nullptr, din, tokens * ffn, ffn,
                                stream);
}

Status cuda::gluForward(const bf16 *in, bf16 *out, int64_t tokens,
                        int64_t width, cudaStream_t stream) {
  MLLM_STATUS_TRY(checkSizes("gluForward", {tokens, width}));
  return activation<Act::Glu>(in, nullptr, out, nullptr, tokens * width, width,
                              stream);
}
Status cuda::gluBackward(const bf16 *in, const bf16 *dout, bf16 *din,
                         int64_t tokens, int64_t width, cudaStream_t stream) {
  MLLM_STATUS_TRY(checkSizes("gluBackward", {tokens, width}));
  return activation<Act::Glu>(in, dout, nullptr, din, tokens * width, width,
                              stream);
}

Status cuda::crossEntropyForward(const bf16 *logits, const int64_t *targets,
                                 float *lse, double *lossSum, int64_t *count,
                                 int64_t tokens, int64_t vocab,
                                 cudaStream_t stream, int64_t ignoreIndex) {
  if (tokens == 0) {
    MLLM_CUDA_TRY(cudaMemsetAsync(lossSum, 0, sizeof(double), stream));
    MLLM_CUDA_TRY(cudaMemsetAsync(count, 0, sizeof(int64_t), stream));
    return Status();
  }
  float *loss = nullptr;
  MLLM_CUDA_TRY(cudaMallocAsync(reinterpret_cast<void **>(&loss),
                                tokens * sizeof(float), stream));
  ceForwardKernel<<<static_cast<unsigned>(tokens), kThreads, 0, stream>>>(
      logits, targets, lse, loss, vocab, ignoreIndex);
  ceSumKernel<<<1, 1024, 0, stream>>>(loss, targets, tokens, ignoreIndex,
                                      lossSum, count);
  cudaError_t launched = cudaGetLastError();
  MLLM_CUDA_TRY(cudaFreeAsync(loss, stream));
  MLLM_CUDA_TRY(launched);
  return Status();
}

Status cuda::crossEntropyBackward(const bf16 *logits, const int64_t *targets,
                                  const float *lse, bf16 *dlogits, float scale,
                                  int64_t tokens, int64_t vocab,
                                  cudaStream_t stream, int64_t ignoreIndex) {
  return crossEntropySliceBackward(logits, targets, lse, dlogits, scale, tokens,
                                   vocab, 0, stream, ignoreIndex);
}

Status cuda::rowArgmax(const bf16 *logits, int64_t *argmax, int64_t tokens,
                       int64_t vocab, cudaStream_t stream) {
  MLLM_STATUS_TRY(checkSizes("rowArgmax", {tokens, vocab}));
  if (vocab >= (int64_t(1) << 24))
    return Status::error("rowArgmax: a vocabulary of " + std::to_string(vocab) +
                         " ids; the kernel's indices are exact below 2^24");
  if (tokens > 0) {
    rowArgmaxKernel<<<static_cast<unsigned>(tokens), kThreads, 0, stream>>>(
        logits, argmax, vocab);
    MLLM_CUDA_LAUNCHED();
  }
  return Status();
}

Status cuda::crossEntropyRowMax(const bf16 *logits, float *rowMax,
                                int64_t tokens, int64_t vocab,
                                cudaStream_t stream) {
  MLLM_STATUS_TRY(checkSizes("crossEntropyRowMax", {tokens, vocab}));
  if (tokens > 0) {
    ceRowMaxKernel<<<static_cast<unsigned>(tokens), kThreads, 0, stream>>>(
        logits, rowMax, vocab);
    MLLM_CUDA_LAUNCHED();
  }
  return Status();
}

Status cuda::crossEntropySliceSums(const bf16 *logits, const int64_t *targets,
                                   const float *rowMax, double *sums,
                                   int64_t tokens, int64_t vocab,
                                   int64_t vocabFirst, cudaStream_t stream) {
  MLLM_STATUS_TRY(
      checkSizes("crossEntropySliceSums", {tokens, vocab, vocabFirst}));
  if (tokens > 0) {
    ceSliceSumsKernel<<<static_cast<unsigned>(tokens), kThreads, 0, stream>>>(
        logits, targets, rowMax, sums, tokens, vocab, vocabFirst);
    MLLM_CUDA_LAUNCHED();
  }
  return Status();
}

Status cuda::crossEntropyFromSums(const float *rowMax, const double *sums,
                                  const int64_t *targets, float *lse,
                                  double *lossSum, int64_t *count,
                                  int64_t tokens, cudaStream_t stream,
                                  int64_t ignoreIndex) {
  MLLM_STATUS_TRY(checkSizes("crossEntropyFromSums", {tokens}));
  if (tokens == 0) {
    MLLM_CUDA_TRY(cudaMemsetAsync(lossSum, 0, sizeof(double), stream));
    MLLM_CUDA_TRY(cudaMemsetAsync(count, 0, sizeof(int64_t), stream));
    return Status();
  }
  ceFromSumsKernel<<<1, 1024, 0, stream>>>(rowMax, sums, targets, lse, tokens,
                                           ignoreIndex, lossSum, count);
  MLLM_CUDA_LAUNCHED();
  return Status();
}

Status cuda::crossEntropySliceBackward(const bf16 *logits,
                                       const int64_t *targets, const float *lse,
                                       bf16 *dlogits, float scale,
                                       int64_t tokens, int64_t vocab,
                                       int64_t vocabFirst, cudaStream_t stream,
                                       int64_t ignoreIndex) {
  MLLM_STATUS_TRY(
      checkSizes("crossEntropySliceBackward", {tokens, vocab, vocabFirst}));
  if (tokens > 0) {
    ceBackwardKernel<<<static_cast<unsigned>(tokens), kThreads, 0, stream>>>(
        logits, targets, lse, dlogits, scale, vocab, vocabFirst, ignoreIndex);
    MLLM_CUDA_LAUNCHED();
  }
  return Status();
}

Status cuda::addInPlace(bf16 *y, const bf16 *x, int64_t n,
                        cudaStream_t stream) {
  if (n > 0) {
    addKernel<<<blocks(n), kThreads, 0, stream>>>(y, x, n);
    MLLM_CUDA_LAUNCHED();
  }
  return Status();
}

Status cuda::scaleAdd(bf16 *y, const bf16 *x, float a, int64_t n,
                      cudaStream_t stream) {
  MLLM_STATUS_TRY(checkSizes("scaleAdd", {n}));
  if (n > 0) {
    scaleAddKernel<<<blocks(n), kThreads, 0, stream>>>(y, x, a, n);
    MLLM_CUDA_LAUNCHED();
  }
  return Status();
}

Status cuda::addRowVector(bf16 *x, const bf16 *v, int64_t rows, int64_t cols,
                          cudaStream_t stream) {
  MLLM_STATUS_TRY(checkSizes("addRowVector", {rows, cols}));
  const int64_t n = rows * cols;
  if (n > 0) {
    addRowVectorKernel<<<blocks(n), kThreads, 0, stream>>>(x, v, n, cols);
    MLLM_CUDA_LAUNCHED();
  }
  return Status();
}

Status cuda::copyRows(const bf16 *src, const int64_t *srcRows, bf16 *dst,
                      const int64_t *dstRows, int64_t rows, int64_t width,
                      cudaStream_t stream) {
  MLLM_STATUS_TRY(checkSizes("copyRows", {rows, width}));
  const int64_t n = rows * width;
  if (n > 0) {
    copyRowsKernel<<<blocks(n), kThreads, 0, stream>>>(src, srcRows, dst,
                                                       dstRows, n, width);
    MLLM_CUDA_LAUNCHED();
  }
  return Status();
}

Status cuda::patchify(const bf16 *image, bf16 *patches,
                      const cpu::PatchShape &shape, int64_t items,
                      cudaStream_t stream) {
  if (std::string why = checkPatchShape(shape); !why.empty())
    return Status::error("patchify: " + why);
  MLLM_STATUS_TRY(checkSizes("patchify", {items}));
  const int64_t n = items * shape.numPatches() * shape.patchDim();
  if (n > 0) {
    patchifyKernel<<<blocks(n), kThreads, 0, stream>>>(image, patches, shape,
                                                       n);
    MLLM_CUDA_LAUNCHED();
  }
  return Status();
}

Status cuda::embeddingForward(const int64_t *ids, const bf16 *table, bf16 *out,
                              int64_t tokens, int64_t dim,
                              cudaStream_t stream) {
  if (tokens * dim > 0) {
    embeddingKernel<<<blocks(tokens * dim), kThreads, 0, stream>>>(
        ids, table, out, tokens, dim);
    MLLM_CUDA_LAUNCHED();
  }
  return Status();
}

Status cuda::embeddingForwardSlice(const int64_t *ids, const bf16 *table,
                                   bf16 *out, int64_t tokens, int64_t dim,
                                   int64_t vocabFirst, int64_t vocabCount,
                                   cudaStream_t stream) {
  MLLM_STATUS_TRY(checkSizes("embeddingForwardSlice",
                             {tokens, dim, vocabFirst, vocabCount}));
  if (tokens * dim > 0) {
    embeddingSliceKernel<<<blocks(tokens * dim), kThreads, 0, stream>>>(
        ids, table, out, tokens, dim, vocabFirst, vocabCount);
    MLLM_CUDA_LAUNCHED();
  }
  return Status();
}

Status cuda::embeddingBackward(const EmbeddingGradPlan &plan, const bf16 *dout,
                               float *dtable, int64_t dim,
                               cudaStream_t stream) {
  if (plan.uniqueIds > 0 && dim > 0) {
    embeddingGradKernel<<<dim3(static_cast<unsigned>(plan.uniqueIds),
                               blocks(dim)),
                          kThreads, 0, stream>>>(
        plan.ids.data(), plan.start.data(), plan.order.data(), dout, dtable,
        dim);
    MLLM_CUDA_LAUNCHED();
  }
  return Status();
}

Status cuda::adamwStep(const std::vector<AdamWTensor> &tensors, int64_t step,
                       const cpu::AdamConfig &c, cudaStream_t stream) {
  if (step < 1)
    return Status::error("adamwStep: steps are 1-based");
  // The scalars in double, rounded to float once, as cpu::adamwStep does.
  const double s = static_cast<double>(step);
  const double bc1 = 1 - std::pow(c.beta1, s), bc2 = 1 - std::pow(c.beta2, s);
  AdamWBatch batch = {};
  batch.decay = static_cast<float>(1 - c.lr * c.weightDecay);
  batch.beta1 = static_cast<float>(c.beta1);
  batch.oneMinusBeta1 = static_cast<float>(1 - c.beta1);
  batch.beta2 = static_cast<float>(c.beta2);
  batch.oneMinusBeta2 = static_cast<float>(1 - c.beta2);
  batch.negStepSize = static_cast<float>(-(c.lr / bc1));
  batch.bc2Sqrt = static_cast<float>(std::sqrt(bc2));
  batch.eps = static_cast<float>(c.eps);
  for (size_t first = 0; first < tensors.size(); first += kMaxTensors) {
    batch.count =
        static_cast<int>(std::min<size_t>(kMaxTensors, tensors.size() - first));
    batch.firstBlock[0] = 0;
    for (int i = 0; i < batch.count; ++i) {
      batch.tensors[i] = tensors[first + i];
      batch.firstBlock[i + 1] =
          batch.firstBlock[i] +
          (tensors[first + i].n + kPerBlock - 1) / kPerBlock;
    }
    if (batch.firstBlock[batch.count] > 0) {
      adamwKernel<<<static_cast<unsigned>(batch.firstBlock[batch.count]),
                    kThreads, 0, stream>>>(batch);
      MLLM_CUDA_LAUNCHED();
    }
  }
  return Status();
}
