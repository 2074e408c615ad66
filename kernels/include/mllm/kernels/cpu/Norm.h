//===- Norm.h - LayerNorm and RMSNorm kernels -------------------*- C++ -*-===//
//
// Normalisation over the last (feature) dimension of [tokens, dim], with
// PyTorch's semantics: biased variance, eps inside the square root.
//
//   layerNorm: y = (x - mean) * rstd * w + b,  rstd = 1 / sqrt(var + eps)
//   rmsNorm:   y = x * rstd * w,               rstd = 1 / sqrt(mean(x^2) + eps)
//
// The forward pass saves two (LayerNorm) or one (RMSNorm) value per token:
// mean and rstd. The backward calls take x and these saved statistics rather
// than recomputing them: they cost 8 bytes per token, against a full pass
// over x. A runtime that recomputes activations can call layerNormStats /
// rmsNormStats to rebuild them from x alone. Row statistics are accumulated
// in double whatever T is.
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_KERNELS_CPU_NORM_H
#define MLLM_KERNELS_CPU_NORM_H

#include <cstdint>

namespace mllm {
namespace kernels {
namespace cpu {

/// mean[tokens] and rstd[tokens] of x[tokens, dim].
template <typename T>
void layerNormStats(const T *x, T *mean, T *rstd, int64_t tokens, int64_t dim,
                    double eps);

/// y = (x - mean) * rstd * w + b. `w`/`b` may be null (no affine part, as
/// elementwise_affine=False). Writes mean and rstd when non-null.
template <typename T>
void layerNormForward(const T *x, const T *w, const T *b, T *y, T *mean,
                      T *rstd, int64_t tokens, int64_t dim, double eps);

/// dx from dy, x, w (may be null) and the saved mean/rstd:
/// with g = dy * w and xhat = (x - mean) * rstd,
/// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)).
template <typename T>
void layerNormBackwardInput(const T *dy, const T *x, const T *w, const T *mean,
                            const T *rstd, T *dx, int64_t tokens, int64_t dim);

/// dw += sum_t dy * xhat, db += sum_t dy (each skipped when null).
template <typename T>
void layerNormBackwardWeight(const T *dy, const T *x, const T *mean,
                             const T *rstd, T *dw, T *db, int64_t tokens,
                             int64_t dim);

/// rstd[tokens] of x[tokens, dim].
template <typename T>
void rmsNormStats(const T *x, T *rstd, int64_t tokens, int64_t dim, double eps);

/// y = x * rstd * w (`w` may be null). Writes rstd when non-null.
template <typename T>
void rmsNormForward(const T *x, const T *w, T *y, T *rstd, int64_t tokens,
                    int64_t dim, double eps);

/// With g = dy * w and xhat = x * rstd: dx = rstd * (g - xhat * mean(g*xhat)).
template <typename T>
void rmsNormBackwardInput(const T *dy, const T *x, const T *w, const T *rstd,
                          T *dx, int64_t tokens, int64_t dim);

/// dw += sum_t dy * xhat.
template <typename T>
void rmsNormBackwardWeight(const T *dy, const T *x, const T *rstd, T *dw,
                           int64_t tokens, int64_t dim);

} // namespace cpu
} // namespace kernels
} // namespace mllm

#endif // MLLM_KERNELS_CPU_NORM_H
