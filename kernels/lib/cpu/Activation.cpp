//===- Activation.cpp - Elementwise and gated activations -----------------===//
//
// Each activation is a functor with value(x) and derivative(x); the plain
// and gated kernels are generic over it. Arithmetic is in T (as PyTorch's
// CPU kernels do for float), with constants rounded to T once.
//
//===----------------------------------------------------------------------===//

#include "mllm/kernels/cpu/Activation.h"
#include "mllm/kernels/cpu/Threads.h"

#include <cmath>

namespace mllm {
namespace kernels {
namespace cpu {

namespace {
template <typename T>
T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

template <typename T>
struct Gelu {
  static T value(T x) {
    const T invSqrt2 = T(0.70710678118654752440);
    return T(0.5) * x * (T(1) + std::erf(x * invSqrt2));
  }
  static T derivative(T x) {
    const T invSqrt2 = T(0.70710678118654752440);
    const T invSqrt2Pi = T(0.39894228040143267794);
    T cdf = T(0.5) * (T(1) + std::erf(x * invSqrt2));
    return cdf + x * invSqrt2Pi * std::exp(T(-0.5) * x * x);
  }
};

template <typename T>
struct GeluTanh {
  static constexpr double kSqrt2OverPi = 0.79788456080286535588;
  static constexpr double kCubic = 0.044715;
  static T value(T x) {
    T inner = T(kSqrt2OverPi) * (x + T(kCubic) * x * x * x);
    return T(0.5) * x * (T(1) + std::tanh(inner));
  }
  static T derivative(T x) {
    T inner = T(kSqrt2OverPi) * (x + T(kCubic) * x * x * x);
    T th = std::tanh(inner);
    T dInner = T(kSqrt2OverPi) * (T(1) + T(3 * kCubic) * x * x);
    return T(0.5) * (T(1) + th) + T(0.5) * x * (T(1) - th * th) * dInner;
  }
};

template <typename T>
struct Relu {
  static T value(T x) { return x > T(0) ? x : T(0); }
  static T derivative(T x) { return x > T(0) ? T(1) : T(0); }
};

template <typename T>
struct Silu {
  static T value(T x) { return x * sigmoid(x); }
  static T derivative(T x) {
    T s = sigmoid(x);
    return s * (T(1) + x * (T(1) - s));
  }
};

template <typename T>
struct Sigmoid {
  static T value(T x) { return sigmoid(x); }
  static T derivative(T x) {
    T s = sigmoid(x);
    return s * (T(1) - s);
  }
};

template <typename Act, typename T>
void unaryForward(const T *x, T *y, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i)
    y[i] = Act::value(x[i]);
}

template <typename Act, typename T>
void unaryBackward(const T *x, const T *dy, T *dx, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i)
    dx[i] = dy[i] * Act::derivative(x[i]);
}

/// out = act(in[actHalf]) * in[other half]; actHalf 0 is [act | linear].
template <typename Act, typename T>
void gatedForward(const T *in, T *out, int64_t tokens, int64_t ffn,
                  int actHalf) {
  int64_t actOff = actHalf * ffn, linOff = (1 - actHalf) * ffn;
#pragma omp parallel for schedule(static) if (tokens * ffn >= kParallelGrain)
  for (int64_t t = 0; t < tokens; ++t) {
    const T *row = in + t * 2 * ffn;
    for (int64_t i = 0; i < ffn; ++i)
      out[t * ffn + i] = Act::value(row[actOff + i]) * row[linOff + i];
  }
}

template <typename Act, typename T>
void gatedBackward(const T *in, const T *dout, T *din, int64_t tokens,
                   int64_t ffn, int actHalf) {
  int64_t actOff = actHalf * ffn, linOff = (1 - actHalf) * ffn;
#pragma omp parallel for schedule(static) if (tokens * ffn >= kParallelGrain)
  for (int64_t t = 0; t < tokens; ++t) {
    const T *row = in + t * 2 * ffn;
    T *drow = din + t * 2 * ffn;
    for (int64_t i = 0; i < ffn; ++i) {
      T a = row[actOff + i], lin = row[linOff + i], g = dout[t * ffn + i];
      drow[actOff + i] = g * lin * Act::derivative(a);
      drow[linOff + i] = g * Act::value(a);
    }
  }
}
} // namespace

template <typename T>
void geluForward(const T *x, T *y, int64_t n) {
  unaryForward<Gelu<T>>(x, y, n);
}
template <typename T>
void geluBackward(const T *x, const T *dy, T *dx, int64_t n) {
  unaryBackward<Gelu<T>>(x, dy, dx, n);
}
template <typename T>
void geluTanhForward(const T *x, T *y, int64_t n) {
  unaryForward<GeluTanh<T>>(x, y, n);
}
template <typename T>
void geluTanhBackward(const T *x, const T *dy, T *dx, int64_t n) {
  unaryBackward<GeluTanh<T>>(x, dy, dx, n);
}
template <typename T>
void reluForward(const T *x, T *y, int64_t n) {
  unaryForward<Relu<T>>(x, y, n);
}
template <typename T>
void reluBackward(const T *x, const T *dy, T *dx, int64_t n) {
  unaryBackward<Relu<T>>(x, dy, dx, n);
}
template <typename T>
void siluForward(const T *x, T *y, int64_t n) {
  unaryForward<Silu<T>>(x, y, n);
}
template <typename T>
void siluBackward(const T *x, const T *dy, T *dx, int64_t n) {
  unaryBackward<Silu<T>>(x, dy, dx, n);
}

template <typename T>
void swigluForward(const T *in, T *out, int64_t tokens, int64_t ffn) {
  gatedForward<Silu<T>>(in, out, tokens, ffn, /*actHalf=*/0);
}
template <typename T>
void swigluBackward(const T *in, const T *dout, T *din, int64_t tokens,
                    int64_t ffn) {
  gatedBackward<Silu<T>>(in, dout, din, tokens, ffn, /*actHalf=*/0);
}
template <typename T>
void gegluForward(const T *in, T *out, int64_t tokens, int64_t ffn) {
  gatedForward<Gelu<T>>(in, out, tokens, ffn, /*actHalf=*/0);
}
template <typename T>
void gegluBackward(const T *in, const T *dout, T *din, int64_t tokens,
                   int64_t ffn) {
  gatedBackward<Gelu<T>>(in, dout, din, tokens, ffn, /*actHalf=*/0);
}
template <typename T>
void gluForward(const T *in, T *out, int64_t tokens, int64_t ffn) {
  gatedForward<Sigmoid<T>>(in, out, tokens, ffn, /*actHalf=*/1);
}
template <typename T>
void gluBackward(const T *in, const T *dout, T *din, int64_t tokens,
                 int64_t ffn) {
  gatedBackward<Sigmoid<T>>(in, dout, din, tokens, ffn, /*actHalf=*/1);
}

#define MLLM_INSTANTIATE_UNARY(T, name)                                        \
  template void name##Forward(const T *, T *, int64_t);                        \
  template void name##Backward(const T *, const T *, T *, int64_t);
#define MLLM_INSTANTIATE_GATED(T, name)                                        \
  template void name##Forward(const T *, T *, int64_t, int64_t);               \
  template void name##Backward(const T *, const T *, T *, int64_t, int64_t);
#define MLLM_INSTANTIATE(T)                                                    \
  MLLM_INSTANTIATE_UNARY(T, gelu)                                              \
  MLLM_INSTANTIATE_UNARY(T, geluTanh)                                          \
  MLLM_INSTANTIATE_UNARY(T, relu)                                              \
  MLLM_INSTANTIATE_UNARY(T, silu)                                              \
  MLLM_INSTANTIATE_GATED(T, swiglu)                                            \
  MLLM_INSTANTIATE_GATED(T, geglu)                                             \
  MLLM_INSTANTIATE_GATED(T, glu)
MLLM_INSTANTIATE(float)
MLLM_INSTANTIATE(double)

} // namespace cpu
} // namespace kernels
} // namespace mllm
