//===- TokenEmbedding.cpp - the LLM's token embedding ---------------------===//
//
// out[t] = weight[ids[t]] (+ pos_weight[positions[t]]). The ids are data:
// no input gradient. A TP shard holds the vocabulary rows [begin, end)
// (Megatron-LM's vocab-parallel embedding): it writes the rows of its ids
// and zeros for the others, and the all-reduce assembles the whole rows;
// the learned position table is whole on every rank and added once, after
// the all-reduce. Under CP the positions are those of this rank's tokens.
//
//===----------------------------------------------------------------------===//

#include "mllm/runtime/cpu/LayerParts.h"

#include "mllm/kernels/cpu/Elementwise.h"
#include "mllm/kernels/cpu/Embedding.h"

using namespace mllm::runtime;
using namespace mllm::runtime::cpu;
namespace k = mllm::kernels::cpu;

namespace {

template <typename T>
class TokenEmbedding final : public LayerBase<T> {
  using LayerBase<T>::config;
  using LayerBase<T>::tp;
  Param<T> *table = nullptr, *pos = nullptr;
  VocabRange range;

  struct State : OwnedState {
    std::vector<int64_t> ids, posIds;
  };

public:
  TokenEmbedding(const LayerConfig &c, bool train, const TensorShard &shard)
      : LayerBase<T>("token_embedding", c, train, shard),
        range(vocabRange(c.vocab, shard)) {
    ShardInfo rows;
    if (tp.split())
      rows = {0, 1, range.begin, {c.vocab, c.hidden}};
    table = this->list.add("weight", {range.size(), c.hidden},
                           ParamInit::Normal, train, rows);
    if (c.position == "learned")
      pos = this->list.add("pos_weight", {c.positions, c.hidden},
                           ParamInit::Normal, train);
  }
  int64_t outputTokens(int64_t inputTokens) const override {
    return inputTokens;
  }
  int64_t outputWidth() const override { return config.hidden; }

  std::unique_ptr<LayerState> forward(const Batch<T> &batch, const Tensor<T> &,
                                      Tensor<T> &out) override {
    const int64_t rows = batch.sequences * batch.tokens, h = config.hidden;
    if (!batch.tokenIds)
      layerFatal("token_embedding: the batch has no token ids");
    auto st = std::make_unique<State>();
    st->owner = this;
    st->ids.assign(batch.tokenIds, batch.tokenIds + rows);
    for (int64_t id : st->ids)
      if (id < 0 || id >= config.vocab)
        layerFatal("token_embedding: token id " + llvm::Twine(id) +
                   " outside the vocabulary of " + llvm::Twine(config.vocab));
    out.resize({rows, h});
    if (!tp.split()) {
      k::embeddingForward(st->ids.data(), table->value.ptr(), out.ptr(), rows,
                          config.vocab, h);
    } else {
      for (int64_t t = 0; t < rows; ++t)
        if (range.contains(st->ids[t]))
          std::copy_n(table->value.ptr() + (st->ids[t] - range.begin) * h, h,
                      out.ptr() + t * h);
      tp.allReduce(out.ptr(), rows * h, "the embedding rows");
    }
    if (pos) {
      SequenceContext seq =
          makeSequenceContext(batch, rows, false, false, "token_embedding");
      for (int64_t p : seq.positions)
        if (p < 0 || p >= config.positions)
          layerFatal("token_embedding: position " + llvm::Twine(p) +
                     " outside the learned table of " +
                     llvm::Twine(config.positions) + " rows");
      for (int64_t s = 0; s < batch.sequences; ++s)
        st->posIds.insert(st->posIds.end(), seq.positions.begin(),
                          seq.positions.end());
      Tensor<T> p({rows, h});
      k::embeddingForward(st->posIds.data(), pos->value.ptr(), p.ptr(), rows,
                          config.positions, h);
      k::add(out.ptr(), p.ptr(), rows * h);
    }
    return st;
  }
  void backwardInput(const Batch<T> &, LayerState &state, const Tensor<T> &,
                     Tensor<T> &dIn) override {
    ownState<State>(state, this);
    dIn = Tensor<T>();
  }
  void backwardWeight(const Batch<T> &, LayerState &state,
                      const Tensor<T> &dOut) override {
    State &st = ownState<State>(state, this);
    const int64_t rows = static_cast<int64_t>(st.ids.size()), h = config.hidden;
    if (hasGrad(table) && !tp.split()) {
      k::embeddingBackwardWeight(st.ids.data(), dOut.ptr(), table->grad.ptr(),
                                 rows, config.vocab, h);
    } else if (hasGrad(table)) {
      // This shard's rows, in token order as the kernel adds them.
      for (int64_t t = 0; t < rows; ++t)
        if (range.contains(st.ids[t]))
          k::add(table->grad.ptr() + (st.ids[t] - range.begin) * h,
                 dOut.ptr() + t * h, h);
    }
    if (hasGrad(pos))
      k::embeddingBackwardWeight(st.posIds.data(), dOut.ptr(), pos->grad.ptr(),
                                 rows, config.positions, h);
  }
};

} // namespace

template <typename T>
std::unique_ptr<Layer<T>>
mllm::runtime::cpu::makeTokenEmbedding(const LayerConfig &c, bool train,
                                       const TensorShard &tp) {
  return std::make_unique<TokenEmbedding<T>>(c, train, tp);
}

namespace mllm::runtime::cpu {
template std::unique_ptr<Layer<float>>
makeTokenEmbedding(const LayerConfig &, bool, const TensorShard &);
template std::unique_ptr<Layer<double>>
makeTokenEmbedding(const LayerConfig &, bool, const TensorShard &);
} // namespace mllm::runtime::cpu
