//===- ConformerBlock.cpp - the macaron conformer block -------------------===//
//
// Gulati et al.'s block, pre-norm: x + FFN1/2, + MHSA, + the convolution
// module, + FFN2/2, then a final norm. The convolution module is pointwise
// h -> 2h, GLU, depthwise 'same' convolution over each sequence, a
// LayerNorm over channels where the paper has BatchNorm, SiLU, pointwise
// h -> h. BatchNorm would normalise with statistics of the whole
// microbatch, so a token's output would depend on how the global batch is
// split into microbatches and ranks, and a parallel run could not match the
// serial one; the LayerNorm has the same parameters (weight and bias per
// channel) and depends on the token alone.
//
// A TP shard splits the attention's heads and both feed-forwards' width
// (their parts all-reduce); the convolution module runs whole on every TP
// rank (its LayerNorm needs every channel). Context parallelism is refused:
// the depthwise convolution needs each token's neighbours.
//
//===----------------------------------------------------------------------===//

#include "mllm/runtime/cpu/LayerParts.h"

#include "mllm/kernels/cpu/Activation.h"
#include "mllm/kernels/cpu/Conv.h"
#include "mllm/kernels/cpu/Elementwise.h"

using namespace mllm::runtime;
using namespace mllm::runtime::cpu;
namespace k = mllm::kernels::cpu;

namespace {

template <typename T>
class ConformerBlock final : public LayerBase<T> {
  using LayerBase<T>::config;
  using LayerBase<T>::list;

  NormPart<T> ffn1Norm, attnNorm, convNorm, ffn2Norm, finalNorm, bnNorm;
  FfnPart<T> ffn1, ffn2;
  AttentionPart<T> attn;
  LinearPart<T> pw1, pw2;
  Param<T> *dwW = nullptr, *dwB = nullptr;

  using NormSaved = typename NormPart<T>::Saved;
  using FfnSaved = typename FfnPart<T>::Saved;
  struct State : OwnedState {
    SequenceContext seq;
    // Forward intermediates, in order.
    Tensor<T> x0, n1, x1, n2, x2, n3, p1, g, dc, ln, s, x3, n4, x4;
    NormSaved sn1, sn2, sn3, sbn, sn4, sOut;
    FfnSaved f1, f2;
    typename AttentionPart<T>::Saved at;
    // Gradients of the intermediates (the gradient pass).
    Tensor<T> dx4, df2, dn4, dx3, dln, ddc, dp1, dn3, dx2, dn2, dx1, df1, dn1;
  };

public:
  ConformerBlock(const LayerConfig &c, bool train, const TensorShard &shard)
      : LayerBase<T>("conformer_block", c, train, shard) {
    const int64_t h = c.hidden;
    Activation act = *parseActivation(c.activation);
    ffn1Norm.create(list, "ffn1_norm.", h, c.layerNorm, train);
    ffn1.create(list, "ffn1.", h, c.ffn, act, c.bias, train, this->tp);
    attnNorm.create(list, "attn_norm.", h, c.layerNorm, train);
    attn.create(list, "", h, c.heads, c.kvHeads, c.headDim, c.qkvBias, c.bias,
                c.position, c.ropeTheta, train, this->tp);
    convNorm.create(list, "conv_norm.", h, c.layerNorm, train);
    pw1.create(list, "conv.pw1.weight", c.bias ? "conv.pw1.bias" : "", h, 2 * h,
               train);
    dwW = list.add("conv.dw.weight", {h, 1, c.convKernel}, ParamInit::Normal,
                   train);
    if (c.bias)
      dwB = list.add("conv.dw.bias", {h}, ParamInit::Zeros, train);
    // In place of BatchNorm: always a LayerNorm with weight and bias.
    bnNorm.create(list, "conv.norm.", h, /*layerNorm=*/true, train);
    pw2.create(list, "conv.pw2.weight", c.bias ? "conv.pw2.bias" : "", h, h,
               train);
    ffn2Norm.create(list, "ffn2_norm.", h, c.layerNorm, train);
    ffn2.create(list, "ffn2.", h, c.ffn, act, c.bias, train, this->tp);
    finalNorm.create(list, "final_norm.", h, c.layerNorm, train);
  }

  int64_t outputTokens(int64_t inputTokens) const override {
    return inputTokens;
  }
  int64_t outputWidth() const override { return config.hidden; }

