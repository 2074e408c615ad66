//===- Projectors.cpp - the linear and MLP projectors ---------------------===//
//
// An encoder's projector into the LLM's width: `linear` (in -> out with a
// bias) or `mlp` (in -> hidden, activation, hidden -> out, biases). The
// runtime merges tokens (mergeTokens) before a projector; a projector sees
// [tokens, in] rows like any other layer.
//
//===----------------------------------------------------------------------===//

#include "mllm/runtime/cpu/LayerParts.h"

using namespace mllm::runtime;
using namespace mllm::runtime::cpu;

namespace {

template <typename T>
class LinearProjector final : public LayerBase<T> {
  using LayerBase<T>::config;
  LinearPart<T> lin;

  struct State : OwnedState {
    Tensor<T> x;
  };

public:
  LinearProjector(const LayerConfig &c, bool train)
      : LayerBase<T>("linear", c, train) {
    lin.create(this->list, "weight", "bias", c.in, c.out, train);
  }
  int64_t outputTokens(int64_t inputTokens) const override {
    return inputTokens;
  }
  int64_t outputWidth() const override { return config.out; }

  std::unique_ptr<LayerState> forward(const Batch<T> &, const Tensor<T> &in,
                                      Tensor<T> &out) override {
    if (in.cols() != config.in)
      layerFatal("linear: input width " + llvm::Twine(in.cols()) + ", in " +
                 llvm::Twine(config.in));
    auto st = std::make_unique<State>();
    st->owner = this;
    st->x = in;
    out.resize({in.rows(), config.out});
    lin.forward(in.ptr(), out.ptr(), in.rows());
    return st;
  }
  void backwardInput(const Batch<T> &, LayerState &state, const Tensor<T> &dOut,
                     Tensor<T> &dIn) override {
    State &st = ownState<State>(state, this);
    dIn.resize(st.x.shape);
    lin.backwardInput(dOut.ptr(), dIn.ptr(), st.x.rows());
  }
  void backwardWeight(const Batch<T> &, LayerState &state,
                      const Tensor<T> &dOut) override {
    State &st = ownState<State>(state, this);
    lin.backwardWeight(st.x.ptr(), dOut.ptr(), st.x.rows());
  }
};

template <typename T>
class MlpProjector final : public LayerBase<T> {
  using LayerBase<T>::config;
  LinearPart<T> fc1, fc2;
  Activation act;

  struct State : OwnedState {
    Tensor<T> x, u, a, du;
  };

public:
  MlpProjector(const LayerConfig &c, bool train)
      : LayerBase<T>("mlp", c, train), act(*parseActivation(c.activation)) {
    fc1.create(this->list, "fc1.weight", "fc1.bias", c.in, c.hidden, train);
    fc2.create(this->list, "fc2.weight", "fc2.bias", c.hidden, c.out, train);
  }
  int64_t outputTokens(int64_t inputTokens) const override {
    return inputTokens;
  }
  int64_t outputWidth() const override { return config.out; }

  std::unique_ptr<LayerState> forward(const Batch<T> &, const Tensor<T> &in,
                                      Tensor<T> &out) override {
    const int64_t rows = in.rows();
    if (in.cols() != config.in)
      layerFatal("mlp: input width " + llvm::Twine(in.cols()) + ", in " +
                 llvm::Twine(config.in));
    auto st = std::make_unique<State>();
    st->owner = this;
    st->x = in;
    st->u.resize({rows, config.hidden});
    st->a.resize({rows, config.hidden});
    fc1.forward(in.ptr(), st->u.ptr(), rows);
    activationForward(act, st->u.ptr(), st->a.ptr(), rows, config.hidden);
    out.resize({rows, config.out});
    fc2.forward(st->a.ptr(), out.ptr(), rows);
    return st;
  }
  void backwardInput(const Batch<T> &, LayerState &state, const Tensor<T> &dOut,
                     Tensor<T> &dIn) override {
    State &st = ownState<State>(state, this);
    gradients(st, dOut);
    dIn.resize(st.x.shape);
    fc1.backwardInput(st.du.ptr(), dIn.ptr(), st.x.rows());
  }
  void backwardWeight(const Batch<T> &, LayerState &state,
                      const Tensor<T> &dOut) override {
    State &st = ownState<State>(state, this);
    if (!this->trainable)
      return;
    gradients(st, dOut);
    fc2.backwardWeight(st.a.ptr(), dOut.ptr(), st.x.rows());
    fc1.backwardWeight(st.x.ptr(), st.du.ptr(), st.x.rows());
  }

private:
  void gradients(State &st, const Tensor<T> &dy) {
    if (st.gradsReady)
      return;
    const int64_t rows = st.x.rows();
    Tensor<T> da({rows, config.hidden});
    fc2.backwardInput(dy.ptr(), da.ptr(), rows);
    st.du.resize({rows, config.hidden});
    activationBackward(act, st.u.ptr(), da.ptr(), st.du.ptr(), rows,
                       config.hidden);
    st.gradsReady = true;
  }
};

} // namespace

template <typename T>
std::unique_ptr<Layer<T>>
mllm::runtime::cpu::makeLinearProjector(const LayerConfig &c, bool train) {
  return std::make_unique<LinearProjector<T>>(c, train);
}
template <typename T>
std::unique_ptr<Layer<T>>
mllm::runtime::cpu::makeMlpProjector(const LayerConfig &c, bool train) {
  return std::make_unique<MlpProjector<T>>(c, train);
}

namespace mllm::runtime::cpu {
template std::unique_ptr<Layer<float>> makeLinearProjector(const LayerConfig &,
                                                           bool);
template std::unique_ptr<Layer<double>> makeLinearProjector(const LayerConfig &,
                                                            bool);
template std::unique_ptr<Layer<float>> makeMlpProjector(const LayerConfig &,
                                                        bool);
template std::unique_ptr<Layer<double>> makeMlpProjector(const LayerConfig &,
                                                         bool);
} // namespace mllm::runtime::cpu
