//===- LMHead.cpp - the LM head with its cross-entropy loss ---------------===//
//
// logits = x W^T (W [vocab, hidden], the head's own or, when tied, the
// token embedding's) and softmax cross-entropy over the batch's targets;
// the output is the loss sum times batch.lossScale as a [1] tensor, and the
// backward starts from that loss.
//
// A TP shard holds the vocabulary rows [begin, end) of W (a tied head: the
// embedding's shard of the same rows) and never a whole row of logits: the
// loss comes from the vocab-parallel cross-entropy (ParallelParts.h), the
// same on every TP rank, and the input gradient, a partial sum over the
// vocabulary, is all-reduced. Under CP the loss is the sum over this rank's
// tokens; the ranks' sums add up to the whole sequence's.
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
class LMHead final : public LayerBase<T> {
  using LayerBase<T>::config;
  using LayerBase<T>::tp;
  Param<T> *own = nullptr, *bound = nullptr;
  VocabRange range;

  struct State : OwnedState {
    Tensor<T> x, logits, dlogits;
    std::vector<double> lse;
    std::vector<int64_t> targets;
    double lossScale = 1;
  };

  ShardInfo shardInfo() const {
    if (!tp.split())
      return {};
    return {0, 1, range.begin, {config.vocab, config.hidden}};
  }

public:
  LMHead(const LayerConfig &c, bool train, const TensorShard &shard)
      : LayerBase<T>("lm_head", c, train, shard),
        range(vocabRange(c.vocab, shard)) {
    if (!c.tied)
      own = this->list.add("weight", {range.size(), c.hidden},
                           ParamInit::Normal, train, shardInfo());
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
    ShardInfo want = shardInfo();
    if (!weight ||
        weight->value.shape !=
            std::vector<int64_t>{range.size(), config.hidden} ||
        weight->shard.dim != want.dim || weight->shard.offset != want.offset)
      return llvm::createStringError(
          "lm_head: the tied weight must be [%lld, %lld], vocabulary rows "
          "[%lld, %lld) of the token embedding's",
          static_cast<long long>(range.size()),
          static_cast<long long>(config.hidden),
          static_cast<long long>(range.begin),
          static_cast<long long>(range.end));
    bound = weight;
    return llvm::Error::success();
  }

  std::unique_ptr<LayerState>
  forward(const Batch<T> &batch, const Tensor<T> &in, Tensor<T> &out) override {
    const int64_t rows = in.rows(), V = range.size();
    if (in.cols() != config.hidden)
      layerFatal("lm_head: input width " + llvm::Twine(in.cols()) +
                 ", hidden " + llvm::Twine(config.hidden));
    if (batch.sequences * batch.tokens != rows)
      layerFatal("lm_head: the input has " + llvm::Twine(rows) +
                 " rows, the batch " + llvm::Twine(batch.sequences) + " x " +
                 llvm::Twine(batch.tokens) + " tokens");
    if (batch.predict) {
      predict(*batch.predict, in);
      out.resize({1});
      out.data[0] = 0;
      return nullptr;
    }
    if (!batch.targets)
      layerFatal("lm_head: the batch has no targets");
    auto st = std::make_unique<State>();
    st->owner = this;
    if (!batch.eval)
      st->x = in;
    st->targets.assign(batch.targets, batch.targets + rows);
    for (int64_t t : st->targets)
      if (t != k::kIgnoreIndex && (t < 0 || t >= config.vocab))
        layerFatal("lm_head: target " + llvm::Twine(t) +
                   " outside the vocabulary of " + llvm::Twine(config.vocab));
    st->lossScale = batch.lossScale;
    st->logits.resize({rows, V});
    k::linearForward(in.ptr(), weight().value.ptr(), static_cast<T *>(nullptr),
                     st->logits.ptr(), rows, config.hidden, V);
    st->lse.resize(rows);
    double lossSum = vocabParallelCrossEntropyForward(
        tp, st->logits.ptr(), st->targets.data(), st->lse.data(), rows, range);
    out.resize({1});
    out.data[0] = static_cast<T>(lossSum * batch.lossScale);
    if (batch.eval) {
      count(*batch.eval, *st, lossSum);
      return nullptr;
    }
    return st;
  }

  void backwardInput(const Batch<T> &, LayerState &state, const Tensor<T> &,
                     Tensor<T> &dIn) override {
    State &st = ownState<State>(state, this);
    gradients(st);
    const int64_t rows = st.x.rows();
    dIn.resize({rows, config.hidden});
    k::linearBackwardInput(st.dlogits.ptr(), weight().value.ptr(), dIn.ptr(),
                           rows, config.hidden, range.size());
    tp.allReduce(dIn.ptr(), rows * config.hidden,
                 "the LM head's input "
                 "gradient");
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
                            config.hidden, range.size());
  }

private:
  /// Generation's next token: the logits of the one row asked for, then
  /// the first largest among the ids asked for over the whole vocabulary.
  void predict(HeadPredict &p, const Tensor<T> &in) {
    p.predicted = -1;
    if (p.row < 0)
      return;
    if (p.row >= in.rows())
      layerFatal("lm_head: generation asks for row " + llvm::Twine(p.row) +
                 " of " + llvm::Twine(in.rows()));
    std::vector<T> logits(static_cast<size_t>(range.size()));
    k::linearForward(in.ptr() + p.row * config.hidden, weight().value.ptr(),
                     static_cast<T *>(nullptr), logits.data(), 1, config.hidden,
                     range.size());
    vocabParallelArgmax(tp, logits.data(), &p.predicted, 1, range, p.choices);
  }

  /// An evaluation's counts of a microbatch: its loss sum and, per counted
  /// target, whether the first largest logit over the whole vocabulary is
  /// the target's (every TP rank counts the same).
  void count(HeadEval &eval, const State &st, double lossSum) {
    const int64_t rows = static_cast<int64_t>(st.targets.size());
    std::vector<int64_t> predicted(static_cast<size_t>(rows));
    vocabParallelArgmax(tp, st.logits.ptr(), predicted.data(), rows, range);
    eval.lossSum += lossSum;
    for (int64_t t = 0; t < rows; ++t) {
      if (st.targets[t] == k::kIgnoreIndex)
        continue;
      ++eval.tokens;
      eval.correct += predicted[t] == st.targets[t] ? 1 : 0;
    }
  }

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
    st.dlogits.resize({rows, range.size()});
    if (!tp.split())
      k::softmaxCrossEntropyBackward(st.logits.ptr(), st.targets.data(),
                                     st.lse.data(), st.dlogits.ptr(),
                                     st.lossScale, rows, config.vocab);
    else
      vocabParallelCrossEntropyBackward(st.logits.ptr(), st.targets.data(),
                                        st.lse.data(), st.dlogits.ptr(),
                                        st.lossScale, rows, range);
    st.logits = Tensor<T>();
    st.gradsReady = true;
  }
};

} // namespace

template <typename T>
std::unique_ptr<Layer<T>>
mllm::runtime::cpu::makeLMHead(const LayerConfig &c, bool train,
                               const TensorShard &tp) {
  return std::make_unique<LMHead<T>>(c, train, tp);
}

namespace mllm::runtime::cpu {
template std::unique_ptr<Layer<float>> makeLMHead(const LayerConfig &, bool,
                                                  const TensorShard &);
template std::unique_ptr<Layer<double>> makeLMHead(const LayerConfig &, bool,
                                                   const TensorShard &);
} // namespace mllm::runtime::cpu
