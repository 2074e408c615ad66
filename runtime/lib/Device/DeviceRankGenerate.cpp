//===- DeviceRankGenerate.cpp - greedy generation on the GPUs -------------===//
//
// DeviceRankRunner::nextToken: an exec::Generator's tokens from a pipeline
// of GPUs, as the CPU's RankRunner::nextToken gives them (one sample per
// microbatch of each replica at once, a round the forward part of the
// rank's program, one sum over the world), with the device's generation
// head (vocab-parallel under TP). With the key cache, each rank keeps its
// own layers' keys per slot (DeviceKeyCache.h; a TP shard its heads'), a
// round's microbatch is its sample's new tokens, and the messages between
// LLM stages carry their rows first (posted at the planned size, as a CP
// share's).
//
//===----------------------------------------------------------------------===//
#include "DeviceKeyCache.h"
#include "DeviceRankImpl.h"

#include "mllm/runtime/exec/BatchSplit.h"

#include <memory>

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::device;

namespace {

class DeviceRankNextToken final : public exec::NextToken {
public:
  DeviceRankNextToken(DeviceRankRunner::Impl &s,
                      DeviceRankRunner::MessagesHook beforeRound,
                      bool cacheKeys)
      : s(s), beforeRound(std::move(beforeRound)),
        // The plan decides, so that every rank keeps or drops alike.
        cacheKeys(cacheKeys && exec::canCacheKeys(*s.model, true)),
        policy(exec::llmMaskPolicy(*s.model)) {}
  int64_t width() const override { return exec::Rounds(*s.plan).width(); }
  bool runs(int64_t slot) const override {
    return exec::Rounds(*s.plan).replicaOf(slot) == s.place.coord.d;
  }
  llvm::Error startSample(int64_t slot, const exec::MicrobatchData &) override {
    if (auto it = slots.find(slot); it != slots.end())
      it->second->keys.restart();
    return llvm::Error::success();
  }
  llvm::Error choose(llvm::ArrayRef<exec::TokenQuery> queries, int64_t choices,
                     llvm::MutableArrayRef<int64_t> ids) override;
  std::optional<exec::GenerationWork> work() const override {
    exec::GenerationWork w = done;
    for (const auto &[slot, keys] : slots)
      w.dropped += keys->keys.dropped();
    w.keyCache = cacheKeys;
    return w;
  }

private:
  /// A slot's sample: the keys this rank's layers keep of it.
  struct Slot {
    Slot(int64_t sequences, int64_t capacity)
        : cache(sequences, capacity), keys(cache.store()) {}
    DeviceKeyCache cache;
    exec::SampleKeys keys;
  };
  Slot &slot(int64_t index) {
    std::unique_ptr<Slot> &it = slots[index];
    if (!it)
      it = std::make_unique<Slot>(s.model->sequences, s.model->seqLen);
    return *it;
  }

  DeviceRankRunner::Impl &s;
  DeviceRankRunner::MessagesHook beforeRound;
  bool cacheKeys;
  kernels::MaskPolicy policy;
  std::map<int64_t, std::unique_ptr<Slot>> slots;
  exec::GenerationWork done;
};

} // namespace

llvm::Error
DeviceRankNextToken::choose(llvm::ArrayRef<exec::TokenQuery> queries,
                            int64_t choices,
                            llvm::MutableArrayRef<int64_t> ids) {
  DeviceTrainer::Impl &d = s.dev;
  const exec::Rounds rounds(*s.plan);
  const int64_t width = rounds.width();
  MLLM_TRY(s.checkIdle());
  s.roundCaches.clear();
  // By microbatch: the row its head reads (this rank's, -1: on another CP
  // rank) and the token it found.
  std::map<int64_t, int64_t> rowOf, found;
  for (const exec::TokenQuery &q : queries) {
    if (q.slot < 0 || q.slot >= width || runs(q.slot) != !!q.batch)
      return s.error("generation: slot " + llvm::Twine(q.slot) +
                     " does not fit the plan's microbatches (internal error)");
    if (!q.batch)
      continue;
    const int64_t mb = rounds.microbatchOf(q.slot);
    ++done.rounds;
    if (cacheKeys && q.batch->layout) {
      // The sample's new tokens (its media in a round that keeps no keys).
      Slot &kept = slot(q.slot);
      exec::MicrobatchData batch =
          kept.keys.newTokens(*q.batch, q.row + 1, policy);
      rowOf[mb] = q.row - kept.keys.kept();
      done.rows += static_cast<int64_t>(batch.tokenIds.size());
      s.roundCaches[mb] = &kept.cache;
      s.mbs[mb] = std::move(batch);
      continue;
    }
    exec::MicrobatchData batch = *q.batch;
    // Buffers sized for every batch's own CP split take the batch's (the
    // text grows); the others the plan's, as an evaluation's batches.
    if (d.cpPerBatch)
      if (llvm::Error e = exec::splitBatchForCP(*s.plan, batch))
        return s.error("generation: " + llvm::toString(std::move(e)));
    rowOf[mb] = exec::localRow(*s.model, batch, q.row);
    done.rows += static_cast<int64_t>(batch.tokenIds.size());
    s.mbs[mb] = std::move(batch);
  }
  auto ask = [&](const sched::Action &a) {
    d.generating = s.holdsHead;
    d.generateRow = rowOf.at(a.microbatch);
    d.generateChoices = choices;
  };
  auto take = [&](const sched::Action &a) -> llvm::Error {
    done.encoderRuns += d.encodersRun();
    if (s.holdsHead && rowOf.at(a.microbatch) >= 0)
      found[a.microbatch] = d.generatedHost.at(0);
    d.generating = false;
    return llvm::Error::success();
  };
  llvm::Error round = s.forwardRound(beforeRound, ask, take);
  if (!s.roundCaches.empty()) {
    s.roundCaches.clear();
    d.endShare();
    // Every slot of the round keeps its new tokens' keys, or (the round
    // failed) none.
    for (const exec::TokenQuery &q : queries)
      if (auto it = slots.find(q.slot); q.batch && it != slots.end()) {
        if (round)
          it->second->keys.restart();
        else
          round = it->second->keys.endRound();
      }
  }
  MLLM_TRY(std::move(round));
  // TP rank 0 of the head's CP rank holding the row offers its token.
  std::map<int64_t, int64_t> offered;
  if (s.holdsHead && s.place.coord.t == 0)
    for (const exec::TokenQuery &q : queries)
      if (auto it = found.find(rounds.microbatchOf(q.slot));
          q.batch && it != found.end())
        offered[q.slot] = it->second;
  if (llvm::Error e =
          exec::shareTokens(*s.groups.world, width, offered, queries, ids)) {
    s.drain();
    return s.error("generation: " + llvm::toString(std::move(e)));
  }
  return llvm::Error::success();
}

llvm::Expected<std::unique_ptr<exec::NextToken>>
DeviceRankRunner::nextToken(const MessagesHook &beforeRound, bool cacheKeys) {
  Impl &s = *impl;
  MLLM_TRY(s.checkIdle());
  MLLM_TRY(agreeOnStart());
  s.tracing = false; // A traced step's events stay as they were.
  if (llvm::Error e = s.dev.agreeOnStart())
    return s.wrap(std::move(e));
  return std::make_unique<DeviceRankNextToken>(s, beforeRound, cacheKeys);
}
