//===- AttentionPool.cpp - SigLIP's multi-head attention pooling ----------===//
//
// The MAP head of SigLIP: a learned probe [1, hidden] attends (multi-head,
// biases on q/k/v/out, no mask) over all tokens of its item, then an MLP
// residual after a LayerNorm (GELU with the tanh approximation, as SigLIP).
// One output token per item.
//
//===----------------------------------------------------------------------===//

#include "mllm/runtime/cpu/LayerParts.h"

#include "mllm/kernels/cpu/Elementwise.h"

#include <cmath>

using namespace mllm::runtime;
using namespace mllm::runtime::cpu;
using namespace mllm::kernels;
namespace k = mllm::kernels::cpu;

namespace {

template <typename T>
class AttentionPool final : public LayerBase<T> {
  using LayerBase<T>::config;
  using LayerBase<T>::list;

  Param<T> *probe = nullptr;
  LinearPart<T> wq, wk, wv, wo, fc1, fc2;
  NormPart<T> norm;

  struct State : OwnedState {
    int64_t items = 0, tokens = 0;
    std::shared_ptr<const k::AttentionPlan> plan;
    // probes [items, h], x, q/k/v/o, lse [items, heads], a = attention out,
    // n = norm(a), u = fc1(n), g = gelu(u).
    Tensor<T> p, x, q, kk, v, o, lse, a, n, u, g;
    typename NormPart<T>::Saved ns;
    Tensor<T> du, dn, da, dq, dk, dv;
  };

  k::AttentionHeads headsInfo() const {
    k::AttentionHeads info;
    info.heads = info.kvHeads = config.heads;
    info.headDim = config.hidden / config.heads;
    info.scale = 1.0 / std::sqrt(static_cast<double>(info.headDim));
    return info;
  }

public:
  AttentionPool(const LayerConfig &c, bool train)
      : LayerBase<T>("attention_pool", c, train) {
    const int64_t h = c.hidden;
    probe = list.add("probe", {1, h}, ParamInit::Normal, train);
    wq.create(list, "wq", "bq", h, h, train);
    wk.create(list, "wk", "bk", h, h, train);
    wv.create(list, "wv", "bv", h, h, train);
    wo.create(list, "wo", "bo", h, h, train);
    norm.create(list, "norm.", h, /*layerNorm=*/true, train);
    fc1.create(list, "mlp.fc1.weight", "mlp.fc1.bias", h, c.ffn, train);
    fc2.create(list, "mlp.fc2.weight", "mlp.fc2.bias", c.ffn, h, train);
  }
  int64_t outputTokens(int64_t) const override { return 1; }
  int64_t outputWidth() const override { return config.hidden; }

  std::unique_ptr<LayerState>
  forward(const Batch<T> &batch, const Tensor<T> &in, Tensor<T> &out) override {
    const int64_t h = config.hidden, H = config.heads, rows = in.rows();
    if (in.cols() != h)
      layerFatal("attention_pool: input width " + llvm::Twine(in.cols()) +
                 ", hidden " + llvm::Twine(h));
    SequenceContext seq =
        makeSequenceContext(batch, rows, false, false, "attention_pool");
    auto st = std::make_unique<State>();
    State &s = *st;
    s.owner = this;
    s.items = seq.sequences;
    s.tokens = seq.tokens;
    // One query (the probe, placed at token 0) over every token of the
    // item: an all-visible layout, whatever the batch's mask.
    TokenLayout all;
    all.words.assign(s.tokens, modalityWord(0));
    k::AttentionTokens t;
    t.layout = &all;
    const int64_t zero = 0;
    t.qPos = &zero;
    t.qLen = 1;
    t.kLen = s.tokens;
    s.plan = std::make_shared<const k::AttentionPlan>(k::prepareAttention(t));

    s.p.resize({s.items, h});
    for (int64_t i = 0; i < s.items; ++i)
      std::copy(probe->value.data.begin(), probe->value.data.end(),
                s.p.ptr() + i * h);
    s.x = in;
    s.q.resize({s.items, h});
    s.kk.resize({rows, h});
    s.v.resize({rows, h});
    s.o.resize({s.items, h});
    s.lse.resize({s.items, H});
    wq.forward(s.p.ptr(), s.q.ptr(), s.items);
    wk.forward(s.x.ptr(), s.kk.ptr(), rows);
    wv.forward(s.x.ptr(), s.v.ptr(), rows);
    k::AttentionHeads info = headsInfo();
    for (int64_t i = 0; i < s.items; ++i)
      k::attentionForward(
          *s.plan, info, s.q.ptr() + i * h, s.kk.ptr() + i * s.tokens * h,
          s.v.ptr() + i * s.tokens * h, s.o.ptr() + i * h, s.lse.ptr() + i * H);
    s.a.resize({s.items, h});
    wo.forward(s.o.ptr(), s.a.ptr(), s.items);
    s.n.resize({s.items, h});
    norm.forward(s.a.ptr(), s.n.ptr(), s.ns, s.items);
    s.u.resize({s.items, config.ffn});
    s.g.resize({s.items, config.ffn});
    fc1.forward(s.n.ptr(), s.u.ptr(), s.items);
    activationForward(Activation::GeluTanh, s.u.ptr(), s.g.ptr(), s.items,
                      config.ffn);
    out.resize({s.items, h});
    fc2.forward(s.g.ptr(), out.ptr(), s.items);
    k::add(out.ptr(), s.a.ptr(), s.items * h);
    return st;
  }

