//===- Conv.cpp - 1-D convolutions over token-major frames ----------------===//
//
// conv1d reuses the linear kernels on an im2col matrix. Its input gradient
// is a gather (each input frame sums the column entries that read it), not a
// scatter, so threads own input frames and never race. The depthwise
// convolution is direct: with one weight row per channel a GEMM has nothing
// to batch.
//
//===----------------------------------------------------------------------===//

#include "mllm/kernels/cpu/Conv.h"
#include "mllm/kernels/cpu/Elementwise.h"
#include "mllm/kernels/cpu/Linear.h"
#include "mllm/kernels/cpu/Threads.h"

#include <algorithm>
#include <cassert>
#include <vector>

namespace mllm {
namespace kernels {
namespace cpu {

static void checkShape(const Conv1dShape &s) {
  assert(s.kernel >= 1 && s.stride >= 1 && s.padding >= 0 &&
         "bad convolution shape");
  assert(s.frames + 2 * s.padding >= s.kernel && "input shorter than kernel");
  (void)s;
}

template <typename T>
void im2col1d(const T *x, T *cols, const Conv1dShape &s) {
  checkShape(s);
  int64_t outFrames = s.outFrames(), in = s.inChannels, k = s.kernel;
  int64_t width = s.colsWidth();
  const bool parallel = outFrames * width >= kParallelGrain;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t t = 0; t < outFrames; ++t) {
    T *row = cols + t * width;
    for (int64_t j = 0; j < k; ++j) {
      int64_t f = t * s.stride - s.padding + j;
      bool inside = f >= 0 && f < s.frames;
      for (int64_t c = 0; c < in; ++c)
        row[c * k + j] = inside ? x[f * in + c] : T(0);
    }
  }
}

template <typename T>
void conv1dForward(const T *x, const T *w, const T *b, T *y,
                   const Conv1dShape &s) {
  std::vector<T> cols(s.outFrames() * s.colsWidth());
  im2col1d(x, cols.data(), s);
  linearForward(cols.data(), w, b, y, s.outFrames(), s.colsWidth(),
                s.outChannels);
}

template <typename T>
void col2im1d(const T *dcols, T *dx, const Conv1dShape &s) {
  checkShape(s);
  int64_t outFrames = s.outFrames(), in = s.inChannels, k = s.kernel;
  int64_t width = s.colsWidth();
  const bool parallel = s.frames * width >= kParallelGrain;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t f = 0; f < s.frames; ++f) {
    T *row = dx + f * in;
    std::fill(row, row + in, T(0));
    // Output frame t reads f through tap j when t * stride = f + p - j.
    for (int64_t j = 0; j < k; ++j) {
      int64_t q = f + s.padding - j;
      if (q < 0 || q % s.stride != 0 || q / s.stride >= outFrames)
        continue;
      const T *src = dcols + (q / s.stride) * width;
      for (int64_t c = 0; c < in; ++c)
        row[c] += src[c * k + j];
    }
  }
}

template <typename T>
void conv1dBackwardInput(const T *dy, const T *w, T *dx, const Conv1dShape &s) {
  checkShape(s);
  std::vector<T> dcols(s.outFrames() * s.colsWidth());
  linearBackwardInput(dy, w, dcols.data(), s.outFrames(), s.colsWidth(),
                      s.outChannels);
  col2im1d(dcols.data(), dx, s);
}

template <typename T>
void conv1dBackwardWeight(const T *x, const T *dy, T *dw, T *db,
                          const Conv1dShape &s) {
  std::vector<T> cols(s.outFrames() * s.colsWidth());
  im2col1d(x, cols.data(), s);
  linearBackwardWeight(cols.data(), dy, dw, db, s.outFrames(), s.colsWidth(),
                       s.outChannels);
}

template <typename T>
void depthwiseConv1dForward(const T *x, const T *w, const T *b, T *y,
                            int64_t frames, int64_t channels, int64_t kernel) {
  int64_t left = (kernel - 1) / 2;
  const bool parallel = frames * channels * kernel >= kParallelGrain;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t t = 0; t < frames; ++t) {
    T *row = y + t * channels;
    for (int64_t c = 0; c < channels; ++c)
      row[c] = b ? b[c] : T(0);
    for (int64_t j = 0; j < kernel; ++j) {
      int64_t f = t - left + j;
      if (f < 0 || f >= frames)
        continue;
      const T *src = x + f * channels;
      for (int64_t c = 0; c < channels; ++c)
        row[c] += w[c * kernel + j] * src[c];
    }
  }
}

