//===- DeviceRankGenerate.cpp - greedy generation on the GPUs -------------===//
//
// DeviceRankRunner::nextToken: an exec::Generator's tokens from a pipeline
// of GPUs, as the CPU's RankRunner::nextToken gives them (one sample per
// microbatch of each replica at once, a round the forward part of the
// rank's program, one sum over the world), with the device's generation
// head (vocab-parallel under TP).
//
//===----------------------------------------------------------------------===//
#include "DeviceRankImpl.h"

#include "mllm/runtime/exec/BatchSplit.h"

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::device;

namespace {

class DeviceRankNextToken final : public exec::NextToken {
public:
  DeviceRankNextToken(DeviceRankRunner::Impl &s,
                      DeviceRankRunner::MessagesHook beforeRound)
      : s(s), beforeRound(std::move(beforeRound)) {}
  int64_t width() const override { return exec::Rounds(*s.plan).width(); }
  bool runs(int64_t slot) const override {
    return exec::Rounds(*s.plan).replicaOf(slot) == s.place.coord.d;
  }
  llvm::Error choose(llvm::ArrayRef<exec::TokenQuery> queries, int64_t choices,
                     llvm::MutableArrayRef<int64_t> ids) override;

private:
  DeviceRankRunner::Impl &s;
  DeviceRankRunner::MessagesHook beforeRound;
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
    exec::MicrobatchData batch = *q.batch;
    // Buffers sized for every batch's own CP split take the batch's (the
    // text grows); the others the plan's, as an evaluation's batches.
    if (d.cpPerBatch)
      if (llvm::Error e = exec::splitBatchForCP(*s.plan, batch))
        return s.error("generation: " + llvm::toString(std::move(e)));
    rowOf[mb] = exec::localRow(*s.model, batch, q.row);
    s.mbs[mb] = std::move(batch);
  }
  auto ask = [&](const sched::Action &a) {
    d.generating = s.holdsHead;
    d.generateRow = rowOf.at(a.microbatch);
    d.generateChoices = choices;
  };
  auto take = [&](const sched::Action &a) -> llvm::Error {
    if (s.holdsHead && rowOf.at(a.microbatch) >= 0)
      found[a.microbatch] = d.generatedHost.at(0);
    d.generating = false;
    return llvm::Error::success();
  };
  MLLM_TRY(s.forwardRound(beforeRound, ask, take));
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
DeviceRankRunner::nextToken(const MessagesHook &beforeRound) {
  Impl &s = *impl;
  MLLM_TRY(s.checkIdle());
  MLLM_TRY(agreeOnStart());
  s.tracing = false; // A traced step's events stay as they were.
  if (llvm::Error e = s.dev.agreeOnStart())
    return s.wrap(std::move(e));
  return std::make_unique<DeviceRankNextToken>(s, beforeRound);
}
