//===- CrossEntropy.h - Softmax cross-entropy loss --------------*- C++ -*-===//
//
// Loss over logits[tokens, vocab] with int64 targets. A token whose target is
// the ignore index (-100 by default, as PyTorch) does not count. For a counted
// token with lse = log sum_v exp(logits[t, v]) (max-subtracted):
//
//   loss_t = lse - logits[t, target_t]
//
// The forward returns the sum of loss_t (accumulated in double, in token
// order) and how many tokens counted; the mean loss is sum / count, which the
// caller forms because the count may span microbatches. The backward writes
//
//   dlogits[t, v] = scale * (softmax(logits[t])[v] - [v == target_t])
//
// for counted tokens and zeros for ignored ones; scale is typically
// 1 / (total count). It needs the logits and, optionally, the lse the forward
// saved (one pass over the row instead of three). lse is kept in double even
// for float logits: exp(logit - lse) with an lse rounded to float would be
// off by ulp(lse) relative, 4e-6 already at |logits| ~ 50.
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_KERNELS_CPU_CROSSENTROPY_H
#define MLLM_KERNELS_CPU_CROSSENTROPY_H

#include <cstdint>

namespace mllm {
namespace kernels {
namespace cpu {

constexpr int64_t kIgnoreIndex = -100;

struct CrossEntropyResult {
  double lossSum = 0; ///< Sum of loss_t over counted tokens.
  int64_t count = 0;  ///< Tokens whose target is not the ignore index.
};

/// Writes lse[tokens] when non-null (ignored tokens get theirs too). Targets
/// other than ignoreIndex must be in [0, vocab) (asserted).
template <typename T>
CrossEntropyResult
softmaxCrossEntropyForward(const T *logits, const int64_t *targets, double *lse,
                           int64_t tokens, int64_t vocab,
                           int64_t ignoreIndex = kIgnoreIndex);

/// dlogits as above; `lse` may be null (then recomputed from the logits).
template <typename T>
void softmaxCrossEntropyBackward(const T *logits, const int64_t *targets,
                                 const double *lse, T *dlogits, double scale,
                                 int64_t tokens, int64_t vocab,
                                 int64_t ignoreIndex = kIgnoreIndex);

} // namespace cpu
} // namespace kernels
} // namespace mllm

#endif // MLLM_KERNELS_CPU_CROSSENTROPY_H
