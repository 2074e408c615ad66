//===- CrossEntropy.cpp - Softmax cross-entropy loss ----------------------===//
//
// Rows are independent; threads take rows and write each row's loss into a
// buffer that one thread then sums in token order, so the loss sum does not
// depend on the thread count (an OpenMP reduction clause would).
//
//===----------------------------------------------------------------------===//

#include "mllm/kernels/cpu/CrossEntropy.h"
#include "mllm/kernels/cpu/Threads.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <vector>

namespace mllm {
namespace kernels {
namespace cpu {

namespace {
/// log sum_v exp(row[v]), shifted by the row maximum so exp never overflows.
template <typename T>
double rowLogSumExp(const T *row, int64_t vocab) {
  T m = *std::max_element(row, row + vocab);
  double sum = 0;
  for (int64_t v = 0; v < vocab; ++v)
    sum += static_cast<double>(std::exp(row[v] - m));
  return static_cast<double>(m) + std::log(sum);
}

bool counted(int64_t target, int64_t vocab, int64_t ignoreIndex) {
  if (target == ignoreIndex)
    return false;
  assert(target >= 0 && target < vocab && "target out of range");
  (void)vocab;
  return true;
}
} // namespace

template <typename T>
CrossEntropyResult
softmaxCrossEntropyForward(const T *logits, const int64_t *targets, double *lse,
                           int64_t tokens, int64_t vocab, int64_t ignoreIndex) {
  std::vector<double> losses(tokens, 0.0);
#pragma omp parallel for schedule(static) if (tokens * vocab >= kParallelGrain)
  for (int64_t t = 0; t < tokens; ++t) {
    const T *row = logits + t * vocab;
    double l = rowLogSumExp(row, vocab);
    if (lse)
      lse[t] = l;
    if (counted(targets[t], vocab, ignoreIndex))
      losses[t] = l - static_cast<double>(row[targets[t]]);
  }
  CrossEntropyResult result;
  for (int64_t t = 0; t < tokens; ++t) {
    if (targets[t] == ignoreIndex)
      continue;
    result.lossSum += losses[t];
    ++result.count;
  }
  return result;
}

template <typename T>
void softmaxCrossEntropyBackward(const T *logits, const int64_t *targets,
                                 const double *lse, T *dlogits, double scale,
                                 int64_t tokens, int64_t vocab,
                                 int64_t ignoreIndex) {
#pragma omp parallel for schedule(static) if (tokens * vocab >= kParallelGrain)
  for (int64_t t = 0; t < tokens; ++t) {
    const T *row = logits + t * vocab;
    T *drow = dlogits + t * vocab;
    if (!counted(targets[t], vocab, ignoreIndex)) {
      std::fill(drow, drow + vocab, T(0));
      continue;
    }
    double l = lse ? lse[t] : rowLogSumExp(row, vocab);
    T s = static_cast<T>(scale);
    // The shift is formed in double, so lse is never rounded to T; exp in T.
    for (int64_t v = 0; v < vocab; ++v)
      drow[v] = s * std::exp(static_cast<T>(row[v] - l));
    // s * (p - 1) rather than s * p - s: one rounding fewer where p -> 1.
    int64_t tg = targets[t];
    drow[tg] = s * (std::exp(static_cast<T>(row[tg] - l)) - T(1));
  }
}

#define MLLM_INSTANTIATE(T)                                                    \
  template CrossEntropyResult softmaxCrossEntropyForward(                      \
      const T *, const int64_t *, double *, int64_t, int64_t, int64_t);        \
  template void softmaxCrossEntropyBackward(const T *, const int64_t *,        \
                                            const double *, T *, double,       \
                                            int64_t, int64_t, int64_t);
MLLM_INSTANTIATE(float)
MLLM_INSTANTIATE(double)

} // namespace cpu
} // namespace kernels
} // namespace mllm
