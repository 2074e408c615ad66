//===- NormAndHead.cpp - the final norm and the LM head with its loss -----===//
//
// `norm`: LayerNorm or RMSNorm over hidden. `lm_head`: logits = x W^T
// (W [vocab, hidden], the head's own or, when tied, the token embedding's)
// and softmax cross-entropy over the batch's targets; its output is the
// loss sum times batch.lossScale as a [1] tensor, and its backward starts
// from that loss.
//
//===----------------------------------------------------------------------===//

#include "mllm/runtime/cpu/LayerParts.h"

#include "mllm/kernels/cpu/CrossEntropy.h"
#include "mllm/kernels/cpu/Linear.h"

using namespace mllm::runtime;
using namespace mllm::runtime::cpu;
namespace k = mllm::kernels::cpu;

namespace {

template <typename T>
class NormLayer final : public LayerBase<T> {
  using LayerBase<T>::config;
  NormPart<T> norm;

  struct State : OwnedState {
    Tensor<T> x;
    typename NormPart<T>::Saved saved;
  };

public:
  NormLayer(const LayerConfig &c, bool train) : LayerBase<T>("norm", c, train) {
    norm.create(this->list, "", c.hidden, c.layerNorm, train);
  }
  int64_t outputTokens(int64_t inputTokens) const override {
    return inputTokens;
  }
  int64_t outputWidth() const override { return config.hidden; }

  std::unique_ptr<LayerState> forward(const Batch<T> &, const Tensor<T> &in,
                                      Tensor<T> &out) override {
    if (in.cols() != config.hidden)
      layerFatal("norm: input width " + llvm::Twine(in.cols()) + ", hidden " +
                 llvm::Twine(config.hidden));
    auto st = std::make_unique<State>();
    st->owner = this;
    st->x = in;
    out.resize({in.rows(), config.hidden});
    norm.forward(in.ptr(), out.ptr(), st->saved, in.rows());
    return st;
  }
  void backwardInput(const Batch<T> &, LayerState &state, const Tensor<T> &dOut,
                     Tensor<T> &dIn) override {
    State &st = ownState<State>(state, this);
    dIn.resize(st.x.shape);
    norm.backwardInput(dOut.ptr(), st.x.ptr(), st.saved, dIn.ptr(),
                       st.x.rows());
  }
  void backwardWeight(const Batch<T> &, LayerState &state,
                      const Tensor<T> &dOut) override {
    State &st = ownState<State>(state, this);
    norm.backwardWeight(dOut.ptr(), st.x.ptr(), st.saved, st.x.rows());
  }
};

template <typename T>
class LMHead final : public LayerBase<T> {
  using LayerBase<T>::config;
  Param<T> *own = nullptr, *bound = nullptr;

  struct State : OwnedState {
    Tensor<T> x, logits, dlogits;
    std::vector<double> lse;
    std::vector<int64_t> targets;
    double lossScale = 1;
  };

public:
  LMHead(const LayerConfig &c, bool train) : LayerBase<T>("lm_head", c, train) {
    if (!c.tied)
      own = this->list.add("weight", {c.vocab, c.hidden}, ParamInit::Normal,
                           train);
  }
  int64_t outputTokens(int64_t inputTokens) const override {
    return inputTokens;
  }
  int64_t outputWidth() const override { return config.vocab; }
  bool isTied() const override { return config.tied; }

  llvm::Error bindTiedWeight(Param<T> *weight) override {
    if (!config.tied)
      return llvm::createStringError("lm_head is not tied: it has its own "
                                     "weight");
    if (!weight || weight->value.shape !=
                       std::vector<int64_t>{config.vocab, config.hidden})
      return llvm::createStringError(
          "lm_head: the tied weight must be [%lld, %lld]",
          static_cast<long long>(config.vocab),
          static_cast<long long>(config.hidden));
    bound = weight;
    return llvm::Error::success();
  }

