//===- RankEval.cpp - a held-out evaluation across the ranks --------------===//
//
// RankRunner::evaluate: the forward part of the rank's program (its
// forwards and the activations' messages) over the held-out set's batches,
// the plan's microbatches at a time, every replica its own batches; the LM
// head's ranks count the loss and the hits, and the world sums them
// (docs/runtime.md, "Evaluation and generation").
//
//===----------------------------------------------------------------------===//
#include "RankImpl.h"

#include "llvm/Support/FormatVariadic.h"

#include <chrono>

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::exec;
using sched::ActionKind;

/// The actions of a forward-only program: the schedule's order of the
/// forwards is kept, and with it the verified order of their messages.
static bool runsInEvaluation(ActionKind kind) {
  return kind == ActionKind::Forward || kind == ActionKind::SendActivation ||
         kind == ActionKind::RecvActivation;
}

llvm::Error RankRunner::checkIdle() const {
  const Impl &s = *impl;
  // A step that failed part-way leaves messages posted and peers at other
  // points of the iteration: nothing can continue from there.
  if (!s.mbs.empty() || !s.sends.empty() || !s.pendingAct.empty() ||
      !s.pendingGrad.empty())
    return makeError("stage '" + s.stage->name +
                     "': the previous step failed part-way; a rank cannot "
                     "continue from there (restart the job, from a "
                     "checkpoint)");
  return llvm::Error::success();
}

llvm::Error RankRunner::unusedReceives() {
  Impl &s = *impl;
  for (auto *pending : {&s.pendingAct, &s.pendingGrad})
    for (const auto &[mb, list] : *pending)
      if (!list.empty())
        return makeError(llvm::formatv(
            "stage '{0}': the message of receive action {1} (microbatch {2}) "
            "was never used (internal error)",
            s.stage->name, list.front().action, mb));
  s.pendingAct.clear();
  s.pendingGrad.clear();
  return llvm::Error::success();
}

llvm::Error RankRunner::forwardRound(const char *doing) {
  Impl &s = *impl;
  const size_t actions = s.prog->actions.size();
  std::vector<int64_t> floats = messageFloats(model, s);
  for (size_t i = 0; i < actions; ++i)
    if (!runsInEvaluation(s.prog->actions[i].kind))
      floats[i] = 0;
  if (llvm::Error e = s.messages.plan(*s.prog, s.sendRelease, floats))
    return makeError("stage '" + s.stage->name +
                     "': " + llvm::toString(std::move(e)));
  for (size_t i = 0; i < actions; ++i) {
    const sched::Action &a = s.prog->actions[i];
    if (runsInEvaluation(a.kind) && s.mbs.count(a.microbatch)) {
      setActivity("%s, at action %zu (%s)", doing, i,
                  describeAction(*s.graph, a).c_str());
      if (llvm::Error e = run(i))
        return actionError(i, std::move(e));
    }
    // Sends are waited for where training waits for them (the arena
    // reuses their bytes after that), also at actions that do not run.
    if (llvm::Error e = waitSends(static_cast<int64_t>(i)))
      return e;
  }
  if (llvm::Error e = waitSends(-1))
    return e;
  s.mbs.clear();
  return unusedReceives();
}

llvm::Expected<EvalStats> RankRunner::evaluate(EvalSet &set) {
  Impl &s = *impl;
  if (llvm::Error e = checkIdle())
    return std::move(e);
  if (llvm::Error e = agreeOnStart())
    return std::move(e);
  auto start = std::chrono::steady_clock::now();
  const Rounds rounds(model.plan());
  const int64_t batches = set.batchCount();
  // The head's ranks (TP rank 0 of each replica, every CP rank) count;
  // the world sums every round, so that no rank runs ahead of the others
  // by more than a round (a wait has a deadline).
  cpu::HeadEval total;
  for (int64_t round = 0; round < rounds.count(batches); ++round) {
    // The last round leaves out the microbatches past the set's end, on
    // every rank of the replica alike.
    cpu::HeadEval counted;
    for (int64_t mb = 0; mb < rounds.microbatches; ++mb) {
      int64_t k = rounds.item(round, mb, s.coord.d);
      if (k >= batches)
        break;
      auto got = set.batch(k);
      if (!got)
        return llvm::make_error<RankError>(
            s.rank, "reading evaluation batch " + std::to_string(k + 1) + ": " +
                        llvm::toString(got.takeError()));
      MbState &m = s.mbs[mb];
      m.data = localData(std::move(*got));
      m.ctx.data = &m.data;
      m.ctx.eval = &counted;
    }
    if (llvm::Error e = forwardRound("evaluating"))
      return std::move(e);
    if (!s.lossRank)
      counted = cpu::HeadEval();
    setActivity("summing the evaluation's counts");
    if (llvm::Error e = sumCounts(*s.world, counted))
      return llvm::make_error<RankError>(
          s.rank, "summing the evaluation: " + llvm::toString(std::move(e)));
    total.add(counted);
  }
  setActivity("between iterations");
  return evalStats(total, set, done, start);
}
