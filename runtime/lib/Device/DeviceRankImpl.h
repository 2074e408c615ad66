//===- DeviceRankImpl.h - the state of one GPU of a pipeline ----*- C++ -*-===//
//
// Private to DeviceRankRunner's files: the rank's view of the plan (its
// program with its message sizes, peers and groups), the device state of
// DeviceTrainer::Impl restricted to its stage, and one iteration's
// microbatches and posted messages.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_DEVICE_DEVICERANKIMPL_H
#define MLLM_RUNTIME_DEVICE_DEVICERANKIMPL_H

#include "DeviceImpl.h"

#include "mllm/runtime/device/DeviceRankRunner.h"

#include <chrono>

namespace mllm::runtime::device {

struct DeviceRankRunner::Impl {
  const Plan *plan = nullptr;
  RankGroups groups;
  RankPlace place;
  /// The plan's program with this rank's message sizes (sizeMessages()).
  sched::Program program;
  std::unique_ptr<exec::Model> model;
  std::unique_ptr<exec::DataSource> data;
  DeviceTrainer::Impl dev;
  std::vector<exec::NamedParam> owned;
  /// The tied embedding's copy on this rank, when it sums it with a peer.
  DeviceParam *tied = nullptr;
  bool holdsHead = false;
  /// Per microbatch, the action its backward runs at; the last of them.
  std::map<int64_t, int64_t> backwardAt;
  int64_t lastBackward = -1;
  /// The flows of every program (what each stage's messages carry).
  std::vector<exec::StageFlow> flows;
  /// Per message action: its buffer's offset in the arena, and its
  /// tensors back to back: each a chain's activation entering step `step`
  /// (a cut) or, at the chain's end, an encoder's projected tokens, or
  /// their gradient.
  struct Part {
    size_t chain = 0, step = 0;
    bool tokens = false;
    /// A tensor the stage neither makes nor reads, only passes on (the
    /// linear baseline's cuts): received, then sent as it came.
    bool pass = false;
    int64_t offset = 0, bytes = 0; ///< Bytes into the message, and its own.
  };
  struct Message {
    int64_t offset = 0;
    std::vector<Part> parts;
  };
  std::map<int64_t, Message> messages;
  bf16 *partOf(int64_t action, const Part &p) {
    return reinterpret_cast<bf16 *>(dev.arena.data() +
                                    messages.at(action).offset + p.offset);
  }
  /// Per action kind and microbatch: the message actions, in order.
  std::map<std::pair<sched::ActionKind, int64_t>, std::vector<int64_t>> comms;

  // One iteration.
  std::map<int64_t, exec::MicrobatchData> mbs;
  /// A round of generation with the key cache: per microbatch, the cache
  /// its batch's share (MicrobatchData::cp) reads the kept keys from
  /// (DeviceRankGenerate.cpp); its buffers are bound for that share.
  std::map<int64_t, ShardCollectives *> roundCaches;
  /// Its batches' own CP splits, for the step's report (as the CPU's).
  exec::CPSplitStats cpStats;
  struct Posted {
    int64_t action = 0, release = -1;
    std::unique_ptr<Request> request;
  };
  std::vector<Posted> sends;
  /// Per receive action, one request per source (several: a gradient
  /// from every CP rank of the next stage, each into its own copy).
  std::map<int64_t, std::vector<std::unique_ptr<Request>>> recvs;

