//===- Elementwise.cpp - Residual adds, scaling, token merging ------------===//
//
// Every loop gives each output element to exactly one thread and computes it
// the same way whatever the partition, so results do not depend on the
// thread count. columnSum splits the columns, never the rows, for that reason.
//
//===----------------------------------------------------------------------===//

#include "mllm/kernels/cpu/Elementwise.h"
#include "mllm/kernels/cpu/Threads.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <vector>

namespace mllm {
namespace kernels {
namespace cpu {

template <typename T>
void add(T *y, const T *x, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i)
    y[i] += x[i];
}

template <typename T>
void scale(const T *x, T alpha, T *y, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i)
    y[i] = alpha * x[i];
}

template <typename T>
void columnSum(const T *x, T *sums, int64_t rows, int64_t cols) {
  // Blocks of columns: each thread streams its block down all rows, keeping
  // the running sums in double (thousands of tokens would lose bits in
  // float).
  constexpr int64_t block = 256;
  int64_t blocks = (cols + block - 1) / block;
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelGrain)
  for (int64_t bi = 0; bi < blocks; ++bi) {
    int64_t c0 = bi * block, c1 = std::min(cols, c0 + block);
    double acc[block] = {};
    for (int64_t r = 0; r < rows; ++r) {
      const T *row = x + r * cols;
      for (int64_t c = c0; c < c1; ++c)
        acc[c - c0] += row[c];
    }
    for (int64_t c = c0; c < c1; ++c)
      sums[c] += static_cast<T>(acc[c - c0]);
  }
}

template <typename T>
void mergeTokensForward(const T *x, T *y, int64_t tokens, int64_t dim,
                        int64_t merge) {
  assert(merge >= 1 && "merge factor must be positive");
  // Row-major storage makes merging a copy; only the tail needs zeros.
  std::memcpy(y, x, sizeof(T) * tokens * dim);
  int64_t padded = mergedTokens(tokens, merge) * merge;
  std::fill(y + tokens * dim, y + padded * dim, T(0));
}

template <typename T>
void mergeTokensBackward(const T *dy, T *dx, int64_t tokens, int64_t dim,
                         int64_t merge) {
  assert(merge >= 1 && "merge factor must be positive");
  (void)merge; // The padding rows of dy are simply not read.
  std::memcpy(dx, dy, sizeof(T) * tokens * dim);
}

#define MLLM_INSTANTIATE(T)                                                    \
  template void add(T *, const T *, int64_t);                                  \
  template void scale(const T *, T, T *, int64_t);                             \
  template void columnSum(const T *, T *, int64_t, int64_t);                   \
  template void mergeTokensForward(const T *, T *, int64_t, int64_t, int64_t); \
  template void mergeTokensBackward(const T *, T *, int64_t, int64_t, int64_t);
MLLM_INSTANTIATE(float)
MLLM_INSTANTIATE(double)

} // namespace cpu
} // namespace kernels
} // namespace mllm
