//===- RankGenerate.cpp - greedy generation across the ranks --------------===//
//
// RankRunner::nextToken: an exec::Generator's tokens from a parallel run.
// Every rank runs the same Generator over the same prompts; replica d runs
// the samples of its slots (one per microbatch), a round's forward is the
// evaluation's (RankEval.cpp), and one sum over the world gives every rank
// every slot's token (docs/runtime.md, "Evaluation and generation").
//
//===----------------------------------------------------------------------===//
#include "RankImpl.h"

#include "mllm/runtime/exec/BatchSplit.h"

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::exec;

namespace mllm::runtime::exec {

class RankNextToken final : public NextToken {
public:
  explicit RankNextToken(RankRunner &runner) : runner(runner) {}
  /// The encoder outputs and keys kept for the samples go with the
  /// generation.
  ~RankNextToken() override {
    runner.impl->generationEncoders.clear();
    runner.impl->generationKeys.clear();
  }
  int64_t width() const override { return Rounds(runner.model.plan()).width(); }
  bool runs(int64_t slot) const override {
    return Rounds(runner.model.plan()).replicaOf(slot) == runner.impl->coord.d;
  }
  llvm::Error startSample(int64_t slot, const MicrobatchData &) override {
    RankRunner::Impl &s = *runner.impl;
    s.generationEncoders.erase(slot);
    if (auto it = s.generationKeys.find(slot); it != s.generationKeys.end())
      it->second.restart();
    return llvm::Error::success();
  }
  std::optional<GenerationWork> work() const override {
    const RankRunner::Impl &s = *runner.impl;
    GenerationWork w = s.generationWork;
    for (const auto &[slot, keys] : s.generationKeys)
      w.dropped += keys.dropped();
    w.keyCache = s.generationCachesKeys;
    return w;
  }
  llvm::Error choose(llvm::ArrayRef<TokenQuery> queries, int64_t choices,
                     llvm::MutableArrayRef<int64_t> ids) override {
    return runner.chooseTokens(queries, choices, ids);
  }

private:
  RankRunner &runner;
};

} // namespace mllm::runtime::exec

llvm::Expected<std::unique_ptr<NextToken>>
RankRunner::nextToken(bool cacheKeys) {
  if (llvm::Error e = checkIdle())
    return std::move(e);
  if (llvm::Error e = agreeOnStart())
    return std::move(e);
  impl->generationCachesKeys = cacheKeys && canCacheKeys(model, true);
  impl->generationWork = GenerationWork();
  return std::make_unique<RankNextToken>(*this);
}

llvm::Error RankRunner::chooseTokens(llvm::ArrayRef<TokenQuery> queries,
                                     int64_t choices,
                                     llvm::MutableArrayRef<int64_t> ids) {
  Impl &s = *impl;
  const Rounds rounds(model.plan());
  const int64_t width = rounds.width();
  const kernels::MaskPolicy policy = llmMaskPolicy(model);
  // By microbatch: what its LM head predicts (a map: the pointers into it
  // stay valid).
  std::map<int64_t, cpu::HeadPredict> predicts;
  for (const TokenQuery &q : queries) {
    if (q.slot < 0 || q.slot >= width ||
        (rounds.replicaOf(q.slot) == s.coord.d) != !!q.batch)
      return makeError("generation: slot " + llvm::Twine(q.slot) +
                       " does not fit the plan's microbatches (internal "
                       "error)");
    if (!q.batch)
      continue;
    const int64_t mb = rounds.microbatchOf(q.slot);
    MicrobatchData full = *q.batch;
    // Its own CP split, as an evaluation's batch has (the text grows).
    if (llvm::Error e = splitBatchForCP(model.plan(), full))
      return llvm::make_error<RankError>(
          s.rank, "generation: " + llvm::toString(std::move(e)));
    cpu::HeadPredict &p = predicts[mb];
    p.choices = choices;
    MbState &m = s.mbs[mb];
    if (s.generationCachesKeys && full.layout) {
      // Every rank keeps or drops the sample's keys alike (the same data,
      // and canCacheKeys reads the plan).
      SampleKeys &keys = s.generationKeys[q.slot];
      m.data = keys.newTokens(full, q.row + 1, policy);
      p.row = q.row - keys.kept();
    } else {
      p.row = localRow(model, full, q.row);
      m.data = localData(std::move(full));
    }
    m.ctx.data = &m.data;
    m.ctx.predict = &p;
    ++s.generationWork.rounds;
    s.generationWork.rows += static_cast<int64_t>(m.data.tokenIds.size());
    m.encoderOutputs = &s.generationEncoders[q.slot];
  }
  if (llvm::Error e = forwardRound("generating"))
    return e;
  for (const TokenQuery &q : queries)
    if (auto it = s.generationKeys.find(q.slot);
        q.batch && it != s.generationKeys.end())
      if (llvm::Error e = it->second.endRound())
        return llvm::make_error<RankError>(s.rank,
                                           llvm::toString(std::move(e)));
  // TP rank 0 of the head's CP rank holding the row offers its token.
  std::map<int64_t, int64_t> offered;
  if (s.lossRank)
    for (const TokenQuery &q : queries)
      if (auto it = predicts.find(rounds.microbatchOf(q.slot));
          q.batch && it != predicts.end() && it->second.row >= 0)
        offered[q.slot] = it->second.predicted;
  setActivity("summing the generated tokens");
  if (llvm::Error e = shareTokens(*s.world, width, offered, queries, ids))
    return llvm::make_error<RankError>(
        s.rank, "generation: " + llvm::toString(std::move(e)));
  setActivity("between iterations");
  return llvm::Error::success();
}

llvm::Error exec::shareTokens(Group &world, int64_t width,
                              const std::map<int64_t, int64_t> &offered,
                              llvm::ArrayRef<TokenQuery> queries,
                              llvm::MutableArrayRef<int64_t> ids) {
  // Per slot the offered id + 1 (>= 0), then how many ranks offered one:
  // summed, every rank reads each slot's token and checks it had one.
  std::vector<double> sums(static_cast<size_t>(2 * width), 0.0);
  for (const auto &[slot, id] : offered) {
    sums[slot] = static_cast<double>(id + 1);
    sums[width + slot] = 1;
  }
  if (llvm::Error e = world.allReduceSum(sums.data(), 2 * width))
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "summing the tokens: " +
                                       llvm::toString(std::move(e)));
  for (size_t i = 0; i < queries.size(); ++i) {
    const int64_t slot = queries[i].slot;
    if (sums[width + slot] != 1)
      return llvm::createStringError(
          llvm::inconvertibleErrorCode(),
          "%g ranks gave slot %lld a token, not one (internal error)",
          sums[width + slot], static_cast<long long>(slot));
    ids[i] = static_cast<int64_t>(sums[slot]) - 1;
  }
  return llvm::Error::success();
}
