//===- Rope.cpp - Rotary position embedding -------------------------------===//
//
// Threads take tokens. Each token computes its headDim/2 cosines and sines
// once, in double, and applies them to all heads. Forward and backward are
// one routine: the backward rotates by -a, i.e. flips the sign of sin a.
//
//===----------------------------------------------------------------------===//

#include "mllm/kernels/cpu/Rope.h"
#include "mllm/kernels/cpu/Threads.h"

#include <cassert>
#include <cmath>
#include <vector>

namespace mllm {
namespace kernels {
namespace cpu {

namespace {
template <typename T>
void rotate(const T *x, T *y, const int64_t *positions, int64_t tokens,
            int64_t heads, int64_t headDim, double theta, double sign) {
  assert(headDim % 2 == 0 && "RoPE needs an even head dimension");
  int64_t half = headDim / 2;
  std::vector<double> invFreq(half);
  for (int64_t i = 0; i < half; ++i)
    invFreq[i] = std::pow(theta, -2.0 * static_cast<double>(i) /
                                     static_cast<double>(headDim));
#pragma omp parallel if (tokens * heads * headDim >= kParallelGrain)
  {
    std::vector<T> cosA(half), sinA(half);
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tokens; ++t) {
      double pos = static_cast<double>(positions[t]);
      for (int64_t i = 0; i < half; ++i) {
        double a = pos * invFreq[i];
        cosA[i] = static_cast<T>(std::cos(a));
        sinA[i] = static_cast<T>(sign * std::sin(a));
      }
      for (int64_t h = 0; h < heads; ++h) {
        const T *xr = x + (t * heads + h) * headDim;
        T *yr = y + (t * heads + h) * headDim;
        for (int64_t i = 0; i < half; ++i) {
          // Read both before writing either: y may alias x.
          T x1 = xr[i], x2 = xr[i + half];
          yr[i] = x1 * cosA[i] - x2 * sinA[i];
          yr[i + half] = x2 * cosA[i] + x1 * sinA[i];
        }
      }
    }
  }
}
} // namespace

template <typename T>
void ropeForward(const T *x, T *y, const int64_t *positions, int64_t tokens,
                 int64_t heads, int64_t headDim, double theta) {
  rotate(x, y, positions, tokens, heads, headDim, theta, 1.0);
}

template <typename T>
void ropeBackward(const T *dy, T *dx, const int64_t *positions, int64_t tokens,
                  int64_t heads, int64_t headDim, double theta) {
  rotate(dy, dx, positions, tokens, heads, headDim, theta, -1.0);
}

#define MLLM_INSTANTIATE(T)                                                    \
  template void ropeForward(const T *, T *, const int64_t *, int64_t, int64_t, \
                            int64_t, double);                                  \
  template void ropeBackward(const T *, T *, const int64_t *, int64_t,         \
                             int64_t, int64_t, double);
MLLM_INSTANTIATE(float)
MLLM_INSTANTIATE(double)

} // namespace cpu
} // namespace kernels
} // namespace mllm
