//===- AttentionPart.cpp - self-attention over the bitfield kernel --------===//
//
// Multi-head self-attention of the transformer and conformer blocks: the
// q/k/v linears, RoPE or ALiBi, the CPU flash-attention kernel run once per
// sequence of the microbatch against one plan of the shared layout, and the
// output linear. Also the ALiBi slopes.
//
// A TP shard runs its heads only: the output is a partial sum, all-reduced
// before the (whole) output bias, and so is the input gradient. A CP rank
// rotates its own keys, gathers K/V of the whole sequence for its queries,
// and reduce-scatters dK/dV back to their owners before the RoPE backward.
//
//===----------------------------------------------------------------------===//

#include "mllm/runtime/cpu/LayerParts.h"

#include "mllm/kernels/cpu/Rope.h"

#include <cmath>

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

template <typename T>
void AttentionPart<T>::create(ParamList<T> &list, const std::string &prefix,
                              int64_t hidden, int64_t h, int64_t kv, int64_t d,
                              bool qkvBias, bool outBias,
                              llvm::StringRef position, double theta,
                              bool trainable, TensorContext &context) {
  tp = &context;
  const TensorShard &shard = context.shard;
  heads = h / shard.size;
  kvHeads = kv / shard.size;
  headDim = d;
  rope = position == "rope";
  alibi = position == "alibi";
  ropeTheta = theta;
  if (alibi) {
    // The shard's heads keep their slopes of the whole layer.
    std::vector<float> all = alibiSlopes(h);
    slopes.assign(all.begin() + shard.rank * heads,
                  all.begin() + (shard.rank + 1) * heads);
  }
  auto bias = [&](const char *name) {
    return qkvBias ? prefix + name : std::string();
  };
  wq.create(list, prefix + "wq", bias("bq"), hidden, h * d, trainable,
            Split::Column, shard);
  wk.create(list, prefix + "wk", bias("bk"), hidden, kv * d, trainable,
            Split::Column, shard);
  wv.create(list, prefix + "wv", bias("bv"), hidden, kv * d, trainable,
            Split::Column, shard);
  wo.create(list, prefix + "wo", outBias ? prefix + "bo" : "", h * d, hidden,
            trainable, Split::Row, shard);
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
  const int64_t N = seq.keys, qw = heads * headDim, kw = kvHeads * headDim;
  s.q.resize({rows, qw});
  s.o.resize({rows, qw});
  s.lse.resize({S, heads, n});
  // Without CP the keys are this rank's tokens: compute them in place.
  Tensor<T> ownK, ownV;
  Tensor<T> &keys = seq.cpGroup ? ownK : s.k;
  Tensor<T> &values = seq.cpGroup ? ownV : s.v;
  keys.resize({rows, kw});
  values.resize({rows, kw});
  wq.forward(x, s.q.ptr(), rows);
  wk.forward(x, keys.ptr(), rows);
  wv.forward(x, values.ptr(), rows);
  if (rope) {
    for (int64_t i = 0; i < S; ++i) {
      T *q = s.q.ptr() + i * n * qw, *kk = keys.ptr() + i * n * kw;
      k::ropeForward(q, q, seq.positions.data(), n, heads, headDim, ropeTheta);
      k::ropeForward(kk, kk, seq.positions.data(), n, kvHeads, headDim,
                     ropeTheta);
    }
  }
  if (seq.cpGroup)
    gatherKeys(seq, tp->comm, ownK.ptr(), ownV.ptr(), kw, s.k, s.v, tp->layer);
  k::AttentionHeads info = headsInfo();
  for (int64_t i = 0; i < S; ++i)
    k::attentionForward(*seq.plan, info, s.q.ptr() + i * n * qw,
                        s.k.ptr() + i * N * kw, s.v.ptr() + i * N * kw,
                        s.o.ptr() + i * n * qw, s.lse.ptr() + i * heads * n);
  wo.forward(s.o.ptr(), y, rows);
  if (wo.rowParallel) {
    tp->allReduce(y, rows * wo.out, "the attention output");
    wo.addBias(y, rows);
  }
}

template <typename T>
void AttentionPart<T>::backward(const T *dy, const SequenceContext &seq,
                                Saved &s, T *dx) const {
  const int64_t S = seq.sequences, n = seq.tokens, rows = S * n;
  const int64_t N = seq.keys, qw = heads * headDim, kw = kvHeads * headDim;
  Tensor<T> dO({rows, qw});
  wo.backwardInput(dy, dO.ptr(), rows);
  s.dq.resize({rows, qw});
  s.dk.resize({rows, kw});
  s.dv.resize({rows, kw});
  // Under CP the kernel writes dK/dV of every key; its own rows come back
  // summed over the ranks.
  Tensor<T> allK, allV;
  if (seq.cpGroup) {
    allK.resize({S * N, kw});
    allV.resize({S * N, kw});
  }
  T *dk = seq.cpGroup ? allK.ptr() : s.dk.ptr();
  T *dv = seq.cpGroup ? allV.ptr() : s.dv.ptr();
  k::AttentionHeads info = headsInfo();
  for (int64_t i = 0; i < S; ++i) {
    const int64_t qo = i * n * qw, ko = i * N * kw;
    k::attentionBackward(*seq.plan, info, s.q.ptr() + qo, s.k.ptr() + ko,
                         s.v.ptr() + ko, s.o.ptr() + qo,
                         s.lse.ptr() + i * heads * n, dO.ptr() + qo,
                         s.dq.ptr() + qo, dk + ko, dv + ko);
  }
  if (seq.cpGroup)
    scatterKeyGrads(seq, tp->comm, dk, dv, kw, s.dk.ptr(), s.dv.ptr(),
                    tp->layer);
  if (rope) {
    for (int64_t i = 0; i < S; ++i) {
      const int64_t qo = i * n * qw, ko = i * n * kw;
      k::ropeBackward(s.dq.ptr() + qo, s.dq.ptr() + qo, seq.positions.data(), n,
                      heads, headDim, ropeTheta);
      k::ropeBackward(s.dk.ptr() + ko, s.dk.ptr() + ko, seq.positions.data(), n,
                      kvHeads, headDim, ropeTheta);
    }
  }
  wq.backwardInput(s.dq.ptr(), dx, rows);
  wk.backwardInput(s.dk.ptr(), dx, rows, /*accumulate=*/true);
  wv.backwardInput(s.dv.ptr(), dx, rows, /*accumulate=*/true);
  tp->allReduce(dx, rows * wq.in, "the attention's input gradient");
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
template struct AttentionPart<float>;
template struct AttentionPart<double>;
} // namespace mllm::runtime::cpu
