//===- AttentionPart.cpp - self-attention over the bitfield kernel --------===//
//
// Multi-head self-attention of the transformer and conformer blocks: the
// q/k/v linears, RoPE or ALiBi, the CPU flash-attention kernel run once per
// sequence of the microbatch against one plan of the shared layout, and the
// output linear. Also the per-microbatch sequence context (positions, plan)
// and the ALiBi slopes.
//
//===----------------------------------------------------------------------===//

#include "mllm/runtime/cpu/LayerParts.h"

#include "mllm/kernels/cpu/Rope.h"

#include <cmath>
#include <map>
#include <numeric>

using namespace mllm::runtime;
using namespace mllm::runtime::cpu;
using namespace mllm::kernels;
namespace k = mllm::kernels::cpu;

std::vector<float> mllm::runtime::cpu::alibiSlopes(int64_t heads) {
  // Press et al.'s get_slopes: for n a power of two, slope i (from 0) is
  // 2^(-8 (i + 1) / n).
  auto powerOfTwo = [](int64_t n, std::vector<float> &out) {
    for (int64_t i = 0; i < n; ++i)
      out.push_back(
          static_cast<float>(std::exp2(-8.0 * static_cast<double>(i + 1) / n)));
  };
  std::vector<float> slopes;
  int64_t closest = 1;
  while (closest * 2 <= heads)
    closest *= 2;
  powerOfTwo(closest, slopes);
  if (closest == heads)
    return slopes;
  std::vector<float> extra;
  powerOfTwo(2 * closest, extra);
  for (int64_t i = 0; static_cast<int64_t>(slopes.size()) < heads; i += 2)
    slopes.push_back(extra[i]);
  return slopes;
}

/// The kernel's ALiBi distance is the difference of token indices; the
/// layer's is that of positions. They agree when positions step by exactly
/// 1 between consecutive non-padding tokens of a sample (pairs of different
/// samples never attend under the MLLM policy; under Cornstarch's every
/// token is one group).
static void checkAlibiPositions(const TokenLayout &layout, MaskPolicy policy,
                                const std::vector<int64_t> &positions,
                                llvm::StringRef layer) {
  std::map<uint32_t, int64_t> last; // sample -> last token index
  for (int64_t i = 0; i < layout.size(); ++i) {
    if (isPadding(layout.words[i]))
      continue;
    uint32_t sample = policy.kind == PolicyKind::Cornstarch
                          ? 0
                          : segmentSample(layout.segment(i));
    auto [it, fresh] = last.try_emplace(sample, i);
    if (!fresh) {
      int64_t j = it->second;
      if (positions[i] - positions[j] != i - j)
        layerFatal(llvm::Twine(layer) + ": ALiBi needs positions that step " +
                   "by 1 within a sample, but token " + llvm::Twine(j) +
                   " has position " + llvm::Twine(positions[j]) +
                   " and token " + llvm::Twine(i) + " position " +
                   llvm::Twine(positions[i]));
      it->second = i;
    }
  }
}

template <typename T>
SequenceContext
mllm::runtime::cpu::makeSequenceContext(const Batch<T> &batch, int64_t rows,
                                        bool attention, bool alibi,
                                        llvm::StringRef layer) {
  SequenceContext c;
  c.sequences = batch.sequences;
  c.tokens = batch.tokens;
  if (c.sequences < 1 || c.tokens < 1 || rows != c.sequences * c.tokens)
    layerFatal(llvm::Twine(layer) + ": the input has " + llvm::Twine(rows) +
               " rows but the batch says " + llvm::Twine(c.sequences) +
               " sequences x " + llvm::Twine(c.tokens) + " tokens");
  if (batch.positions.empty()) {
    c.positions.resize(c.tokens);
    std::iota(c.positions.begin(), c.positions.end(), int64_t(0));
  } else {
    if (static_cast<int64_t>(batch.positions.size()) != c.tokens)
      layerFatal(llvm::Twine(layer) + ": " +
                 llvm::Twine(batch.positions.size()) + " positions for " +
                 llvm::Twine(c.tokens) + " tokens");
    c.positions = batch.positions;
  }
  if (!attention)
    return c;
  TokenLayout all;
  const TokenLayout *layout = batch.layout;
  if (!layout) {
    // No layout: every token sees every token of its sequence.
    all.words.assign(c.tokens, modalityWord(0));
    layout = &all;
  } else if (layout->size() != c.tokens) {
    layerFatal(llvm::Twine(layer) + ": the layout has " +
               llvm::Twine(layout->size()) + " tokens, the batch " +
               llvm::Twine(c.tokens));
  }
  auto tokens = k::AttentionTokens::whole(*layout, batch.policy);
  std::string why = k::checkAttentionTokens(tokens);
  if (!why.empty())
    layerFatal(llvm::Twine(layer) + ": " + why);
  c.plan =
      std::make_shared<const k::AttentionPlan>(k::prepareAttention(tokens));
  if (alibi)
    checkAlibiPositions(*layout, batch.policy, c.positions, layer);
  return c;
}