  llvm::Error error(const llvm::Twine &message) const {
    return llvm::make_error<exec::RankError>(place.rank, message.str());
  }
  llvm::Error actionError(size_t index, llvm::Error e) const;
  /// `e` as a RankError naming the stage, unless it is one (or success).
  llvm::Error wrap(llvm::Error e) const {
    if (!e || e.isA<exec::RankError>())
      return e;
    return error("stage '" + graph().stages[program.stage].name +
                 "': " + llvm::toString(std::move(e)));
  }
  const sched::PipelineGraph &graph() const { return plan->schedule->graph; }
  /// The ranks a message action goes to or comes from (one for a
  /// receive: cp = 1).
  std::vector<int64_t> peersOf(const sched::Action &a) const {
    return exec::messagePeers(graph().stages[program.stage], place.coord,
                              graph().stages[a.peer], a.kind);
  }
  bf16 *buffer(int64_t action) {
    return reinterpret_cast<bf16 *>(dev.arena.data() +
                                    messages.at(action).offset);
  }
  /// Microbatch `mb`'s message actions of `kind`.
  const std::vector<int64_t> &commsOf(sched::ActionKind kind,
                                      int64_t mb) const {
    static const std::vector<int64_t> none;
    auto it = comms.find({kind, mb});
    return it == comms.end() ? none : it->second;
  }
  /// The part of microbatch `mb`'s messages of `kind` that passes on the
  /// same tensor as `p`, or null.
  const Part *passPart(sched::ActionKind kind, int64_t mb, const Part &p,
                       int64_t *action = nullptr) const {
    for (int64_t r : commsOf(kind, mb))
      for (const Part &q : messages.at(r).parts)
        if (q.pass && q.chain == p.chain && q.step == p.step) {
          if (action)
            *action = r;
          return &q;
        }
    return nullptr;
  }
  /// The tensors (flow keys) of message action `a`: as the CPU runner's.
  std::vector<exec::FlowKey> keysOf(const sched::Action &a) const;
  /// Sizes each message of `program` as this rank sends or receives it.
  void sizeMessages();
  llvm::Error waitRecv(int64_t action);
  llvm::Error waitSends(int64_t at);
  /// Action `index` of an iteration: what run() does, then the action's
  /// collectives and the sends it releases waited for (and its trace
  /// event); errors name the rank, stage and action, after drain().
  llvm::Error stepAction(size_t index);
  llvm::Error run(size_t index);
  /// The rank as a StepDriver sees it (DeviceSteps.cpp): the plan's
  /// schedule and program, stepAction for each action.
  std::unique_ptr<exec::ProgramRunner> programRunner();
  /// programRunner()'s, and the driver mllm-run's factory made for it
  /// (exec/StepDriver.h; none without a factory: the loop over
  /// stepAction runs the iteration).
  std::unique_ptr<exec::ProgramRunner> steps;
  std::unique_ptr<exec::StepDriver> driver;
  llvm::Error checkMessages();
  /// An error when a failed step left messages or microbatches behind, or
  /// a failure ended the rank's steps.
  llvm::Error checkIdle() const {
    if (failed || !sends.empty() || !recvs.empty() || !mbs.empty())
      return error("the previous step failed part-way; a rank cannot "
                   "continue from there (restart the job, from a "
                   "checkpoint)");
    return llvm::Error::success();
  }
  /// The messages of the program's actions `posts` selects, in the order
  /// and sizes run() posts them (DeviceRankRunner::messages()).
  std::vector<cuda::P2PMessage>
  messagesOf(llvm::function_ref<bool(const sched::Action &)> posts) const;
  /// After a failure: the gradient sums posted waited for, the messages'
  /// requests dropped (an NCCL operation is not cancelled by that: the
  /// launcher ends the job), and every later step refused.
  void drain();
  /// After an iteration's actions: the sends waited for, every receive
  /// used, the microbatches dropped (drain() on failure).
  llvm::Error endIteration();
  /// The forward part of the program (its forwards and their activations'
  /// messages, in program order) for the microbatches in `mbs`, as an
  /// evaluation or a generation runs it: `beforeRound` (if given) gets its
  /// messages, `beforeForward` and `afterForward` run around each forward
  /// (the head's results are on the host after it). Then the iteration
  /// ends, and with it the head's evaluation and generation modes (drained
  /// on failure).
  llvm::Error forwardRound(
      const DeviceRankRunner::MessagesHook &beforeRound,
      llvm::function_ref<void(const sched::Action &)> beforeForward,
      llvm::function_ref<llvm::Error(const sched::Action &)> afterForward);
  bool failed = false;
  /// Before the first step: every rank is at the same step.
  bool stepsAgreed = false;
  /// Tracing a step: its start, the end of the last receive waited for,
  /// and the events so far.
  bool tracing = false, traceNext = false;
  std::chrono::steady_clock::time_point t0;
  double lastWaitEnd = 0;
  std::vector<exec::RankEvent> events;
  double now() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
        .count();
  }
  exec::RankEvent event(const sched::Action &a, double start) const {
    exec::RankEvent e;
    e.stage = program.stage;
    e.kind = static_cast<int32_t>(a.kind);
    e.microbatch = a.microbatch;
    e.rank = place.rank;
    e.start = start;
    return e;
  }
};

} // namespace mllm::runtime::device

#endif // MLLM_RUNTIME_DEVICE_DEVICERANKIMPL_H
