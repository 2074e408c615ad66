//===- Conv.h - 1-D convolutions over token-major frames --------*- C++ -*-===//
//
// Convolutions over x[frames, channels] (token-major, unlike PyTorch's
// [channels, frames]) with PyTorch's weight layouts:
//
//   conv1d:          W[out, in, k] as nn.Conv1d, zero padding p each side,
//                    stride s, outFrames = (frames + 2p - k) / s + 1,
//                    y[t, o] = b[o] + sum_{c,j} W[o, c, j] x[t*s - p + j, c]
//   depthwiseConv1d: W[channels, 1, k] (groups = channels), stride 1, 'same'
//                    padding as PyTorch: pl = (k - 1) / 2 on the left, the
//                    rest on the right, y[t, c] = b[c] + sum_j W[c, 0, j]
//                    x[t - pl + j, c]
//
// conv1d is im2col + GEMM: cols[outFrames, in*k] with cols[t, c*k + j] =
// x[t*s - p + j, c], so W flattened to [out, in*k] is a linear weight. The
// column buffer is allocated per call. backward-input turns dy into dcols
// with one GEMM, then gathers them back into dx (col2im1d, the adjoint of
// im2col1d); backward-weight rebuilds cols from x (x is what the runtime
// saves, not cols).
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_KERNELS_CPU_CONV_H
#define MLLM_KERNELS_CPU_CONV_H

#include <cstdint>

namespace mllm {
namespace kernels {
namespace cpu {

struct Conv1dShape {
  int64_t frames = 0; ///< Input frames.
  int64_t inChannels = 0;
  int64_t outChannels = 0;
  int64_t kernel = 1;
  int64_t stride = 1;
  int64_t padding = 0; ///< Zeros on each side.

  int64_t outFrames() const {
    return (frames + 2 * padding - kernel) / stride + 1;
  }
  int64_t colsWidth() const { return inChannels * kernel; }
};

/// cols[outFrames, in*k] from x[frames, in] (zeros where t*s - p + j is
/// outside the input).
template <typename T>
void im2col1d(const T *x, T *cols, const Conv1dShape &s);

/// dx[frames, in] from dcols[outFrames, in*k], the adjoint of im2col1d:
/// dx[f, c] = sum of dcols[t, c*k + j] over the (t, j) with t*s - p + j = f,
/// added in ascending j onto 0. Overwrites dx.
template <typename T>
void col2im1d(const T *dcols, T *dx, const Conv1dShape &s);

/// y[outFrames, out] = conv(x[frames, in]); `b` may be null.
template <typename T>
void conv1dForward(const T *x, const T *w, const T *b, T *y,
                   const Conv1dShape &s);

/// dx[frames, in] from dy[outFrames, out] and W.
template <typename T>
void conv1dBackwardInput(const T *dy, const T *w, T *dx, const Conv1dShape &s);

/// dW[out, in, k] += ..., db[out] += sum_t dy (skipped when null).
template <typename T>
void conv1dBackwardWeight(const T *x, const T *dy, T *dw, T *db,
                          const Conv1dShape &s);

/// y[frames, channels] = depthwise conv of x; `b` may be null.
template <typename T>
void depthwiseConv1dForward(const T *x, const T *w, const T *b, T *y,
                            int64_t frames, int64_t channels, int64_t kernel);

template <typename T>
void depthwiseConv1dBackwardInput(const T *dy, const T *w, T *dx,
                                  int64_t frames, int64_t channels,
                                  int64_t kernel);

/// dW[channels, 1, k] += ..., db[channels] += sum_t dy (skipped when null).
template <typename T>
void depthwiseConv1dBackwardWeight(const T *x, const T *dy, T *dw, T *db,
                                   int64_t frames, int64_t channels,
                                   int64_t kernel);

} // namespace cpu
} // namespace kernels
} // namespace mllm

#endif // MLLM_KERNELS_CPU_CONV_H