template <typename T>
void depthwiseConv1dBackwardInput(const T *dy, const T *w, T *dx,
                                  int64_t frames, int64_t channels,
                                  int64_t kernel) {
  int64_t left = (kernel - 1) / 2;
  const bool parallel = frames * channels * kernel >= kParallelGrain;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t f = 0; f < frames; ++f) {
    T *row = dx + f * channels;
    std::fill(row, row + channels, T(0));
    // Output frame t reads f through tap j when t = f + left - j.
    for (int64_t j = 0; j < kernel; ++j) {
      int64_t t = f + left - j;
      if (t < 0 || t >= frames)
        continue;
      const T *src = dy + t * channels;
      for (int64_t c = 0; c < channels; ++c)
        row[c] += w[c * kernel + j] * src[c];
    }
  }
}

template <typename T>
void depthwiseConv1dBackwardWeight(const T *x, const T *dy, T *dw, T *db,
                                   int64_t frames, int64_t channels,
                                   int64_t kernel) {
  if (db)
    columnSum(dy, db, frames, channels);
  int64_t left = (kernel - 1) / 2;
  constexpr int64_t block = 64;
  int64_t blocks = (channels + block - 1) / block;
  const bool parallel = frames * channels * kernel >= kParallelGrain;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t bi = 0; bi < blocks; ++bi) {
    int64_t c0 = bi * block, c1 = std::min(channels, c0 + block);
    std::vector<double> acc((c1 - c0) * kernel, 0.0);
    for (int64_t t = 0; t < frames; ++t) {
      const T *g = dy + t * channels;
      for (int64_t j = 0; j < kernel; ++j) {
        int64_t f = t - left + j;
        if (f < 0 || f >= frames)
          continue;
        const T *src = x + f * channels;
        for (int64_t c = c0; c < c1; ++c)
          acc[(c - c0) * kernel + j] += static_cast<double>(g[c]) * src[c];
      }
    }
    for (int64_t c = c0; c < c1; ++c)
      for (int64_t j = 0; j < kernel; ++j)
        dw[c * kernel + j] += static_cast<T>(acc[(c - c0) * kernel + j]);
  }
}

#define MLLM_INSTANTIATE(T)                                                    \
  template void im2col1d(const T *, T *, const Conv1dShape &);                 \
  template void col2im1d(const T *, T *, const Conv1dShape &);                 \
  template void conv1dForward(const T *, const T *, const T *, T *,            \
                              const Conv1dShape &);                            \
  template void conv1dBackwardInput(const T *, const T *, T *,                 \
                                    const Conv1dShape &);                      \
  template void conv1dBackwardWeight(const T *, const T *, T *, T *,           \
                                     const Conv1dShape &);                     \
  template void depthwiseConv1dForward(const T *, const T *, const T *, T *,   \
                                       int64_t, int64_t, int64_t);             \
  template void depthwiseConv1dBackwardInput(const T *, const T *, T *,        \
                                             int64_t, int64_t, int64_t);       \
  template void depthwiseConv1dBackwardWeight(const T *, const T *, T *, T *,  \
                                              int64_t, int64_t, int64_t);
MLLM_INSTANTIATE(float)
MLLM_INSTANTIATE(double)

} // namespace cpu
} // namespace kernels
} // namespace mllm