  void backwardInput(const Batch<T> &, LayerState &state, const Tensor<T> &dOut,
                     Tensor<T> &dIn) override {
    State &s = ownState<State>(state, this);
    gradients(s, dOut);
    const int64_t rows = s.x.rows();
    dIn.resize({rows, config.hidden});
    wk.backwardInput(s.dk.ptr(), dIn.ptr(), rows);
    wv.backwardInput(s.dv.ptr(), dIn.ptr(), rows, /*accumulate=*/true);
  }

  void backwardWeight(const Batch<T> &, LayerState &state,
                      const Tensor<T> &dOut) override {
    State &s = ownState<State>(state, this);
    if (!this->trainable)
      return;
    gradients(s, dOut);
    const int64_t rows = s.x.rows(), h = config.hidden;
    fc2.backwardWeight(s.g.ptr(), dOut.ptr(), s.items);
    fc1.backwardWeight(s.n.ptr(), s.du.ptr(), s.items);
    norm.backwardWeight(s.dn.ptr(), s.a.ptr(), s.ns, s.items);
    wo.backwardWeight(s.o.ptr(), s.da.ptr(), s.items);
    wq.backwardWeight(s.p.ptr(), s.dq.ptr(), s.items);
    wk.backwardWeight(s.x.ptr(), s.dk.ptr(), rows);
    wv.backwardWeight(s.x.ptr(), s.dv.ptr(), rows);
    // The probe is every item's query input: its gradient sums the items'.
    Tensor<T> dp({s.items, h});
    wq.backwardInput(s.dq.ptr(), dp.ptr(), s.items);
    k::columnSum(dp.ptr(), probe->grad.ptr(), s.items, h);
  }

private:
  void gradients(State &s, const Tensor<T> &dy) {
    if (s.gradsReady)
      return;
    const int64_t h = config.hidden, H = config.heads, rows = s.x.rows();
    if (dy.numel() != s.items * h)
      layerFatal("attention_pool: the output gradient has " +
                 llvm::Twine(dy.numel()) + " values, expected " +
                 llvm::Twine(s.items * h));
    Tensor<T> dg({s.items, config.ffn});
    fc2.backwardInput(dy.ptr(), dg.ptr(), s.items);
    s.du.resize({s.items, config.ffn});
    activationBackward(Activation::GeluTanh, s.u.ptr(), dg.ptr(), s.du.ptr(),
                       s.items, config.ffn);
    s.dn.resize({s.items, h});
    fc1.backwardInput(s.du.ptr(), s.dn.ptr(), s.items);
    s.da.resize({s.items, h});
    norm.backwardInput(s.dn.ptr(), s.a.ptr(), s.ns, s.da.ptr(), s.items);
    k::add(s.da.ptr(), dy.ptr(), s.items * h);
    Tensor<T> dO({s.items, h});
    wo.backwardInput(s.da.ptr(), dO.ptr(), s.items);
    s.dq.resize({s.items, h});
    s.dk.resize({rows, h});
    s.dv.resize({rows, h});
    k::AttentionHeads info = headsInfo();
    const int64_t kv = s.tokens * h;
    for (int64_t i = 0; i < s.items; ++i)
      k::attentionBackward(*s.plan, info, s.q.ptr() + i * h,
                           s.kk.ptr() + i * kv, s.v.ptr() + i * kv,
                           s.o.ptr() + i * h, s.lse.ptr() + i * H,
                           dO.ptr() + i * h, s.dq.ptr() + i * h,
                           s.dk.ptr() + i * kv, s.dv.ptr() + i * kv);
    s.gradsReady = true;
  }
};

} // namespace

template <typename T>
std::unique_ptr<Layer<T>>
mllm::runtime::cpu::makeAttentionPool(const LayerConfig &c, bool train) {
  return std::make_unique<AttentionPool<T>>(c, train);
}

template std::unique_ptr<Layer<float>>
mllm::runtime::cpu::makeAttentionPool<float>(const LayerConfig &, bool);
template std::unique_ptr<Layer<double>>
mllm::runtime::cpu::makeAttentionPool<double>(const LayerConfig &, bool);
