//===- Linear.cpp - Fully connected layer kernels -------------------------===//
//
// Three GEMMs (y = x W^T, dx = dy W, dW += dy^T x) plus the bias: the forward
// pre-fills y with b and lets the GEMM add onto it (beta = 1), saving a pass.
//
//===----------------------------------------------------------------------===//

#include "mllm/kernels/cpu/Linear.h"
#include "mllm/kernels/cpu/Elementwise.h"
#include "mllm/kernels/cpu/Gemm.h"
#include "mllm/kernels/cpu/Threads.h"

#include <cstring>

namespace mllm {
namespace kernels {
namespace cpu {

template <typename T>
void linearForward(const T *x, const T *w, const T *b, T *y, int64_t tokens,
                   int64_t in, int64_t out) {
  T beta = 0;
  if (b) {
#pragma omp parallel for schedule(static) if (tokens * out >= kParallelGrain)
    for (int64_t t = 0; t < tokens; ++t)
      std::memcpy(y + t * out, b, sizeof(T) * out);
    beta = 1;
  }
  gemm<T>(false, true, tokens, out, in, T(1), x, in, w, in, beta, y, out);
}

template <typename T>
void linearBackwardInput(const T *dy, const T *w, T *dx, int64_t tokens,
                         int64_t in, int64_t out) {
  gemm<T>(false, false, tokens, in, out, T(1), dy, out, w, in, T(0), dx, in);
}

template <typename T>
void linearBackwardWeight(const T *x, const T *dy, T *dw, T *db, int64_t tokens,
                          int64_t in, int64_t out) {
  gemm<T>(true, false, out, in, tokens, T(1), dy, out, x, in, T(1), dw, in);
  if (db)
    columnSum(dy, db, tokens, out);
}

#define MLLM_INSTANTIATE(T)                                                    \
  template void linearForward(const T *, const T *, const T *, T *, int64_t,   \
                              int64_t, int64_t);                               \
  template void linearBackwardInput(const T *, const T *, T *, int64_t,        \
                                    int64_t, int64_t);                         \
  template void linearBackwardWeight(const T *, const T *, T *, T *, int64_t,  \
                                     int64_t, int64_t);
MLLM_INSTANTIATE(float)
MLLM_INSTANTIATE(double)

} // namespace cpu
} // namespace kernels
} // namespace mllm
