//===- DeviceRankEval.cpp - a held-out evaluation on the GPUs -------------===//
//
// DeviceRankRunner::evaluate: the forward part of the rank's program over
// the held-out batches, as the CPU's RankRunner::evaluate runs it (the
// plan's microbatches at a time, every replica its own batches), on the
// device: the head stops at its logits' statistics, the head's ranks count,
// the world sums.
//
//===----------------------------------------------------------------------===//
#include "DeviceRankImpl.h"

#include "llvm/Support/FormatVariadic.h"

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::device;
using sched::ActionKind;

/// The actions of a forward-only program: the schedule's order of the
/// forwards is kept, and with it the verified order of their messages.
static bool runsInEvaluation(ActionKind kind) {
  return kind == ActionKind::Forward || kind == ActionKind::SendActivation ||
         kind == ActionKind::RecvActivation;
}

llvm::Error DeviceRankRunner::Impl::forwardRound(
    const MessagesHook &beforeRound,
    llvm::function_ref<void(const sched::Action &)> beforeForward,
    llvm::function_ref<llvm::Error(const sched::Action &)> afterForward) {
  DeviceTrainer::Impl &d = dev;
  auto runs = [&](const sched::Action &a) {
    return runsInEvaluation(a.kind) && mbs.count(a.microbatch);
  };
  if (beforeRound)
    beforeRound(messagesOf(runs));
  auto fail = [&](size_t i, llvm::Error e) -> llvm::Error {
    d.evaluating = d.generating = false;
    drain();
    return e.isA<exec::RankError>() ? std::move(e)
                                    : actionError(i, std::move(e));
  };
  for (size_t i = 0; i < program.actions.size(); ++i) {
    const sched::Action &a = program.actions[i];
    llvm::Error e = llvm::Error::success();
    if (runs(a)) {
      exec::setActivity("%s, at action %zu (%s)",
                        d.generating ? "generating" : "evaluating", i,
                        sched::describeAction(graph(), a).c_str());
      const bool forward = a.kind == ActionKind::Forward;
      if (forward)
        beforeForward(a);
      e = run(i);
      for (ShardCollectives *c : {d.tp, d.cp})
        if (!e && c)
          e = c->finish();
      if (!e && forward)
        e = afterForward(a);
    }
    // Sends are waited for where training waits for them, so that no
    // later buffer at their offsets is written while they are in flight.
    if (!e)
      e = waitSends(static_cast<int64_t>(i));
    if (e)
      return fail(i, std::move(e));
  }
  d.evaluating = d.generating = false;
  exec::setActivity("between iterations");
  MLLM_TRY(endIteration());
  if (llvm::Error e = check(cudaStatus(cudaStreamSynchronize(d.stream)),
                            "the round's microbatches")) {
    drain();
    return wrap(std::move(e));
  }
  return llvm::Error::success();
}

llvm::Expected<exec::EvalStats>
DeviceRankRunner::evaluate(exec::EvalSet &set,
                           const MessagesHook &beforeRound) {
  Impl &s = *impl;
  DeviceTrainer::Impl &d = s.dev;
  MLLM_TRY(s.checkIdle());
  MLLM_TRY(agreeOnStart());
  s.tracing = false; // A traced step's events stay as they were.
  if (llvm::Error e = d.agreeOnStart())
    return s.wrap(std::move(e));
  auto start = std::chrono::steady_clock::now();
  const exec::Rounds rounds(*s.plan);
  const int64_t batches = set.batchCount();
  // The head's ranks (TP rank 0 of each replica, every CP rank) count; the
  // world sums every round, so that no rank runs ahead of the others by
  // more than a round (a wait has a deadline).
  cpu::HeadEval total;
  for (int64_t round = 0; round < rounds.count(batches); ++round) {
    cpu::HeadEval counted;
    for (int64_t mb = 0; mb < rounds.microbatches; ++mb) {
      const int64_t k = rounds.item(round, mb, s.place.coord.d);
      if (k >= batches)
        break;
      auto got = set.batch(k);
      if (!got) {
        s.drain();
        return s.error("reading evaluation batch " + llvm::Twine(k + 1) + ": " +
                       llvm::toString(got.takeError()));
      }
      // Buffers sized for the plan's CP shares take the plan's split (any
      // split computes the same attention); those sized for every batch's
      // own split take the batch's, as training does.
      if (!d.cpPerBatch && got->layout && !got->layout->cpTokens.empty()) {
        auto layout = std::make_shared<exec::BatchLayout>(*got->layout);
        layout->cpTokens.clear();
        got->layout = std::move(layout);
      }
      s.mbs[mb] = std::move(*got);
    }
    d.evaluating = true;
    // The head's statistics came back to the host with its forward.
    auto count = [&](const sched::Action &a) -> llvm::Error {
      if (!s.holdsHead)
        return llvm::Error::success();
      // Its rows' targets: this rank's tokens under CP.
      exec::MicrobatchData rows;
      const exec::MicrobatchData &whole = s.mbs.at(a.microbatch);
      rows.targets = whole.targets;
      rows.layout = whole.layout;
      rows = exec::localShare(*s.model, std::move(rows));
      return d.countEvaluation(rows.targets, counted);
    };
    auto nothing = [](const sched::Action &) {};
    MLLM_TRY(s.forwardRound(beforeRound, nothing, count));
    if (!s.holdsHead || s.place.coord.t != 0)
      counted = cpu::HeadEval();
    if (llvm::Error e = exec::sumCounts(*s.groups.world, counted)) {
      s.drain();
      return s.error("summing the evaluation: " + llvm::toString(std::move(e)));
    }
    total.add(counted);
  }
  return exec::evalStats(total, set, d.done, start);
}