  std::unique_ptr<LayerState>
  forward(const Batch<T> &batch, const Tensor<T> &in, Tensor<T> &out) override {
    const int64_t rows = in.rows(), h = config.hidden, n = rows * h;
    if (in.cols() != h)
      layerFatal("conformer_block: input width " + llvm::Twine(in.cols()) +
                 ", hidden " + llvm::Twine(h));
    if (batch.cp)
      layerFatal("conformer_block: context parallelism is not supported (the "
                 "depthwise convolution needs each token's neighbours)");
    auto st = std::make_unique<State>();
    State &s = *st;
    s.owner = this;
    s.seq = makeSequenceContext(batch, rows, /*attention=*/true, attn.alibi,
                                "conformer_block");
    Tensor<T> tmp({rows, h});
    s.x0 = in;
    // x1 = x0 + FFN1(norm(x0)) / 2
    s.n1.resize({rows, h});
    ffn1Norm.forward(s.x0.ptr(), s.n1.ptr(), s.sn1, rows);
    ffn1.forward(s.n1.ptr(), tmp.ptr(), s.f1, rows);
    halfResidual(s.x1, s.x0, tmp);
    // x2 = x1 + MHSA(norm(x1))
    s.n2.resize({rows, h});
    attnNorm.forward(s.x1.ptr(), s.n2.ptr(), s.sn2, rows);
    s.x2.resize({rows, h});
    attn.forward(s.n2.ptr(), s.x2.ptr(), s.seq, s.at);
    k::add(s.x2.ptr(), s.x1.ptr(), n);
    // x3 = x2 + Conv(norm(x2))
    s.n3.resize({rows, h});
    convNorm.forward(s.x2.ptr(), s.n3.ptr(), s.sn3, rows);
    s.p1.resize({rows, 2 * h});
    pw1.forward(s.n3.ptr(), s.p1.ptr(), rows);
    s.g.resize({rows, h});
    k::gluForward(s.p1.ptr(), s.g.ptr(), rows, h);
    s.dc.resize({rows, h});
    const int64_t len = s.seq.tokens, kw = config.convKernel;
    for (int64_t i = 0; i < s.seq.sequences; ++i)
      k::depthwiseConv1dForward(s.g.ptr() + i * len * h, dwW->value.ptr(),
                                dwB ? dwB->value.ptr() : nullptr,
                                s.dc.ptr() + i * len * h, len, h, kw);
    s.ln.resize({rows, h});
    bnNorm.forward(s.dc.ptr(), s.ln.ptr(), s.sbn, rows);
    s.s.resize({rows, h});
    activationForward(Activation::Silu, s.ln.ptr(), s.s.ptr(), rows, h);
    s.x3.resize({rows, h});
    pw2.forward(s.s.ptr(), s.x3.ptr(), rows);
    k::add(s.x3.ptr(), s.x2.ptr(), n);
    // x4 = x3 + FFN2(norm(x3)) / 2
    s.n4.resize({rows, h});
    ffn2Norm.forward(s.x3.ptr(), s.n4.ptr(), s.sn4, rows);
    ffn2.forward(s.n4.ptr(), tmp.ptr(), s.f2, rows);
    halfResidual(s.x4, s.x3, tmp);
    out.resize({rows, h});
    finalNorm.forward(s.x4.ptr(), out.ptr(), s.sOut, rows);
    return st;
  }

  void backwardInput(const Batch<T> &, LayerState &state, const Tensor<T> &dOut,
                     Tensor<T> &dIn) override {
    State &s = ownState<State>(state, this);
    gradients(s, dOut);
    const int64_t rows = s.x0.rows();
    dIn.resize({rows, config.hidden});
    ffn1Norm.backwardInput(s.dn1.ptr(), s.x0.ptr(), s.sn1, dIn.ptr(), rows);
    k::add(dIn.ptr(), s.dx1.ptr(), rows * config.hidden);
  }

  void backwardWeight(const Batch<T> &, LayerState &state,
                      const Tensor<T> &dOut) override {
    State &s = ownState<State>(state, this);
    if (!this->trainable)
      return;
    gradients(s, dOut);
    const int64_t rows = s.x0.rows(), h = config.hidden;
    finalNorm.backwardWeight(dOut.ptr(), s.x4.ptr(), s.sOut, rows);
    ffn2.backwardWeight(s.n4.ptr(), s.df2.ptr(), s.f2, rows);
    ffn2Norm.backwardWeight(s.dn4.ptr(), s.x3.ptr(), s.sn4, rows);
    pw2.backwardWeight(s.s.ptr(), s.dx3.ptr(), rows);
    bnNorm.backwardWeight(s.dln.ptr(), s.dc.ptr(), s.sbn, rows);
    const int64_t len = s.seq.tokens;
    if (hasGrad(dwW))
      for (int64_t i = 0; i < s.seq.sequences; ++i)
        k::depthwiseConv1dBackwardWeight(
            s.g.ptr() + i * len * h, s.ddc.ptr() + i * len * h, dwW->grad.ptr(),
            hasGrad(dwB) ? dwB->grad.ptr() : nullptr, len, h,
            config.convKernel);
    pw1.backwardWeight(s.n3.ptr(), s.dp1.ptr(), rows);
    convNorm.backwardWeight(s.dn3.ptr(), s.x2.ptr(), s.sn3, rows);
    attn.backwardWeight(s.n2.ptr(), s.dx2.ptr(), s.at, rows);
    attnNorm.backwardWeight(s.dn2.ptr(), s.x1.ptr(), s.sn2, rows);
    ffn1.backwardWeight(s.n1.ptr(), s.df1.ptr(), s.f1, rows);
    ffn1Norm.backwardWeight(s.dn1.ptr(), s.x0.ptr(), s.sn1, rows);
  }

private:
  /// out = x + f / 2.
  static void halfResidual(Tensor<T> &out, const Tensor<T> &x, Tensor<T> &f) {
    k::scale(f.ptr(), T(0.5), f.ptr(), f.numel());
    out = x;
    k::add(out.ptr(), f.ptr(), out.numel());
  }

