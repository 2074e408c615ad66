//===- NormLayer.cpp - the norm layer (the LLM's final norm) --------------===//
//
// `norm`: LayerNorm or RMSNorm over hidden, token by token, so it runs
// unchanged on a CP rank's tokens and whole on every TP rank.
//
//===----------------------------------------------------------------------===//

#include "mllm/runtime/cpu/LayerParts.h"

using namespace mllm::runtime;
using namespace mllm::runtime::cpu;

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

} // namespace

template <typename T>
std::unique_ptr<Layer<T>> mllm::runtime::cpu::makeNorm(const LayerConfig &c,
                                                       bool train) {
  return std::make_unique<NormLayer<T>>(c, train);
}

namespace mllm::runtime::cpu {
template std::unique_ptr<Layer<float>> makeNorm(const LayerConfig &, bool);
template std::unique_ptr<Layer<double>> makeNorm(const LayerConfig &, bool);
} // namespace mllm::runtime::cpu
