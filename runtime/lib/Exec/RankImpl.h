//===- RankImpl.h - the state of one rank of a parallel run -----*- C++ -*-===//
//
// Private to the RankRunner's files: the rank's view of the plan (its
// program, stage coordinates, peers, groups) and the per-microbatch state
// of an iteration.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_EXEC_RANKIMPL_H
#define MLLM_RUNTIME_EXEC_RANKIMPL_H

#include "mllm/runtime/exec/Generate.h"
#include "mllm/runtime/exec/KeyCache.h"
#include "mllm/runtime/exec/MessageArena.h"
#include "mllm/runtime/exec/RankRunner.h"

#include "llvm/ADT/ArrayRef.h"

#include <chrono>
#include <cstdio>
#include <optional>

namespace mllm::runtime::exec {
/// A posted receive: one copy of the message per source rank, back to back
/// in the action's buffer of the MessageArena.
struct PendingRecv {
  size_t action;
  int peerStage;
  std::vector<FlowKey> keys;
  std::vector<std::vector<int64_t>> shapes;
  std::vector<int64_t> sources;
  float *buffer = nullptr;
  int64_t floats = 0; ///< Per source.
  std::vector<std::unique_ptr<Request>> requests;
};

struct PostedSend {
  size_t action;
  /// The action at whose end it is waited for (sendReleases), or -1: the
  /// end of the iteration.
  int64_t release = -1;
  /// In the MessageArena.
  float *buffer = nullptr;
  int64_t floats = 0;
  std::vector<int64_t> destinations;
  std::vector<std::unique_ptr<Request>> requests;
};

/// One microbatch's state on this rank.
struct MbState {
  MicrobatchData data;
  MicrobatchContext ctx;
  /// Forward tensors received or produced and not yet consumed or sent.
  std::map<FlowKey, Activation> held;
  /// Gradients received for the tensors this stage sent, and the ones it
  /// computed (or passes back) for the tensors it received.
  std::map<FlowKey, Activation> grad, gradOut;
  /// The shape of every forward tensor that crossed this rank.
  std::map<FlowKey, std::vector<int64_t>> shapes;
  /// Received tensors sent on unchanged (the linear baseline).
  std::set<FlowKey> passed;
  std::vector<FlowKey> received;
  bool gradsReady = false;
  /// Per range: its output gradient, or none (the range gets no gradient).
  std::vector<std::optional<Activation>> dOut;
  /// Generation: the outputs of this stage's encoder ranges for the
  /// microbatch's sample (not owned). Its media do not change while its
  /// text grows, so the first round computes them and later rounds reuse
  /// them; null otherwise.
  std::map<FlowKey, Activation> *encoderOutputs = nullptr;
};

struct RankRunner::Impl {
  const Plan *plan = nullptr;
  const sched::PipelineGraph *graph = nullptr;
  std::vector<StageFlow> flows;
  std::vector<int64_t> programOf; ///< Graph stage -> program.
  int rank = 0;
  int64_t program = -1;
  const sched::Program *prog = nullptr;
  const sched::StageInfo *stage = nullptr;
  RankLayout::Coord coord;
  std::unique_ptr<Group> world, gradSync, tied, tp, cp;
  /// This rank's stage holds the LLM's token embedding / its LM head.
  bool holdsEmbedding = false, holdsHead = false;
  bool lossRank = false;
  std::map<int64_t, MbState> mbs;
  /// The iteration's send and receive buffers. Declared before the posted
  /// messages, so that their requests are cancelled before it goes.
  MessageArena messages;
  /// The last training step's arena: its planned size and measured peak
  /// (an evaluation lays the arena out again).
  int64_t stepArenaBytes = 0, stepArenaPeak = 0;
  std::map<int64_t, std::vector<PendingRecv>> pendingAct, pendingGrad;
  std::vector<PostedSend> sends;
  /// Per action of the program: sched::sendReleases.
  std::vector<int64_t> sendRelease;
  /// Generation: per slot, the encoder outputs of its sample
  /// (MbState::encoderOutputs), dropped when a new sample takes the slot.
  std::map<int64_t, std::map<FlowKey, Activation>> generationEncoders;
  /// Generation with the key cache: per slot, its sample's (dropped with
  /// the encoder outputs); none when generation recomputes.
  bool generationCachesKeys = false;
  std::map<int64_t, SampleKeys> generationKeys;
  /// What this replica's slots ran (NextToken::work; the dropped caches
  /// are generationKeys').
  GenerationWork generationWork;
  /// Per microbatch: its last backward action of the program. After it the
  /// microbatch's received gradients are dropped, as the memory plan says.
  std::map<int64_t, int64_t> lastBackward;
  double loss = 0;
  /// Tracing: the iteration's start and the events of the receives waited
  /// for (RankRunner::step adds the rest).
  bool tracing = false;
  std::chrono::steady_clock::time_point t0;
  std::vector<RankEvent> *events = nullptr;
  double lastWaitEnd = 0;
  double now() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
        .count();
  }

  const StageFlow &flow() const { return flows[program]; }
  const StageFlow &flowOfStage(int stage) const {
    return flows[programOf[stage]];
  }
  const sched::StageInfo &info(int stage) const { return graph->stages[stage]; }

  /// The ranks of `peer` a message action `kind` goes to or comes from.
  std::vector<int64_t> peersOf(const sched::StageInfo &peer,
                               sched::ActionKind kind) const {
    return messagePeers(*stage, coord, peer, kind);
  }
};

/// Per action of the rank's program: the floats its send or receive
/// buffer holds in this iteration (a receive: one copy per source rank),
/// 0 for other actions. Reads every microbatch's data (CP splits).
std::vector<int64_t> messageFloats(const Model &model,
                                   const RankRunner::Impl &s);

} // namespace mllm::runtime::exec

#endif // MLLM_RUNTIME_EXEC_RANKIMPL_H
