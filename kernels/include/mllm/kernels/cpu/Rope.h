//===- Rope.h - Rotary position embedding -----------------------*- C++ -*-===//
//
// RoPE on x[tokens, heads, headDim] with the rotate-half convention of Llama
// in Hugging Face transformers: dimension i is paired with i + headDim/2.
// For token t at position p = positions[t] and i in [0, headDim/2):
//
//   inv_i = theta^(-2i / headDim),  a = p * inv_i
//   y[i]           = x[i] cos a - x[i + headDim/2] sin a
//   y[i+headDim/2] = x[i + headDim/2] cos a + x[i] sin a
//
// The angle, its cosine and sine are computed in double and rounded to T
// once. HF builds its cos/sin cache in float32, so at large positions (a few
// thousand) HF's own values are off by up to ~1e-4; ours are the exact ones.
// The backward pass is the inverse rotation (angle -a). Rotation has no
// weights. All calls work in place (y == x, dx == dy).
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_KERNELS_CPU_ROPE_H
#define MLLM_KERNELS_CPU_ROPE_H

#include <cstdint>

namespace mllm {
namespace kernels {
namespace cpu {

/// y = rotate(x) as above; headDim must be even.
template <typename T>
void ropeForward(const T *x, T *y, const int64_t *positions, int64_t tokens,
                 int64_t heads, int64_t headDim, double theta);

/// dx = rotate^-1(dy) (the transpose of the forward rotation).
template <typename T>
void ropeBackward(const T *dy, T *dx, const int64_t *positions, int64_t tokens,
                  int64_t heads, int64_t headDim, double theta);

} // namespace cpu
} // namespace kernels
} // namespace mllm

#endif // MLLM_KERNELS_CPU_ROPE_H
