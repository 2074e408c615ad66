//===- Elementwise.h - Residual adds, scaling, token merging ----*- C++ -*-===//
//
// Small helpers the runtime composes layers with: residual accumulation,
// scaling (loss scale, gradient averaging), column sums (bias gradients) and
// token merging, which concatenates `merge` consecutive tokens into one
// wider token (the spatial/temporal merge in front of a VLM/audio projector):
//
//   mergeTokens: x[tokens, dim] -> y[ceil(tokens / merge), merge * dim],
//                y[r, j*dim + d] = x[r*merge + j, d], zeros past the last
//                token.
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_KERNELS_CPU_ELEMENTWISE_H
#define MLLM_KERNELS_CPU_ELEMENTWISE_H

#include <cstdint>

namespace mllm {
namespace kernels {
namespace cpu {

/// y[i] += x[i] (residual add, gradient accumulation).
template <typename T>
void add(T *y, const T *x, int64_t n);

/// y[i] = alpha * x[i]; y may alias x.
template <typename T>
void scale(const T *x, T alpha, T *y, int64_t n);

/// sums[j] += sum_i x[i, j] over x[rows, cols], rows in order, accumulated
/// in double (bias gradients).
template <typename T>
void columnSum(const T *x, T *sums, int64_t rows, int64_t cols);

/// Rows of the merged tensor: ceil(tokens / merge).
inline int64_t mergedTokens(int64_t tokens, int64_t merge) {
  return (tokens + merge - 1) / merge;
}

/// y[mergedTokens, merge * dim] as above.
template <typename T>
void mergeTokensForward(const T *x, T *y, int64_t tokens, int64_t dim,
                        int64_t merge);

/// dx[tokens, dim] = the matching slices of dy (the padding gets no
/// gradient).
template <typename T>
void mergeTokensBackward(const T *dy, T *dx, int64_t tokens, int64_t dim,
                         int64_t merge);

} // namespace cpu
} // namespace kernels
} // namespace mllm

#endif // MLLM_KERNELS_CPU_ELEMENTWISE_H
