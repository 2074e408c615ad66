//===- OnlineSoftmax.h - Shared flash-attention tile logic ------*- C++ -*-===//
//
// The pieces of flash attention over bitfield masks that do not depend on
// where they run: the online-softmax update of one query row, its final
// normalisation and log-sum-exp, the merge of two partial results of a row
// (split-KV or a CP ring step), the backward's dS = P * (dP - delta), the
// ALiBi bias, and the per-pair bit masks of Partial tiles with which a tile
// map is refined. The CPU kernel (kernels/cpu/Attention.h) uses them and the
// CUDA kernel is meant to, so both agree on every -inf corner: a row with no
// visible key has O = 0, LSE = -inf and no gradient.
//
// Header-only; every function is MLLM_HD and works for float and double.
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_KERNELS_ONLINESOFTMAX_H
#define MLLM_KERNELS_ONLINESOFTMAX_H

#include "mllm/kernels/Bitfield.h"
#include "mllm/kernels/TileSummary.h"

#include <cmath>
#include <cstdint>

namespace mllm {
namespace kernels {

//===----------------------------------------------------------------------===//
// Scalars
//===----------------------------------------------------------------------===//

template <typename T>
MLLM_HD inline T negativeInfinity() {
  return -static_cast<T>(INFINITY);
}

// Overloads rather than std:: so the same spelling compiles under nvcc.
MLLM_HD inline float softmaxExp(float x) { return ::expf(x); }
MLLM_HD inline double softmaxExp(double x) { return ::exp(x); }
MLLM_HD inline float softmaxLog(float x) { return ::logf(x); }
MLLM_HD inline double softmaxLog(double x) { return ::log(x); }

//===----------------------------------------------------------------------===//
// Online softmax of one query row
//===----------------------------------------------------------------------===//

/// What folding a new block of scores into a row changes: the new running
/// maximum and the factor that rescales the old sum and accumulator.
template <typename T>
struct SoftmaxStep {
  T max;
  T alpha;
  /// No visible key yet (the new maximum is -inf): the block's
  /// probabilities are all zero and nothing is rescaled.
  bool empty;
};

/// Folds a block whose largest (masked) score is `blockMax` into a row whose
/// running maximum is `oldMax`. Masked scores are -inf, so -inf - -inf never
/// reaches exp: an empty row keeps alpha = 1, a first visible block gets
/// alpha = 0 (the old sum and accumulator are zero anyway).
template <typename T>
MLLM_HD inline SoftmaxStep<T> softmaxStep(T oldMax, T blockMax) {
  T newMax = blockMax > oldMax ? blockMax : oldMax;
  if (newMax == negativeInfinity<T>())
    return {newMax, T(1), true};
  T alpha =
      oldMax == negativeInfinity<T>() ? T(0) : softmaxExp(oldMax - newMax);
  return {newMax, alpha, false};
}

/// exp(s - ref) for a score and a finite reference (a row maximum or LSE);
/// masked scores give exactly 0.
template <typename T>
MLLM_HD inline T softmaxProb(T s, T ref) {
  return s == negativeInfinity<T>() ? T(0) : softmaxExp(s - ref);
}

/// The row's log-sum-exp once every block is folded in; -inf when nothing
/// was visible.
template <typename T>
MLLM_HD inline T softmaxLse(T max, T sum) {
  return sum > T(0) ? max + softmaxLog(sum) : negativeInfinity<T>();
}

/// The factor that turns the accumulator into O: 1/sum, or 0 for a row with
/// nothing visible (O = 0 there, not NaN).
template <typename T>
MLLM_HD inline T softmaxNormalizer(T sum) {
  return sum > T(0) ? T(1) / sum : T(0);
}

/// Two partial results of one row over disjoint key sets, with log-sum-exps
/// `a` and `b`, combine as O = wa * Oa + wb * Ob with log-sum-exp `lse`.
template <typename T>
struct LseMerge {
  T lse, wa, wb;
};

template <typename T>
MLLM_HD inline LseMerge<T> mergeLse(T a, T b) {
  T m = a > b ? a : b;
  if (m == negativeInfinity<T>())
    return {m, T(0), T(0)};
  T ea = softmaxProb(a, m), eb = softmaxProb(b, m);
  T sum = ea + eb;
  return {m + softmaxLog(sum), ea / sum, eb / sum};
}

/// The softmax backward for one score: dS = P * (dP - delta) with
/// delta = rowsum(dO * O). A masked pair has P = 0 and so dS = 0.
template <typename T>
MLLM_HD inline T softmaxGrad(T p, T dp, T delta) {
  return p * (dp - delta);
}

/// ALiBi bias on global positions: zero on the diagonal, negative for keys
/// behind the query when the slope is positive.
template <typename T>
MLLM_HD inline T alibiBias(T slope, int64_t qPos, int64_t kPos) {
  return slope * static_cast<T>(kPos - qPos);
}

//===----------------------------------------------------------------------===//
// Tiles
//===----------------------------------------------------------------------===//

MLLM_HD inline int64_t numTiles(int64_t n, int64_t width) {
  return (n + width - 1) / width;
}

/// Tokens in tile `t` of `n` tokens cut into tiles of `width`.
MLLM_HD inline int64_t tileExtent(int64_t n, int64_t width, int64_t t) {
  int64_t rest = n - t * width;
  return rest < width ? rest : width;
}

/// The low `n` bits set (n <= 64): a row of a tile `n` keys wide with every
/// pair allowed.
MLLM_HD inline uint64_t lowBits(int64_t n) {
  return n >= 64 ? ~0ull : (1ull << n) - 1;
}

/// Bit j set iff the query may attend to key j of the tile (n <= 64 keys,
/// given by their words, segments and global positions). One such word per
/// query row replaces attend() calls in the inner loop of a Partial tile.
MLLM_HD inline uint64_t tileRowBits(MaskPolicy policy, uint64_t qWord,
                                    uint32_t qSeg, int64_t qPos,
                                    const uint64_t *kWords,
                                    const uint32_t *kSegs, const int64_t *kPos,
                                    int64_t n) {
  uint64_t bits = 0;
  for (int64_t j = 0; j < n; ++j)
    if (attend(policy, qWord, qSeg, qPos, kWords[j], kSegs[j], kPos[j]))
      bits |= 1ull << j;
  return bits;
}

/// The class a Partial tile really has once its bit rows are known (m rows,
/// n keys): a tile map is conservative, the bits are exact.
MLLM_HD inline TileClass refineTile(const uint64_t *rowBits, int64_t m,
                                    int64_t n) {
  uint64_t any = 0, all = lowBits(n);
  for (int64_t i = 0; i < m; ++i) {
    any |= rowBits[i];
    all &= rowBits[i];
  }
  if (any == 0)
    return TileClass::Skip;
  return all == lowBits(n) ? TileClass::Full : TileClass::Partial;
}

} // namespace kernels
} // namespace mllm

#endif // MLLM_KERNELS_ONLINESOFTMAX_H