  std::unique_ptr<LayerState>
  forward(const Batch<T> &batch, const Tensor<T> &in, Tensor<T> &out) override {
    const int64_t rows = in.rows(), V = config.vocab;
    if (in.cols() != config.hidden)
      layerFatal("lm_head: input width " + llvm::Twine(in.cols()) +
                 ", hidden " + llvm::Twine(config.hidden));
    if (!batch.targets)
      layerFatal("lm_head: the batch has no targets");
    if (batch.sequences * batch.tokens != rows)
      layerFatal("lm_head: the input has " + llvm::Twine(rows) +
                 " rows, the batch " + llvm::Twine(batch.sequences) + " x " +
                 llvm::Twine(batch.tokens) + " tokens");
    auto st = std::make_unique<State>();
    st->owner = this;
    st->x = in;
    st->targets.assign(batch.targets, batch.targets + rows);
    st->lossScale = batch.lossScale;
    st->logits.resize({rows, V});
    k::linearForward(in.ptr(), weight().value.ptr(), static_cast<T *>(nullptr),
                     st->logits.ptr(), rows, config.hidden, V);
    st->lse.resize(rows);
    k::CrossEntropyResult r = k::softmaxCrossEntropyForward(
        st->logits.ptr(), st->targets.data(), st->lse.data(), rows, V);
    out.resize({1});
    out.data[0] = static_cast<T>(r.lossSum * batch.lossScale);
    return st;
  }

  void backwardInput(const Batch<T> &, LayerState &state, const Tensor<T> &,
                     Tensor<T> &dIn) override {
    State &st = ownState<State>(state, this);
    gradients(st);
    const int64_t rows = st.x.rows();
    dIn.resize({rows, config.hidden});
    k::linearBackwardInput(st.dlogits.ptr(), weight().value.ptr(), dIn.ptr(),
                           rows, config.hidden, config.vocab);
  }

  void backwardWeight(const Batch<T> &, LayerState &state,
                      const Tensor<T> &) override {
    State &st = ownState<State>(state, this);
    Param<T> &w = weight();
    if (!hasGrad(&w))
      return;
    gradients(st);
    k::linearBackwardWeight(st.x.ptr(), st.dlogits.ptr(), w.grad.ptr(),
                            static_cast<T *>(nullptr), st.x.rows(),
                            config.hidden, config.vocab);
  }

private:
  Param<T> &weight() const {
    Param<T> *w = own ? own : bound;
    if (!w)
      layerFatal("lm_head: tied, but no weight was bound (bindTiedWeight)");
    return *w;
  }
  /// dlogits = lossScale (softmax - onehot); the logits are dropped after.
  void gradients(State &st) {
    if (st.gradsReady)
      return;
    const int64_t rows = st.x.rows();
    st.dlogits.resize({rows, config.vocab});
    k::softmaxCrossEntropyBackward(st.logits.ptr(), st.targets.data(),
                                   st.lse.data(), st.dlogits.ptr(),
                                   st.lossScale, rows, config.vocab);
    st.logits = Tensor<T>();
    st.gradsReady = true;
  }
};

} // namespace

template <typename T>
std::unique_ptr<Layer<T>> mllm::runtime::cpu::makeNorm(const LayerConfig &c,
                                                       bool train) {
  return std::make_unique<NormLayer<T>>(c, train);
}
template <typename T>
std::unique_ptr<Layer<T>> mllm::runtime::cpu::makeLMHead(const LayerConfig &c,
                                                         bool train) {
  return std::make_unique<LMHead<T>>(c, train);
}

namespace mllm::runtime::cpu {
template std::unique_ptr<Layer<float>> makeNorm(const LayerConfig &, bool);
template std::unique_ptr<Layer<double>> makeNorm(const LayerConfig &, bool);
template std::unique_ptr<Layer<float>> makeLMHead(const LayerConfig &, bool);
template std::unique_ptr<Layer<double>> makeLMHead(const LayerConfig &, bool);
} // namespace mllm::runtime::cpu
