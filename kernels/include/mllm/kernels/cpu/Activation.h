//===- Activation.h - Elementwise and gated activations ---------*- C++ -*-===//
//
// Activations have no weights, so each has a forward and an input gradient.
// The input gradient needs the forward *input* x (not the output). Plain
// activations work on a flat buffer of n elements. Gated ones read
// in[tokens, 2 * ffn] laid out as two halves per token, [gate | up] (SwiGLU,
// GeGLU) or [a | b] (GLU), and write out[tokens, ffn]:
//
//   gelu(x)     = 0.5 x (1 + erf(x / sqrt 2))             (nn.GELU())
//   geluTanh(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
//   relu(x)     = max(x, 0), gradient 0 at x == 0         (as PyTorch)
//   silu(x)     = x sigmoid(x)
//   swiglu      = silu(gate) * up
//   geglu       = gelu(gate) * up                          (exact erf GELU)
//   glu         = a * sigmoid(b)                           (F.glu, dim=-1)
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_KERNELS_CPU_ACTIVATION_H
#define MLLM_KERNELS_CPU_ACTIVATION_H

#include <cstdint>

namespace mllm {
namespace kernels {
namespace cpu {

// y may alias x in the forward calls, dx may alias dy in the backward calls.

template <typename T>
void geluForward(const T *x, T *y, int64_t n);
template <typename T>
void geluBackward(const T *x, const T *dy, T *dx, int64_t n);

template <typename T>
void geluTanhForward(const T *x, T *y, int64_t n);
template <typename T>
void geluTanhBackward(const T *x, const T *dy, T *dx, int64_t n);

template <typename T>
void reluForward(const T *x, T *y, int64_t n);
template <typename T>
void reluBackward(const T *x, const T *dy, T *dx, int64_t n);

template <typename T>
void siluForward(const T *x, T *y, int64_t n);
template <typename T>
void siluBackward(const T *x, const T *dy, T *dx, int64_t n);

/// out[t, i] = silu(in[t, i]) * in[t, ffn + i].
template <typename T>
void swigluForward(const T *in, T *out, int64_t tokens, int64_t ffn);
/// din[tokens, 2 * ffn] from in and dout[tokens, ffn].
template <typename T>
void swigluBackward(const T *in, const T *dout, T *din, int64_t tokens,
                    int64_t ffn);

/// out[t, i] = gelu(in[t, i]) * in[t, ffn + i].
template <typename T>
void gegluForward(const T *in, T *out, int64_t tokens, int64_t ffn);
template <typename T>
void gegluBackward(const T *in, const T *dout, T *din, int64_t tokens,
                   int64_t ffn);

/// out[t, i] = in[t, i] * sigmoid(in[t, ffn + i]).
template <typename T>
void gluForward(const T *in, T *out, int64_t tokens, int64_t ffn);
template <typename T>
void gluBackward(const T *in, const T *dout, T *din, int64_t tokens,
                 int64_t ffn);

} // namespace cpu
} // namespace kernels
} // namespace mllm

#endif // MLLM_KERNELS_CPU_ACTIVATION_H
