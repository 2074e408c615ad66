//===- VocabParallel.cpp - the vocabulary slice and its cross-entropy -----===//
//
// Megatron-LM's vocab-parallel cross-entropy: no rank ever holds a whole
// row of logits. The row maximum, then the sums of exp(logit - max) and
// the target logits, are all-reduced; each rank forms lse and the loss
// from them exactly as the unsplit kernel does (max in T, sums and lse in
// double), so the loss equals the unsplit one up to the order of the sum.
//
//===----------------------------------------------------------------------===//

#include "mllm/runtime/cpu/ParallelParts.h"

#include "mllm/kernels/cpu/CrossEntropy.h"

#include <algorithm>
#include <cmath>
#include <limits>

using namespace mllm::runtime;
using namespace mllm::runtime::cpu;
namespace k = mllm::kernels::cpu;

VocabRange mllm::runtime::cpu::vocabRange(int64_t vocab,
                                          const TensorShard &shard) {
  return {vocab * shard.rank / shard.size,
          vocab * (shard.rank + 1) / shard.size};
}

template <typename T>
double mllm::runtime::cpu::vocabParallelCrossEntropyForward(
    TensorContext &tp, const T *logits, const int64_t *targets, double *lse,
    int64_t rows, VocabRange range) {
  const int64_t V = range.size();
  if (!tp.split())
    return k::softmaxCrossEntropyForward(logits, targets, lse, rows, V).lossSum;
  std::vector<T> rowMax(rows);
  for (int64_t t = 0; t < rows; ++t)
    rowMax[t] = *std::max_element(logits + t * V, logits + (t + 1) * V);
  tp.comm.allReduceMax(*tp.shard.group, rowMax.data(), rows,
                       llvm::Twine(tp.layer) +
                           ": TP all-reduce (max) of the logits' row maxima");
  // [sum of exp(logit - max) | target logit] per row, in one all-reduce.
  std::vector<double> sums(2 * rows, 0.0);
  for (int64_t t = 0; t < rows; ++t) {
    const T *row = logits + t * V;
    double s = 0;
    for (int64_t v = 0; v < V; ++v)
      s += static_cast<double>(std::exp(row[v] - rowMax[t]));
    sums[t] = s;
    if (range.contains(targets[t]))
      sums[rows + t] = static_cast<double>(row[targets[t] - range.begin]);
  }
  tp.comm.allReduceSum(*tp.shard.group, sums.data(), 2 * rows,
                       llvm::Twine(tp.layer) +
                           ": TP all-reduce of the softmax sums and target "
                           "logits");
  double lossSum = 0;
  for (int64_t t = 0; t < rows; ++t) {
    lse[t] = static_cast<double>(rowMax[t]) + std::log(sums[t]);
    if (targets[t] != k::kIgnoreIndex)
      lossSum += lse[t] - sums[rows + t];
  }
  return lossSum;
}

template <typename T>
void mllm::runtime::cpu::vocabParallelArgmax(TensorContext &tp, const T *logits,
                                             int64_t *predicted, int64_t rows,
                                             VocabRange range, int64_t limit) {
  const int64_t V = range.size();
  const int64_t scan =
      limit <= range.begin ? 0 : std::min(V, limit - range.begin);
  // This slice's first largest logit per row (an index into it; -1 and
  // -inf: all NaN).
  std::vector<T> best(rows, -std::numeric_limits<T>::infinity());
  std::vector<int64_t> first(rows, -1);
  for (int64_t t = 0; t < rows; ++t) {
    const T *row = logits + t * V;
    for (int64_t v = 0; v < scan; ++v)
      if (!std::isnan(row[v]) && (first[t] < 0 || row[v] > best[t])) {
        best[t] = row[v];
        first[t] = v;
      }
  }
  if (!tp.split()) {
    for (int64_t t = 0; t < rows; ++t)
      predicted[t] = first[t] < 0 ? -1 : range.begin + first[t];
    return;
  }
  std::vector<T> largest(best);
  tp.comm.allReduceMax(*tp.shard.group, largest.data(), rows,
                       llvm::Twine(tp.layer) +
                           ": TP all-reduce (max) of the logits' row maxima");
  std::vector<double> slots(static_cast<size_t>(rows * tp.shard.size), 0.0);
  predictionSlots(best.data(), largest.data(), first.data(), rows, range,
                  tp.shard, slots.data());
  tp.comm.allReduceSum(
      *tp.shard.group, slots.data(), static_cast<int64_t>(slots.size()),
      llvm::Twine(tp.layer) + ": TP all-reduce of the predictions");
  firstPrediction(slots.data(), rows, tp.shard.size, predicted);
}

template <typename T>
void mllm::runtime::cpu::predictionSlots(const T *sliceMax, const T *rowMax,
                                         const int64_t *first, int64_t rows,
                                         VocabRange range,
                                         const TensorShard &shard,
                                         double *slots) {
  double *mine = slots + shard.rank * rows;
  for (int64_t t = 0; t < rows; ++t)
    mine[t] = first[t] >= 0 && sliceMax[t] == rowMax[t]
                  ? static_cast<double>(range.begin + first[t] + 1)
                  : 0.0;
}

void mllm::runtime::cpu::firstPrediction(const double *slots, int64_t rows,
                                         int64_t shards, int64_t *predicted) {
  for (int64_t t = 0; t < rows; ++t) {
    predicted[t] = -1;
    for (int64_t r = 0; r < shards; ++r)
      if (double c = slots[r * rows + t]; c > 0) {
        predicted[t] = static_cast<int64_t>(c) - 1;
        break;
      }
  }
}

template <typename T>
void mllm::runtime::cpu::vocabParallelCrossEntropyBackward(
    const T *logits, const int64_t *targets, const double *lse, T *dlogits,
    double scale, int64_t rows, VocabRange range) {
  const int64_t V = range.size();
  const T s = static_cast<T>(scale);
  for (int64_t t = 0; t < rows; ++t) {
    const T *row = logits + t * V;
    T *drow = dlogits + t * V;
    if (targets[t] == k::kIgnoreIndex) {
      std::fill(drow, drow + V, T(0));
      continue;
    }
    // The kernel's formula: the shift in double, exp in T.
    for (int64_t v = 0; v < V; ++v)
      drow[v] = s * std::exp(static_cast<T>(row[v] - lse[t]));
    if (range.contains(targets[t])) {
      int64_t tg = targets[t] - range.begin;
      drow[tg] = s * (std::exp(static_cast<T>(row[tg] - lse[t])) - T(1));
    }
  }
}

namespace mllm::runtime::cpu {
#define MLLM_INSTANTIATE(T)                                                    \
  template double vocabParallelCrossEntropyForward(TensorContext &, const T *, \
                                                   const int64_t *, double *,  \
                                                   int64_t, VocabRange);       \
  template void vocabParallelCrossEntropyBackward(const T *, const int64_t *,  \
                                                  const double *, T *, double, \
                                                  int64_t, VocabRange);        \
  template void vocabParallelArgmax(TensorContext &, const T *, int64_t *,     \
                                    int64_t, VocabRange, int64_t);             \
  template void predictionSlots(const T *, const T *, const int64_t *,         \
                                int64_t, VocabRange, const TensorShard &,      \
                                double *);
MLLM_INSTANTIATE(float)
MLLM_INSTANTIATE(double)
#undef MLLM_INSTANTIATE
} // namespace mllm::runtime::cpu
