//===- TransformerBlock.cpp - the pre-norm transformer block --------------===//
//
// h = x + Attn(Norm1(x)), y = h + FFN(Norm2(h)), as a composition of the
// parts in LayerParts.h. The forward keeps every intermediate the backward
// needs; the gradient pass (run by whichever backward call comes first)
// keeps the gradients of the intermediates, so backwardWeight gives the
// same bits with or without a prior backwardInput.
//
// A TP shard splits the attention's heads and the feed-forward's width; the
// parts all-reduce their outputs and input gradients, so the residual
// stream, the norms and their gradients are whole (and equal) on every TP
// rank. Under CP the attention gathers K/V; everything else is token-wise.
//
//===----------------------------------------------------------------------===//

#include "mllm/runtime/cpu/LayerParts.h"

#include "mllm/kernels/cpu/Elementwise.h"

using namespace mllm::runtime;
using namespace mllm::runtime::cpu;
namespace k = mllm::kernels::cpu;

namespace {

template <typename T>
class TransformerBlock final : public LayerBase<T> {
  using LayerBase<T>::config;
  using LayerBase<T>::list;

  NormPart<T> norm1, norm2;
  AttentionPart<T> attn;
  FfnPart<T> ffn;

  struct State : OwnedState {
    SequenceContext seq;
    Tensor<T> x, xn1, h, xn2;
    typename NormPart<T>::Saved n1, n2;
    typename AttentionPart<T>::Saved at;
    typename FfnPart<T>::Saved ff;
    Tensor<T> dh, dxn1, dxn2;
  };

public:
  TransformerBlock(const LayerConfig &c, bool train, const TensorShard &shard)
      : LayerBase<T>("transformer_block", c, train, shard) {
    norm1.create(list, "norm1.", c.hidden, c.layerNorm, train);
    attn.create(list, "", c.hidden, c.heads, c.kvHeads, c.headDim, c.qkvBias,
                c.bias, c.position, c.ropeTheta, train, this->tp);
    norm2.create(list, "norm2.", c.hidden, c.layerNorm, train);
    ffn.create(list, "ffn.", c.hidden, c.ffn, *parseActivation(c.activation),
               c.bias, train, this->tp);
  }

  int64_t outputTokens(int64_t inputTokens) const override {
    return inputTokens;
  }
  int64_t outputWidth() const override { return config.hidden; }

  std::unique_ptr<LayerState>
  forward(const Batch<T> &batch, const Tensor<T> &in, Tensor<T> &out) override {
    const int64_t rows = in.rows(), hd = config.hidden;
    if (in.cols() != hd)
      layerFatal("transformer_block: input width " + llvm::Twine(in.cols()) +
                 ", hidden " + llvm::Twine(hd));
    auto st = std::make_unique<State>();
    st->owner = this;
    st->seq = makeSequenceContext(batch, rows, /*attention=*/true, attn.alibi,
                                  "transformer_block");
    st->x = in;
    st->xn1.resize({rows, hd});
    norm1.forward(st->x.ptr(), st->xn1.ptr(), st->n1, rows);
    st->h.resize({rows, hd});
    attn.forward(st->xn1.ptr(), st->h.ptr(), st->seq, st->at);
    k::add(st->h.ptr(), st->x.ptr(), rows * hd);
    st->xn2.resize({rows, hd});
    norm2.forward(st->h.ptr(), st->xn2.ptr(), st->n2, rows);
    out.resize({rows, hd});
    ffn.forward(st->xn2.ptr(), out.ptr(), st->ff, rows);
    k::add(out.ptr(), st->h.ptr(), rows * hd);
    return st;
  }

  void backwardInput(const Batch<T> &, LayerState &state, const Tensor<T> &dOut,
                     Tensor<T> &dIn) override {
    State &st = ownState<State>(state, this);
    gradients(st, dOut);
    const int64_t rows = st.x.rows();
    dIn.resize({rows, config.hidden});
    norm1.backwardInput(st.dxn1.ptr(), st.x.ptr(), st.n1, dIn.ptr(), rows);
    k::add(dIn.ptr(), st.dh.ptr(), rows * config.hidden);
  }

  void backwardWeight(const Batch<T> &, LayerState &state,
                      const Tensor<T> &dOut) override {
    State &st = ownState<State>(state, this);
    if (!this->trainable)
      return;
    gradients(st, dOut);
    const int64_t rows = st.x.rows();
    ffn.backwardWeight(st.xn2.ptr(), dOut.ptr(), st.ff, rows);
    norm2.backwardWeight(st.dxn2.ptr(), st.h.ptr(), st.n2, rows);
    attn.backwardWeight(st.xn1.ptr(), st.dh.ptr(), st.at, rows);
    norm1.backwardWeight(st.dxn1.ptr(), st.x.ptr(), st.n1, rows);
  }

private:
  /// dxn2, dh, the attention's gradients and dxn1 from dy, once.
  void gradients(State &st, const Tensor<T> &dy) {
    if (st.gradsReady)
      return;
    const int64_t rows = st.x.rows(), hd = config.hidden;
    if (dy.numel() != rows * hd)
      layerFatal("transformer_block: the output gradient has " +
                 llvm::Twine(dy.numel()) + " values, expected " +
                 llvm::Twine(rows * hd));
    st.dxn2.resize({rows, hd});
    ffn.backward(dy.ptr(), st.ff, st.dxn2.ptr(), rows);
    st.dh.resize({rows, hd});
    norm2.backwardInput(st.dxn2.ptr(), st.h.ptr(), st.n2, st.dh.ptr(), rows);
    k::add(st.dh.ptr(), dy.ptr(), rows * hd);
    st.dxn1.resize({rows, hd});
    attn.backward(st.dh.ptr(), st.seq, st.at, st.dxn1.ptr());
    st.gradsReady = true;
  }
};

} // namespace

template <typename T>
std::unique_ptr<Layer<T>>
mllm::runtime::cpu::makeTransformerBlock(const LayerConfig &c, bool train,
                                         const TensorShard &tp) {
  return std::make_unique<TransformerBlock<T>>(c, train, tp);
}

template std::unique_ptr<Layer<float>>
mllm::runtime::cpu::makeTransformerBlock<float>(const LayerConfig &, bool,
                                                const TensorShard &);
template std::unique_ptr<Layer<double>>
mllm::runtime::cpu::makeTransformerBlock<double>(const LayerConfig &, bool,
                                                 const TensorShard &);
