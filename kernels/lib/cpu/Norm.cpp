//===- Norm.cpp - LayerNorm and RMSNorm kernels ---------------------------===//
//
// Rows are independent in the forward and backward-input passes, so threads
// take whole rows. The weight gradients reduce over tokens; threads take
// blocks of columns and walk the rows in order, so the sums do not depend on
// the thread count. Per-row sums are accumulated in double.
//
//===----------------------------------------------------------------------===//

#include "mllm/kernels/cpu/Norm.h"
#include "mllm/kernels/cpu/Elementwise.h"
#include "mllm/kernels/cpu/Threads.h"

#include <algorithm>
#include <cmath>

namespace mllm {
namespace kernels {
namespace cpu {

namespace {
constexpr int64_t kColumnBlock = 256;

/// Two-pass mean and rstd of one row (two passes: var = E[(x - mean)^2] is
/// not subject to the cancellation of E[x^2] - mean^2).
template <typename T>
void rowMeanRstd(const T *x, int64_t dim, double eps, T &mean, T &rstd) {
  double sum = 0;
  for (int64_t i = 0; i < dim; ++i)
    sum += x[i];
  double mu = sum / static_cast<double>(dim);
  double sq = 0;
  for (int64_t i = 0; i < dim; ++i) {
    double d = x[i] - mu;
    sq += d * d;
  }
  mean = static_cast<T>(mu);
  rstd = static_cast<T>(1.0 / std::sqrt(sq / static_cast<double>(dim) + eps));
}

template <typename T>
T rowRmsRstd(const T *x, int64_t dim, double eps) {
  double sq = 0;
  for (int64_t i = 0; i < dim; ++i)
    sq += static_cast<double>(x[i]) * x[i];
  return static_cast<T>(1.0 / std::sqrt(sq / static_cast<double>(dim) + eps));
}
} // namespace

template <typename T>
void layerNormStats(const T *x, T *mean, T *rstd, int64_t tokens, int64_t dim,
                    double eps) {
#pragma omp parallel for schedule(static) if (tokens * dim >= kParallelGrain)
  for (int64_t t = 0; t < tokens; ++t)
    rowMeanRstd(x + t * dim, dim, eps, mean[t], rstd[t]);
}

template <typename T>
void layerNormForward(const T *x, const T *w, const T *b, T *y, T *mean,
                      T *rstd, int64_t tokens, int64_t dim, double eps) {
#pragma omp parallel for schedule(static) if (tokens * dim >= kParallelGrain)
  for (int64_t t = 0; t < tokens; ++t) {
    const T *xr = x + t * dim;
    T *yr = y + t * dim;
    T mu, rs;
    rowMeanRstd(xr, dim, eps, mu, rs);
    if (mean)
      mean[t] = mu;
    if (rstd)
      rstd[t] = rs;
    for (int64_t i = 0; i < dim; ++i) {
      T v = (xr[i] - mu) * rs;
      yr[i] = (w ? v * w[i] : v) + (b ? b[i] : T(0));
    }
  }
}

template <typename T>
void layerNormBackwardInput(const T *dy, const T *x, const T *w, const T *mean,
                            const T *rstd, T *dx, int64_t tokens, int64_t dim) {
#pragma omp parallel for schedule(static) if (tokens * dim >= kParallelGrain)
  for (int64_t t = 0; t < tokens; ++t) {
    const T *xr = x + t * dim, *dyr = dy + t * dim;
    T *dxr = dx + t * dim;
    T mu = mean[t], rs = rstd[t];
    double sumG = 0, sumGX = 0;
    for (int64_t i = 0; i < dim; ++i) {
      T g = w ? dyr[i] * w[i] : dyr[i];
      sumG += g;
      sumGX += static_cast<double>(g) * ((xr[i] - mu) * rs);
    }
    T meanG = static_cast<T>(sumG / static_cast<double>(dim));
    T meanGX = static_cast<T>(sumGX / static_cast<double>(dim));
    for (int64_t i = 0; i < dim; ++i) {
      T g = w ? dyr[i] * w[i] : dyr[i];
      T xhat = (xr[i] - mu) * rs;
      dxr[i] = rs * (g - meanG - xhat * meanGX);
    }
  }
}

template <typename T>
void layerNormBackwardWeight(const T *dy, const T *x, const T *mean,
                             const T *rstd, T *dw, T *db, int64_t tokens,
                             int64_t dim) {
  if (db)
    columnSum(dy, db, tokens, dim);
  if (!dw)
    return;
  int64_t blocks = (dim + kColumnBlock - 1) / kColumnBlock;
#pragma omp parallel for schedule(static) if (tokens * dim >= kParallelGrain)
  for (int64_t bi = 0; bi < blocks; ++bi) {
    int64_t c0 = bi * kColumnBlock, c1 = std::min(dim, c0 + kColumnBlock);
    double acc[kColumnBlock] = {};
    for (int64_t t = 0; t < tokens; ++t) {
      const T *xr = x + t * dim, *dyr = dy + t * dim;
      T mu = mean[t], rs = rstd[t];
      for (int64_t c = c0; c < c1; ++c)
        acc[c - c0] += static_cast<double>(dyr[c]) * ((xr[c] - mu) * rs);
    }
    for (int64_t c = c0; c < c1; ++c)
      dw[c] += static_cast<T>(acc[c - c0]);
  }
}

template <typename T>
void rmsNormStats(const T *x, T *rstd, int64_t tokens, int64_t dim,
                  double eps) {
#pragma omp parallel for schedule(static) if (tokens * dim >= kParallelGrain)
  for (int64_t t = 0; t < tokens; ++t)
    rstd[t] = rowRmsRstd(x + t * dim, dim, eps);
}

template <typename T>
void rmsNormForward(const T *x, const T *w, T *y, T *rstd, int64_t tokens,
                    int64_t dim, double eps) {
#pragma omp parallel for schedule(static) if (tokens * dim >= kParallelGrain)
  for (int64_t t = 0; t < tokens; ++t) {
    const T *xr = x + t * dim;
    T *yr = y + t * dim;
    T rs = rowRmsRstd(xr, dim, eps);
    if (rstd)
      rstd[t] = rs;
    for (int64_t i = 0; i < dim; ++i)
      yr[i] = w ? (xr[i] * rs) * w[i] : xr[i] * rs;
  }
}

template <typename T>
void rmsNormBackwardInput(const T *dy, const T *x, const T *w, const T *rstd,
                          T *dx, int64_t tokens, int64_t dim) {
#pragma omp parallel for schedule(static) if (tokens * dim >= kParallelGrain)
  for (int64_t t = 0; t < tokens; ++t) {
    const T *xr = x + t * dim, *dyr = dy + t * dim;
    T *dxr = dx + t * dim;
    T rs = rstd[t];
    double sumGX = 0;
    for (int64_t i = 0; i < dim; ++i) {
      T g = w ? dyr[i] * w[i] : dyr[i];
      sumGX += static_cast<double>(g) * (xr[i] * rs);
    }
    T meanGX = static_cast<T>(sumGX / static_cast<double>(dim));
    for (int64_t i = 0; i < dim; ++i) {
      T g = w ? dyr[i] * w[i] : dyr[i];
      dxr[i] = rs * (g - (xr[i] * rs) * meanGX);
    }
  }
}

template <typename T>
void rmsNormBackwardWeight(const T *dy, const T *x, const T *rstd, T *dw,
                           int64_t tokens, int64_t dim) {
  int64_t blocks = (dim + kColumnBlock - 1) / kColumnBlock;
#pragma omp parallel for schedule(static) if (tokens * dim >= kParallelGrain)
  for (int64_t bi = 0; bi < blocks; ++bi) {
    int64_t c0 = bi * kColumnBlock, c1 = std::min(dim, c0 + kColumnBlock);
    double acc[kColumnBlock] = {};
    for (int64_t t = 0; t < tokens; ++t) {
      const T *xr = x + t * dim, *dyr = dy + t * dim;
      T rs = rstd[t];
      for (int64_t c = c0; c < c1; ++c)
        acc[c - c0] += static_cast<double>(dyr[c]) * (xr[c] * rs);
    }
    for (int64_t c = c0; c < c1; ++c)
      dw[c] += static_cast<T>(acc[c - c0]);
  }
}

#define MLLM_INSTANTIATE(T)                                                    \
  template void layerNormStats(const T *, T *, T *, int64_t, int64_t, double); \
  template void layerNormForward(const T *, const T *, const T *, T *, T *,    \
                                 T *, int64_t, int64_t, double);               \
  template void layerNormBackwardInput(const T *, const T *, const T *,        \
                                       const T *, const T *, T *, int64_t,     \
                                       int64_t);                               \
  template void layerNormBackwardWeight(                                       \
      const T *, const T *, const T *, const T *, T *, T *, int64_t, int64_t); \
  template void rmsNormStats(const T *, T *, int64_t, int64_t, double);        \
  template void rmsNormForward(const T *, const T *, T *, T *, int64_t,        \
                               int64_t, double);                               \
  template void rmsNormBackwardInput(const T *, const T *, const T *,          \
                                     const T *, T *, int64_t, int64_t);        \
  template void rmsNormBackwardWeight(const T *, const T *, const T *, T *,    \
                                      int64_t, int64_t);
MLLM_INSTANTIATE(float)
MLLM_INSTANTIATE(double)

} // namespace cpu
} // namespace kernels
} // namespace mllm