template <typename T>
void AttentionPart<T>::create(ParamList<T> &list, const std::string &prefix,
                              int64_t hidden, int64_t h, int64_t kv, int64_t d,
                              bool qkvBias, bool outBias,
                              llvm::StringRef position, double theta,
                              bool trainable) {
  heads = h;
  kvHeads = kv;
  headDim = d;
  rope = position == "rope";
  alibi = position == "alibi";
  ropeTheta = theta;
  if (alibi)
    slopes = alibiSlopes(heads);
  auto bias = [&](const char *name) {
    return qkvBias ? prefix + name : std::string();
  };
  wq.create(list, prefix + "wq", bias("bq"), hidden, h * d, trainable);
  wk.create(list, prefix + "wk", bias("bk"), hidden, kv * d, trainable);
  wv.create(list, prefix + "wv", bias("bv"), hidden, kv * d, trainable);
  wo.create(list, prefix + "wo", outBias ? prefix + "bo" : "", h * d, hidden,
            trainable);
}

template <typename T>
k::AttentionHeads AttentionPart<T>::headsInfo() const {
  k::AttentionHeads info;
  info.heads = heads;
  info.kvHeads = kvHeads;
  info.headDim = headDim;
  info.scale = 1.0 / std::sqrt(static_cast<double>(headDim));
  info.alibiSlopes = alibi ? slopes.data() : nullptr;
  return info;
}

template <typename T>
void AttentionPart<T>::forward(const T *x, T *y, const SequenceContext &seq,
                               Saved &s) const {
  const int64_t S = seq.sequences, n = seq.tokens, rows = S * n;
  const int64_t qw = heads * headDim, kw = kvHeads * headDim;
  s.q.resize({rows, qw});
  s.k.resize({rows, kw});
  s.v.resize({rows, kw});
  s.o.resize({rows, qw});
  s.lse.resize({S, heads, n});
  wq.forward(x, s.q.ptr(), rows);
  wk.forward(x, s.k.ptr(), rows);
  wv.forward(x, s.v.ptr(), rows);
  k::AttentionHeads info = headsInfo();
  for (int64_t i = 0; i < S; ++i) {
    T *q = s.q.ptr() + i * n * qw, *kk = s.k.ptr() + i * n * kw;
    if (rope) {
      k::ropeForward(q, q, seq.positions.data(), n, heads, headDim, ropeTheta);
      k::ropeForward(kk, kk, seq.positions.data(), n, kvHeads, headDim,
                     ropeTheta);
    }
    k::attentionForward(*seq.plan, info, q, kk, s.v.ptr() + i * n * kw,
                        s.o.ptr() + i * n * qw, s.lse.ptr() + i * heads * n);
  }
  wo.forward(s.o.ptr(), y, rows);
}

template <typename T>
void AttentionPart<T>::backward(const T *dy, const SequenceContext &seq,
                                Saved &s, T *dx) const {
  const int64_t S = seq.sequences, n = seq.tokens, rows = S * n;
  const int64_t qw = heads * headDim, kw = kvHeads * headDim;
  Tensor<T> dO({rows, qw});
  wo.backwardInput(dy, dO.ptr(), rows);
  s.dq.resize({rows, qw});
  s.dk.resize({rows, kw});
  s.dv.resize({rows, kw});
  k::AttentionHeads info = headsInfo();
  for (int64_t i = 0; i < S; ++i) {
    const int64_t qo = i * n * qw, ko = i * n * kw;
    k::attentionBackward(*seq.plan, info, s.q.ptr() + qo, s.k.ptr() + ko,
                         s.v.ptr() + ko, s.o.ptr() + qo,
                         s.lse.ptr() + i * heads * n, dO.ptr() + qo,
                         s.dq.ptr() + qo, s.dk.ptr() + ko, s.dv.ptr() + ko);
    if (rope) {
      k::ropeBackward(s.dq.ptr() + qo, s.dq.ptr() + qo, seq.positions.data(), n,
                      heads, headDim, ropeTheta);
      k::ropeBackward(s.dk.ptr() + ko, s.dk.ptr() + ko, seq.positions.data(), n,
                      kvHeads, headDim, ropeTheta);
    }
  }
  wq.backwardInput(s.dq.ptr(), dx, rows);
  wk.backwardInput(s.dk.ptr(), dx, rows, /*accumulate=*/true);
  wv.backwardInput(s.dv.ptr(), dx, rows, /*accumulate=*/true);
}

template <typename T>
void AttentionPart<T>::backwardWeight(const T *x, const T *dy, const Saved &s,
                                      int64_t rows) const {
  wo.backwardWeight(s.o.ptr(), dy, rows);
  wq.backwardWeight(x, s.dq.ptr(), rows);
  wk.backwardWeight(x, s.dk.ptr(), rows);
  wv.backwardWeight(x, s.dv.ptr(), rows);
}

namespace mllm::runtime::cpu {
template SequenceContext makeSequenceContext(const Batch<float> &, int64_t,
                                             bool, bool, llvm::StringRef);
template SequenceContext makeSequenceContext(const Batch<double> &, int64_t,
                                             bool, bool, llvm::StringRef);
template struct AttentionPart<float>;
template struct AttentionPart<double>;
} // namespace mllm::runtime::cpu
