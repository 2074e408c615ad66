//===- AttentionTestUtil.h - Dense attention reference ----------*- C++ -*-===//
//
// Problems (a layout, query/key position lists, heads) with random inputs,
// and the O(S^2) dense masked attention the kernel is checked against:
// scores, the mask from buildDenseMask, softmax, PV and the backward written
// out by hand, all in double. Test code only.
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_TEST_UNIT_ATTENTION_ATTENTIONTESTUTIL_H
#define MLLM_TEST_UNIT_ATTENTION_ATTENTIONTESTUTIL_H

#include "mllm/kernels/MaskFamilies.h"
#include "mllm/kernels/cpu/Attention.h"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace mllm {
namespace attention_test {

using namespace mllm::kernels;
using namespace mllm::kernels::cpu;

/// Everything one kernel call needs besides the tensors.
struct Problem {
  TokenLayout layout;
  MaskPolicy policy;
  TileShape tiles;
  /// Always filled (0..S-1 in the plain case).
  std::vector<int64_t> qPos, kPos;
  int64_t heads = 4, kvHeads = 2, headDim = 32;
  double scale = 0.0;        // 0: 1/sqrt(headDim)
  std::vector<float> slopes; // empty: no ALiBi

  AttentionTokens tokens() const;
  AttentionHeads headSpec() const;
  int64_t qLen() const { return static_cast<int64_t>(qPos.size()); }
  int64_t kLen() const { return static_cast<int64_t>(kPos.size()); }
};

/// The plain case: every token of `layout` against every token.
Problem plainProblem(TokenLayout layout, MaskPolicy policy, TileShape tiles,
                     int64_t heads, int64_t kvHeads, int64_t headDim);

/// ALiBi slopes 2^(-8 (h + 1) / heads), the usual geometric series.
std::vector<float> alibiSlopes(int64_t heads);

/// Tile-aligned blocks of `block` tokens (last one ragged) of 0..n-1 in the
/// order given; out-of-range block ids are ignored.
std::vector<int64_t> blockPositions(int64_t n, int64_t block,
                                    const std::vector<int64_t> &order);

/// Random runs of every token kind the predicate distinguishes (padding,
/// shared/private/bidirectional text, causal and bidirectional modality
/// items, sinks, several samples).
TokenLayout randomLayout(std::mt19937_64 &rng, int64_t n);

template <typename T>
struct Inputs {
  std::vector<T> q, k, v, dO;
};

/// Uniform in [-1, 1), seeded.
template <typename T>
Inputs<T> randomInputs(const Problem &p, uint64_t seed);

template <typename T>
struct Outputs {
  std::vector<T> o, lse, dq, dk, dv;
};

/// The kernel: prepare, forward and (if `backward`) backward.
template <typename T>
Outputs<T> runKernel(const Problem &p, const Inputs<T> &in, int threads = 2,
                     bool backward = true);

/// The dense reference in double (inputs converted from T).
template <typename T>
Outputs<double> denseReference(const Problem &p, const Inputs<T> &in);

/// max |a - b| / max(1, max |b|) over finite entries; infinite entries must
/// agree exactly (else returns +inf). `what` names the first mismatch.
template <typename T>
double relativeError(const std::vector<T> &a, const std::vector<double> &b);

} // namespace attention_test
} // namespace mllm

#endif // MLLM_TEST_UNIT_ATTENTION_ATTENTIONTESTUTIL_H
