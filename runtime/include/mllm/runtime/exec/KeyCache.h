//===- KeyCache.h - generation's keys and values per layer -*- C++ -*-===//
//
// Greedy generation adds a token per round to a sequence whose earlier
// tokens do not change. Their keys and values do not either, so a round
// need only run the LLM on the tokens new since the last one: the LLM runs
// them as context-parallel rank 1 of a two-rank share (ContextParallel:
// rank 0 the kept tokens, rank 1 the new ones), and the cache is the
// share's group. Each attention layer's all-gather of K and V (on the CPU
// one per layer and forward, in chain order: cpu::gatherKeys; on a GPU
// one for K and one for V) gets the kept tokens' as rank 0's block, and
// the cache keeps the new tokens' after them. So the layers' math is the
// one they train with: only the rows differ, and the attention masks the
// new queries against every key with the sequence's own plan.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_EXEC_KEYCACHE_H
#define MLLM_RUNTIME_EXEC_KEYCACHE_H

#include "mllm/runtime/Comm.h"
#include "mllm/runtime/exec/Model.h"

#include <memory>
#include <vector>

namespace mllm::runtime::exec {

/// What a key cache keeps track of across a sample's rounds, whatever
/// holds the values: the kept tokens, the new ones of the round, and the
/// all-gathers the layers make per forward, in the order they make them.
/// As a Group it is rank 1 of the round's two-rank share (what the layers'
/// CP code asks); it moves nothing itself: KeyCache below holds the values
/// on the host, the CUDA backend's device cache on a GPU.
class KeyStore : public Group {
public:
  int size() const override { return 2; }
  int rank() const override { return 1; }

  /// Tokens whose keys and values are kept: rank 0's share of a round.
  int64_t tokens() const { return kept; }
  /// Forgets every layer's (a new sample, or a round that failed).
  virtual void clear();
  /// Before a round that runs `added` new tokens.
  void beginRound(int64_t added);
  /// After it: every all-gather of the first round made once (else an
  /// internal error, and the cache is cleared); the new tokens are kept
  /// from now on.
  llvm::Error endRound();
  /// The next all-gather of the round, of `counts` values (the kept
  /// tokens', then the new ones'): its index in the order the layers make
  /// them, checked against what the first round's made; an internal error
  /// fails the round.
  llvm::Expected<size_t> serve(llvm::ArrayRef<int64_t> counts);
  /// New tokens of the round in flight.
  int64_t newTokens() const { return added; }

  /// Generation moves nothing else over the share's group.
  llvm::Error allGather(const float *, llvm::ArrayRef<int64_t>,
                        float *) override {
    return unused();
  }
  llvm::Error allReduceSum(float *, int64_t) override { return unused(); }
  llvm::Error allReduceSum(double *, int64_t) override { return unused(); }
  llvm::Error allReduceMax(float *, int64_t) override { return unused(); }
  llvm::Error allGatherBytes(const void *, int64_t, void *) override {
    return unused();
  }
  llvm::Error reduceScatterSum(const float *, llvm::ArrayRef<int64_t>,
                               float *) override {
    return unused();
  }

protected:
  static llvm::Error unused();
  static llvm::Error internal(const llvm::Twine &why);
  /// internal(why), and the round fails.
  llvm::Error fail(const llvm::Twine &why);

private:
  std::vector<int64_t> widths; ///< Values per token of each all-gather.
  size_t next = 0;             ///< The all-gather the round makes next.
  int64_t kept = 0, added = 0;
  bool failed = false;
};

/// The CPU backend's cache: each attention layer makes one all-gather of
/// [K | V] (cpu::gatherKeys), and the values stay on the host.
class KeyCache final : public KeyStore {
public:
  void clear() override;
  /// [K | V] of the kept tokens, then `local` ([K | V] of the new ones).
  llvm::Error allGather(const float *local, llvm::ArrayRef<int64_t> counts,
                        float *out) override;

private:
  struct Layer {
    std::vector<float> k, v; ///< [kept (+ added after the call), width]
  };
  std::vector<Layer> layers; ///< In the order the LLM's layers ask.
};

/// One sample's cache across its rounds: the KeyStore and what its kept
/// tokens were, so that a round keeps them only while they still hold.
class SampleKeys {
public:
  /// Keeps the values in a KeyCache of its own.
  SampleKeys();
  /// Keeps them in `store`, which outlives it.
  explicit SampleKeys(KeyStore &store);
  /// The rounds' batches point at the cache.
  SampleKeys(const SampleKeys &) = delete;
  SampleKeys &operator=(const SampleKeys &) = delete;
  /// The round's batch for the LLM: `full`'s tokens from kept() on, up to
  /// `tokens` (their ids; the sequence's layout, positions and media rows
  /// up to there; its media where it keeps no keys, whose round holds
  /// every item's rows), with the two-rank share whose group is the cache.
  /// Drops the cache first unless the kept tokens have the same ids, layout,
  /// positions and media rows as before and none of them may attend (under
  /// `policy`) a new one.
  MicrobatchData newTokens(const MicrobatchData &full, int64_t tokens,
                           kernels::MaskPolicy policy);
  /// The round's first row of the sequence (after newTokens).
  int64_t kept() const { return cache.tokens(); }
  /// After the round (KeyStore::endRound).
  llvm::Error endRound() { return cache.endRound(); }
  /// Forgets the sample (a new one, or a round that failed); the count of
  /// dropped caches goes on.
  void restart();
  /// Rounds that dropped a cache they had.
  int64_t dropped() const { return drops; }

private:
  std::unique_ptr<KeyCache> own;
  KeyStore &cache;
  /// The last round's ids and layout: the kept tokens' from the next on.
  std::vector<int64_t> keptIds;
  std::shared_ptr<const BatchLayout> keptLayout;
  int64_t drops = 0;
};

/// Whether generation on `model` can keep keys: its LLM's layers all take
/// a share of the sequence (no conformer blocks) and, on a rank of a
/// parallel run (`rank`), the plan's LLM has no CP of its own. A process
/// that runs whole sequences (the one-process run, whole replicas on a
/// GPU) keeps keys under a CP plan too. And the mask policy of its LLM's
/// attention.
bool canCacheKeys(Model &model, bool rank);
kernels::MaskPolicy llmMaskPolicy(Model &model);

} // namespace mllm::runtime::exec

#endif // MLLM_RUNTIME_EXEC_KEYCACHE_H