  /// The gradients of every intermediate from dy, once.
  void gradients(State &s, const Tensor<T> &dy) {
    if (s.gradsReady)
      return;
    const int64_t rows = s.x0.rows(), h = config.hidden, n = rows * h;
    if (dy.numel() != n)
      layerFatal("conformer_block: the output gradient has " +
                 llvm::Twine(dy.numel()) + " values, expected " +
                 llvm::Twine(n));
    auto fresh = [&](Tensor<T> &t, int64_t width) { t.resize({rows, width}); };
    fresh(s.dx4, h);
    finalNorm.backwardInput(dy.ptr(), s.x4.ptr(), s.sOut, s.dx4.ptr(), rows);
    // FFN2 half step.
    fresh(s.df2, h);
    k::scale(s.dx4.ptr(), T(0.5), s.df2.ptr(), n);
    fresh(s.dn4, h);
    ffn2.backward(s.df2.ptr(), s.f2, s.dn4.ptr(), rows);
    fresh(s.dx3, h);
    ffn2Norm.backwardInput(s.dn4.ptr(), s.x3.ptr(), s.sn4, s.dx3.ptr(), rows);
    k::add(s.dx3.ptr(), s.dx4.ptr(), n);
    // Convolution module.
    Tensor<T> ds({rows, h}), dg({rows, h});
    pw2.backwardInput(s.dx3.ptr(), ds.ptr(), rows);
    fresh(s.dln, h);
    activationBackward(Activation::Silu, s.ln.ptr(), ds.ptr(), s.dln.ptr(),
                       rows, h);
    fresh(s.ddc, h);
    bnNorm.backwardInput(s.dln.ptr(), s.dc.ptr(), s.sbn, s.ddc.ptr(), rows);
    const int64_t len = s.seq.tokens;
    for (int64_t i = 0; i < s.seq.sequences; ++i)
      k::depthwiseConv1dBackwardInput(s.ddc.ptr() + i * len * h,
                                      dwW->value.ptr(), dg.ptr() + i * len * h,
                                      len, h, config.convKernel);
    fresh(s.dp1, 2 * h);
    k::gluBackward(s.p1.ptr(), dg.ptr(), s.dp1.ptr(), rows, h);
    fresh(s.dn3, h);
    pw1.backwardInput(s.dp1.ptr(), s.dn3.ptr(), rows);
    fresh(s.dx2, h);
    convNorm.backwardInput(s.dn3.ptr(), s.x2.ptr(), s.sn3, s.dx2.ptr(), rows);
    k::add(s.dx2.ptr(), s.dx3.ptr(), n);
    // Self-attention.
    fresh(s.dn2, h);
    attn.backward(s.dx2.ptr(), s.seq, s.at, s.dn2.ptr());
    fresh(s.dx1, h);
    attnNorm.backwardInput(s.dn2.ptr(), s.x1.ptr(), s.sn2, s.dx1.ptr(), rows);
    k::add(s.dx1.ptr(), s.dx2.ptr(), n);
    // FFN1 half step.
    fresh(s.df1, h);
    k::scale(s.dx1.ptr(), T(0.5), s.df1.ptr(), n);
    fresh(s.dn1, h);
    ffn1.backward(s.df1.ptr(), s.f1, s.dn1.ptr(), rows);
    s.gradsReady = true;
  }
};

} // namespace

template <typename T>
std::unique_ptr<Layer<T>>
mllm::runtime::cpu::makeConformerBlock(const LayerConfig &c, bool train,
                                       const TensorShard &tp) {
  return std::make_unique<ConformerBlock<T>>(c, train, tp);
}

template std::unique_ptr<Layer<float>>
mllm::runtime::cpu::makeConformerBlock<float>(const LayerConfig &, bool,
                                              const TensorShard &);
template std::unique_ptr<Layer<double>>
mllm::runtime::cpu::makeConformerBlock<double>(const LayerConfig &, bool,
                                               const TensorShard &);
