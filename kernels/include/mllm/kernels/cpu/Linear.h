//===- Linear.h - Fully connected layer kernels -----------------*- C++ -*-===//
//
// y = x W^T + b with PyTorch nn.Linear's layout: W is [out, in], x is
// [tokens, in], y is [tokens, out]. The three calls are separate because the
// pipeline schedule runs backward-input and backward-weight as separate
// actions. Forward and input gradients overwrite their output; weight and
// bias gradients accumulate (+=) over microbatches.
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_KERNELS_CPU_LINEAR_H
#define MLLM_KERNELS_CPU_LINEAR_H

#include <cstdint>

namespace mllm {
namespace kernels {
namespace cpu {

/// y[tokens, out] = x[tokens, in] W[out, in]^T + b[out]; `b` may be null.
template <typename T>
void linearForward(const T *x, const T *w, const T *b, T *y, int64_t tokens,
                   int64_t in, int64_t out);

/// dx[tokens, in] = dy[tokens, out] W[out, in]. Needs only W, not x.
template <typename T>
void linearBackwardInput(const T *dy, const T *w, T *dx, int64_t tokens,
                         int64_t in, int64_t out);

/// dW[out, in] += dy^T x; db[out] += sum over tokens of dy (skipped when
/// `db` is null). Needs the forward input x.
template <typename T>
void linearBackwardWeight(const T *x, const T *dy, T *dw, T *db, int64_t tokens,
                          int64_t in, int64_t out);

} // namespace cpu
} // namespace kernels
} // namespace mllm

#endif // MLLM_KERNELS_CPU_LINEAR_H
