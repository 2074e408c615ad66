//===- DeviceGenerate.cpp - greedy generation on one GPU ------------------===//
//
// DeviceTrainer::nextToken: exec::Generator's tokens from the device. Each
// round is microbatch 0's forward with the head stopping at the sample's
// row (generationHead). With the key cache the round is the LLM's new
// tokens only, as CP rank 1 of a share whose rank 0 is the cache
// (DeviceKeyCache.h), and an encoder runs only in a round whose new tokens
// hold its rows (a sample's first, or one after a dropped cache).
//
//===----------------------------------------------------------------------===//
#include "DeviceKeyCache.h"

#include "mllm/runtime/exec/RankRunner.h"

#include <map>

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::device;
using sched::ActionKind;

namespace {
/// With several data-parallel processes each continues one sample, its
/// own slot, and the processes share their tokens.
class DeviceNextToken final : public exec::NextToken {
public:
  DeviceNextToken(DeviceTrainer::Impl &s, bool cacheKeys)
      : s(s), cacheKeys(cacheKeys && !s.cp && !s.tp &&
                        exec::canCacheKeys(*s.model, false)),
        policy(exec::llmMaskPolicy(*s.model)),
        cache(s.model->sequences, s.model->seqLen), keys(cache.store()) {}
  int64_t width() const override { return shared() ? s.parallel.processes : 1; }
  bool runs(int64_t slot) const override {
    return !shared() || slot == s.parallel.index;
  }
  llvm::Error startSample(int64_t, const exec::MicrobatchData &) override {
    keys.restart();
    return llvm::Error::success();
  }
  llvm::Error choose(llvm::ArrayRef<exec::TokenQuery> queries, int64_t choices,
                     llvm::MutableArrayRef<int64_t> ids) override;
  std::optional<exec::GenerationWork> work() const override {
    exec::GenerationWork w = done;
    w.dropped = keys.dropped();
    w.keyCache = cacheKeys;
    return w;
  }

private:
  bool shared() const { return s.parallel.processes > 1 && s.parallel.host; }
  /// The round's forward for `query`: its id, or -1 (NaN logits).
  llvm::Expected<int64_t> next(const exec::TokenQuery &query, int64_t choices);

  DeviceTrainer::Impl &s;
  bool cacheKeys;
  kernels::MaskPolicy policy;
  DeviceKeyCache cache;
  exec::SampleKeys keys;
  exec::MicrobatchData round;
  exec::GenerationWork done;
};
} // namespace

llvm::Expected<int64_t> DeviceNextToken::next(const exec::TokenQuery &query,
                                              int64_t choices) {
  const bool cached = cacheKeys && query.batch->layout;
  int64_t first = 0;
  if (cached) {
    round = keys.newTokens(*query.batch, query.row + 1, policy);
    first = keys.kept();
    s.useShare(cache, round.cp->tokens);
  }
  // As an evaluation's batch: microbatch 0's buffers, then its forward.
  auto forward = [&]() -> llvm::Error {
    const int64_t forwardAction = s.actionOf(ActionKind::Forward, 0);
    MLLM_TRY(s.bind(sched::BufferKind::Saved, 0, -1,
                    &DeviceTrainer::Impl::carveSaved));
    MLLM_TRY(s.bind(sched::BufferKind::Workspace, -1, forwardAction,
                    &DeviceTrainer::Impl::carveScratch));
    MLLM_TRY(s.loadBatch(cached ? round : *query.batch));
    s.generating = true;
    s.generateRow = query.row - first;
    s.generateChoices = choices;
    llvm::Error e = s.forward(s.hostLosses);
    s.generating = false;
    return e;
  };
  llvm::Error e = forward();
  ++done.rounds;
  done.rows += s.rows;
  done.encoderRuns += s.encodersRun();
  if (cached) {
    s.endShare();
    // A round that failed leaves the cache unknown: the next starts over.
    if (e)
      keys.restart();
    else
      e = keys.endRound();
  }
  if (e)
    return std::move(e);
  if (s.generatedHost.size() != 1)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "generation: no token came back "
                                   "(internal error)");
  return s.generatedHost[0];
}

llvm::Error DeviceNextToken::choose(llvm::ArrayRef<exec::TokenQuery> queries,
                                    int64_t choices,
                                    llvm::MutableArrayRef<int64_t> ids) {
  std::map<int64_t, int64_t> offered;
  for (size_t q = 0; q < queries.size(); ++q) {
    if (!queries[q].batch)
      continue;
    auto id = next(queries[q], choices);
    if (!id)
      return id.takeError();
    ids[q] = *id;
    offered[queries[q].slot] = ids[q];
  }
  if (!shared())
    return llvm::Error::success();
  if (llvm::Error e =
          exec::shareTokens(*s.parallel.host, width(), offered, queries, ids))
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "generation over the processes: " +
                                       llvm::toString(std::move(e)));
  return llvm::Error::success();
}

std::unique_ptr<exec::NextToken> DeviceTrainer::nextToken(bool cacheKeys) {
  return std::make_unique<DeviceNextToken>(*impl, cacheKeys);
}
