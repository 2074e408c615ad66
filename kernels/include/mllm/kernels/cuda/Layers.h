//===- Layers.h - CUDA layer kernels (bf16 storage, fp32 math) --*- C++ -*-===//
//
// The GPU versions of the CPU layer kernels (kernels/cpu/*.h) with the same
// formulas and layouts: activations are bf16, every computation and every
// statistic saved for the backward is fp32, and weight gradients and
// optimizer state are fp32 (they are accumulated and all-reduced in fp32).
// All pointers are device memory; every call is asynchronous on `stream`.
// Reductions run in a fixed order (no float atomics), so results are
// bitwise reproducible on one GPU.
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_KERNELS_CUDA_LAYERS_H
#define MLLM_KERNELS_CUDA_LAYERS_H

#include "mllm/kernels/cpu/Conv.h"
#include "mllm/kernels/cpu/CrossEntropy.h"
#include "mllm/kernels/cpu/Optimizer.h"
#include "mllm/kernels/cpu/PatchEmbed.h"
#include "mllm/kernels/cuda/DeviceArray.h"
#include "mllm/kernels/cuda/Status.h"

#include <cuda_bf16.h>

#include <cstdint>
#include <string>
#include <vector>

namespace mllm {
namespace kernels {
namespace cuda {

using bf16 = __nv_bfloat16;

//===----------------------------------------------------------------------===//
// Normalisation over the last dimension of [tokens, dim] (cpu/Norm.h)
//===----------------------------------------------------------------------===//

/// y = x * rstd * w (w may be null); rstd[tokens] saved when non-null.
Status rmsNormForward(const bf16 *x, const bf16 *w, bf16 *y, float *rstd,
                      int64_t tokens, int64_t dim, float eps,
                      cudaStream_t stream);
/// dx from dy, x, w and the saved rstd; dw += sum_t dy * xhat when non-null.
Status rmsNormBackward(const bf16 *dy, const bf16 *x, const bf16 *w,
                       const float *rstd, bf16 *dx, float *dw, int64_t tokens,
                       int64_t dim, cudaStream_t stream);
/// y = (x - mean) * rstd * w + b (w, b may be null).
Status layerNormForward(const bf16 *x, const bf16 *w, const bf16 *b, bf16 *y,
                        float *mean, float *rstd, int64_t tokens, int64_t dim,
                        float eps, cudaStream_t stream);
/// dx; dw += sum dy * xhat and db += sum dy when non-null.
Status layerNormBackward(const bf16 *dy, const bf16 *x, const bf16 *w,
                         const float *mean, const float *rstd, bf16 *dx,
                         float *dw, float *db, int64_t tokens, int64_t dim,
                         cudaStream_t stream);

//===----------------------------------------------------------------------===//
// RoPE on [tokens, heads, headDim], rotate-half (cpu/Rope.h); in place ok
//===----------------------------------------------------------------------===//

Status ropeForward(const bf16 *x, bf16 *y, const int64_t *positions,
                   int64_t tokens, int64_t heads, int64_t headDim, double theta,
                   cudaStream_t stream);
Status ropeBackward(const bf16 *dy, bf16 *dx, const int64_t *positions,
                    int64_t tokens, int64_t heads, int64_t headDim,
                    double theta, cudaStream_t stream);

//===----------------------------------------------------------------------===//
// Activations (cpu/Activation.h): exact-erf GELU, ReLU (gradient 0 at 0),
// SiLU; gated inputs are [tokens, 2 * ffn] = [gate | up], outputs
// [tokens, ffn]
//===----------------------------------------------------------------------===//

Status geluForward(const bf16 *x, bf16 *y, int64_t n, cudaStream_t stream);
Status geluBackward(const bf16 *x, const bf16 *dy, bf16 *dx, int64_t n,
                    cudaStream_t stream);
Status reluForward(const bf16 *x, bf16 *y, int64_t n, cudaStream_t stream);
Status reluBackward(const bf16 *x, const bf16 *dy, bf16 *dx, int64_t n,
                    cudaStream_t stream);
Status siluForward(const bf16 *x, bf16 *y, int64_t n, cudaStream_t stream);
Status siluBackward(const bf16 *x, const bf16 *dy, bf16 *dx, int64_t n,
                    cudaStream_t stream);
Status swigluForward(const bf16 *in, bf16 *out, int64_t tokens, int64_t ffn,
                     cudaStream_t stream);
Status swigluBackward(const bf16 *in, const bf16 *dout, bf16 *din,
                      int64_t tokens, int64_t ffn, cudaStream_t stream);
Status gegluForward(const bf16 *in, bf16 *out, int64_t tokens, int64_t ffn,
                    cudaStream_t stream);
Status gegluBackward(const bf16 *in, const bf16 *dout, bf16 *din,
                     int64_t tokens, int64_t ffn, cudaStream_t stream);
/// The conformer convolution module's GLU (F.glu over the last dim), the
/// gate in the *second* half: in[tokens, 2 * width] = [a | b],
/// out[t, i] = a * sigmoid(b); fp32 math, rounded once. The backward writes
/// din[tokens, 2 * width] = [dout * sigmoid(b) | dout * a * s * (1 - s)].
/// Fails on a negative size.
Status gluForward(const bf16 *in, bf16 *out, int64_t tokens, int64_t width,
                  cudaStream_t stream);
Status gluBackward(const bf16 *in, const bf16 *dout, bf16 *din, int64_t tokens,
                   int64_t width, cudaStream_t stream);

/// y += x elementwise (the residual stream), the sum in fp32 rounded once.
Status addInPlace(bf16 *y, const bf16 *x, int64_t n, cudaStream_t stream);
/// y += a * x elementwise in fp32 (the product, then the sum, no FMA),
/// rounded once: a conformer block's half-step residuals (a = 1/2), and
/// with y zeroed first a scaled copy. y may be x. Fails on a negative n.
Status scaleAdd(bf16 *y, const bf16 *x, float a, int64_t n,
                cudaStream_t stream);

//===----------------------------------------------------------------------===//
// Row vectors and rows: biases, position tables, class tokens, fan-in
//===----------------------------------------------------------------------===//

/// x[r, c] += v[c] over x[rows, cols], the sum in fp32 rounded once: a
/// linear layer's bias (rows = tokens, cols = out) or a learned position
/// table added to every sequence (rows = sequences, cols = tokens * hidden).
Status addRowVector(bf16 *x, const bf16 *v, int64_t rows, int64_t cols,
                    cudaStream_t stream);

/// dv[c] += sum_r dx[r, c] over dx[rows, cols] in fp32, accumulating as
/// the other weight gradients do: the gradient of addRowVector's v. The
/// rows are summed in chunks of at least 128, then the chunks in order: no
/// atomics, the same bits on every run.
Status sumRows(const bf16 *dx, float *dv, int64_t rows, int64_t cols,
               cudaStream_t stream);

/// dst[dstRows[i], :] = src[srcRows[i], :] for i < rows, rows of `width`
/// elements: a gather, a scatter or both. A null index list means row i; a
/// null `src` writes zeros. Indices are device memory, checked by the
/// caller (one out of range reads or writes out of bounds). A row written
/// twice, or a source row that is also a destination, is undefined.
Status copyRows(const bf16 *src, const int64_t *srcRows, bf16 *dst,
                const int64_t *dstRows, int64_t rows, int64_t width,
                cudaStream_t stream);

//===----------------------------------------------------------------------===//
// Patches of images and videos (cpu/PatchEmbed.h)
//===----------------------------------------------------------------------===//

/// Empty when patchify can cut `shape` (patch sizes >= 1, channels >= 1,
/// frames, height and width multiples of the patch sizes), else why not.
std::string checkPatchShape(const cpu::PatchShape &shape);

/// cpu::patchify on `items` items stored one after another:
/// image[items, channels, frames, height, width] ->
/// patches[items * numPatches, patchDim], item after item. A copy (exact).
Status patchify(const bf16 *image, bf16 *patches, const cpu::PatchShape &shape,
                int64_t items, cudaStream_t stream);

//===----------------------------------------------------------------------===//
// 1-D convolutions over token-major frames (cpu/Conv.h): conv1d is im2col1d
// and a GEMM (W[out, in, k] flattened to [out, in * k] is a linear weight),
// its input gradient a GEMM and col2im1d; the depthwise one is direct.
// `items` inputs (windows, sequences) lie one after another.
//===----------------------------------------------------------------------===//

/// Empty when im2col1d and col2im1d can run on `shape` (kernel and stride
/// >= 1, padding >= 0, inChannels >= 1, frames >= 0 and at least one
/// output frame), else why not. outChannels is not read.
std::string checkConv1dShape(const cpu::Conv1dShape &shape);

/// cpu::im2col1d on `items` inputs: x[items * frames, in] ->
/// cols[items * outFrames, in * k], cols[t, c * k + j] = x[t * s - p + j, c]
/// of the same item, 0 outside its frames. A copy (exact).
Status im2col1d(const bf16 *x, bf16 *cols, const cpu::Conv1dShape &shape,
                int64_t items, cudaStream_t stream);

/// The adjoint, cpu::col2im1d on `items` inputs: dx[f, c] = the sum of
/// dcols[t, c * k + j] over the (t, j) with t * s - p + j = f, in fp32 in
/// ascending j, rounded once; overwrites dx[items * frames, in]. One thread
/// gathers each element: no atomics, the same bits as the CPU kernel on the
/// same values. dcols and dx must not overlap.
Status col2im1d(const bf16 *dcols, bf16 *dx, const cpu::Conv1dShape &shape,
                int64_t items, cudaStream_t stream);

/// cpu::depthwiseConv1dForward on `items` sequences of x[frames, channels]
/// with w[channels, 1, kernel] ('same' padding, stride 1); b may be null.
/// fp32 in the CPU kernel's order (b, then the taps), rounded once. Not in
/// place.
Status depthwiseConv1dForward(const bf16 *x, const bf16 *w, const bf16 *b,
                              bf16 *y, int64_t frames, int64_t channels,
                              int64_t kernel, int64_t items,
                              cudaStream_t stream);
/// dx from dy (overwritten, not in place), as the CPU kernel.
Status depthwiseConv1dBackwardInput(const bf16 *dy, const bf16 *w, bf16 *dx,
                                    int64_t frames, int64_t channels,
                                    int64_t kernel, int64_t items,
                                    cudaStream_t stream);
/// dw[channels, 1, kernel] += sum dy * x over every item's frames and, when
/// db is not null, db[channels] += sum dy (fp32, accumulating; chunks of
/// frames summed in order, no atomics: the same bits on every run).
Status depthwiseConv1dBackwardWeight(const bf16 *x, const bf16 *dy, float *dw,
                                     float *db, int64_t frames,
                                     int64_t channels, int64_t kernel,
                                     int64_t items, cudaStream_t stream);

//===----------------------------------------------------------------------===//
// Softmax cross-entropy over the text positions (cpu/CrossEntropy.h)
//===----------------------------------------------------------------------===//

/// Positions that are not text (or not trained) carry ignoreIndex as their
/// target. Writes lse[tokens] (fp32), and into device scalars the sum of
/// the counted losses (double, summed in token order) and their count.
Status crossEntropyForward(const bf16 *logits, const int64_t *targets,
                           float *lse, double *lossSum, int64_t *count,
                           int64_t tokens, int64_t vocab, cudaStream_t stream,
                           int64_t ignoreIndex = cpu::kIgnoreIndex);
/// dlogits = scale * (softmax - onehot) for counted tokens, 0 otherwise.
Status crossEntropyBackward(const bf16 *logits, const int64_t *targets,
                            const float *lse, bf16 *dlogits, float scale,
                            int64_t tokens, int64_t vocab, cudaStream_t stream,
                            int64_t ignoreIndex = cpu::kIgnoreIndex);

//===----------------------------------------------------------------------===//
// Vocabulary-parallel cross-entropy (Megatron-LM's): each tensor-parallel
// rank holds logits[tokens, vocab] of the columns [vocabFirst, vocabFirst +
// vocab) of the whole vocabulary, and no rank ever holds a whole row. The
// caller all-reduces between the steps: crossEntropyRowMax, max over the
// group; crossEntropySliceSums, sum over the group; crossEntropyFromSums
// on every rank; crossEntropySliceBackward later. Targets are global ids.
//===----------------------------------------------------------------------===//

/// argmax[t] = the first index of row t's largest logit, NaN skipped (as
/// fmaxf), -1 for a row of NaN only: evaluation's and generation's
/// prediction, as the CPU backend's. vocab < 2^24.
Status rowArgmax(const bf16 *logits, int64_t *argmax, int64_t tokens,
                 int64_t vocab, cudaStream_t stream);

/// rowMax[t] = the largest logit of row t of the slice (fp32, exact; -inf
/// for an empty slice), to be all-reduced with max.
Status crossEntropyRowMax(const bf16 *logits, float *rowMax, int64_t tokens,
                          int64_t vocab, cudaStream_t stream);
/// sums[2 * tokens], to be all-reduced with sum (one message, in double):
/// sums[t] = the sum over the slice of exp(logit - rowMax[t]) (fp32 in the
/// order crossEntropyForward sums, stored as double) with the group's
/// rowMax, and sums[tokens + t] = the target's logit when this slice holds
/// the target, else 0 (ignored targets included), so exactly one rank
/// contributes it.
Status crossEntropySliceSums(const bf16 *logits, const int64_t *targets,
                             const float *rowMax, double *sums, int64_t tokens,
                             int64_t vocab, int64_t vocabFirst,
                             cudaStream_t stream);
/// From the all-reduced rowMax and sums: lse[t] = rowMax + log(sum) (in
/// double, rounded once) and, as crossEntropyForward, the sum over counted
/// tokens of lse - target logit (double, in token order) and their count,
/// the same on every rank. A counted target that no slice holds is not
/// seen here (its target logit reads as 0): the caller checks the ids.
Status crossEntropyFromSums(const float *rowMax, const double *sums,
                            const int64_t *targets, float *lse, double *lossSum,
                            int64_t *count, int64_t tokens, cudaStream_t stream,
                            int64_t ignoreIndex = cpu::kIgnoreIndex);
/// crossEntropyBackward on the slice with the group's lse:
/// dlogits = scale * (softmax - onehot) for counted tokens, the one-hot
/// only on the rank whose slice holds the target; 0 for ignored tokens.
/// With vocabFirst = 0 over the whole vocabulary it is crossEntropyBackward.
Status crossEntropySliceBackward(const bf16 *logits, const int64_t *targets,
                                 const float *lse, bf16 *dlogits, float scale,
                                 int64_t tokens, int64_t vocab,
                                 int64_t vocabFirst, cudaStream_t stream,
                                 int64_t ignoreIndex = cpu::kIgnoreIndex);

//===----------------------------------------------------------------------===//
// Embedding gather / scatter-add (cpu/Embedding.h)
//===----------------------------------------------------------------------===//

/// out[t] = table[ids[t]] (ids on the device, checked < vocab by the
/// caller: an id out of range reads out of bounds).
Status embeddingForward(const int64_t *ids, const bf16 *table, bf16 *out,
                        int64_t tokens, int64_t dim, cudaStream_t stream);
/// The vocabulary-parallel gather: this rank's table[vocabCount, dim] holds
/// the rows [vocabFirst, vocabFirst + vocabCount) of the whole table, and
/// out[t] = its row of ids[t] when the slice holds ids[t], else zeros; the
/// ranks' outputs then sum (all-reduce) to the whole gather. Any id may
/// come: one outside the slice is simply not this rank's.
Status embeddingForwardSlice(const int64_t *ids, const bf16 *table, bf16 *out,
                             int64_t tokens, int64_t dim, int64_t vocabFirst,
                             int64_t vocabCount, cudaStream_t stream);

/// The token order of a batch's ids grouped by id, built on the host once
/// per batch: the scatter then sums each id's rows in token order without
/// atomics (bitwise reproducible, as the CPU kernel).
struct EmbeddingGradPlan {
  int64_t tokens = 0, uniqueIds = 0;
  DeviceArray<int64_t> ids;   ///< The unique ids, ascending.
  DeviceArray<int32_t> start; ///< Per unique id, its run in `order`.
  DeviceArray<int32_t> order; ///< Token indices grouped by id, ascending.
};
/// Fails on an id outside [0, vocab).
Status prepareEmbeddingGrad(const std::vector<int64_t> &hostIds, int64_t vocab,
                            EmbeddingGradPlan &plan, cudaStream_t stream);
/// The plan of a vocabulary slice (embeddingForwardSlice's): only the
/// tokens whose id lies in [vocabFirst, vocabFirst + vocabCount), their ids
/// made local (id - vocabFirst); every other id is skipped. `order` still
/// indexes hostIds, so embeddingBackward takes the whole dout[tokens, dim]
/// and the slice's dtable[vocabCount, dim].
Status prepareEmbeddingGradSlice(const std::vector<int64_t> &hostIds,
                                 int64_t vocabFirst, int64_t vocabCount,
                                 EmbeddingGradPlan &plan, cudaStream_t stream);
/// Room for plans of up to `tokens` tokens (reserveAttention's reason).
inline Status reserveEmbeddingGrad(EmbeddingGradPlan &plan, int64_t tokens) {
  const size_t n = static_cast<size_t>(tokens);
  MLLM_STATUS_TRY(plan.ids.reserve(n));
  MLLM_STATUS_TRY(plan.start.reserve(n + 1));
  MLLM_STATUS_TRY(plan.order.reserve(n));
  return Status();
}
/// dtable[ids[t]] += dout[t] (dtable fp32 [vocab, dim]).
Status embeddingBackward(const EmbeddingGradPlan &plan, const bf16 *dout,
                         float *dtable, int64_t dim, cudaStream_t stream);

//===----------------------------------------------------------------------===//
// Fused multi-tensor AdamW (cpu/Optimizer.h: PyTorch's order of operations)
//===----------------------------------------------------------------------===//

/// One parameter tensor: fp32 master weights, gradient and moments, and
/// optionally the bf16 copy the model computes with (refreshed).
struct AdamWTensor {
  float *param = nullptr;
  const float *grad = nullptr;
  float *expAvg = nullptr, *expAvgSq = nullptr;
  bf16 *paramBf16 = nullptr;
  int64_t n = 0;
};

/// One step over every tensor of `tensors` in a few launches (up to 32
/// tensors each); element for element what cpu::adamwStep<float> computes.
Status adamwStep(const std::vector<AdamWTensor> &tensors, int64_t step,
                 const cpu::AdamConfig &config, cudaStream_t stream);

} // namespace cuda
} // namespace kernels
} // namespace mllm

#endif // MLLM_KERNELS_CUDA_LAYERS_H
