//===- Schedule.h - the schedule model: stages, actions, programs -*- C++
//-*-===//
//
// What one training iteration is made of, as the plan records it and every
// consumer reads it: the pipeline stages with their costs and edges
// (PipelineGraph), the actions each stage runs (Program) and the messages
// between them (tags, shapes). The compiler generates programs
// (mllm/Sched/Generate.h), the `sched` dialect and the plan file carry
// them, the simulator and the runtime execute them, and verifySchedule()
// proves them deadlock-free for all of these. Plain C++ (namespace
// mllm::sched, the schedule's vocabulary), free of MLIR.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_SCHEDULE_H
#define MLLM_RUNTIME_SCHEDULE_H

#include "mllm/runtime/RankLayout.h"

#include "llvm/Support/Error.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mllm::sched {

/// One tensor of a point-to-point message.
struct TensorShape {
  std::vector<int64_t> dims;
  /// The element type as MLIR spells it: "bf16", "f16", "f32", "i8".
  std::string elementType = "bf16";
  int64_t elementBytes = 2;
  /// Product of the dims x elementBytes.
  int64_t bytes() const;
  bool operator==(const TensorShape &other) const {
    return dims == other.dims && elementType == other.elementType &&
           elementBytes == other.elementBytes;
  }
  bool operator!=(const TensorShape &other) const { return !(*this == other); }
};

/// The tensors of one message, sent as one buffer in this order (one tensor
/// per edge; a colocated encoder stage sends one per encoder, a cut of the
/// linear baseline everything that crosses it). Its size is the sum of the
/// tensors' bytes.
///
/// Immutable and shared: every send and receive of a link carries the same
/// shape, so copies share one list (a schedule of 24 stages x 16,384
/// microbatches has 1.1 million messages; a list each was 40% of
/// `mllmc --emit=plan`'s memory). push_back copies a shared list first.
class MessageShape {
public:
  using const_iterator = std::vector<TensorShape>::const_iterator;
  MessageShape() = default;
  MessageShape(std::vector<TensorShape> tensors);
  MessageShape(std::initializer_list<TensorShape> tensors)
      : MessageShape(std::vector<TensorShape>(tensors)) {}

  const std::vector<TensorShape> &tensors() const;
  size_t size() const { return tensors().size(); }
  bool empty() const { return !list || list->empty(); }
  const TensorShape &operator[](size_t i) const { return tensors()[i]; }
  const_iterator begin() const { return tensors().begin(); }
  const_iterator end() const { return tensors().end(); }
  void push_back(TensorShape tensor);
  /// Inserts [first, last) before `pos` (an iterator of this shape).
  template <typename It>
  void insert(const_iterator pos, It first, It last) {
    std::vector<TensorShape> copy = tensors();
    copy.insert(copy.begin() + (pos - begin()), first, last);
    *this = MessageShape(std::move(copy));
  }

  bool operator==(const MessageShape &other) const {
    return list == other.list || tensors() == other.tensors();
  }
  bool operator!=(const MessageShape &other) const { return !(*this == other); }

private:
  std::shared_ptr<const std::vector<TensorShape>> list; ///< Null: empty.
};
int64_t messageBytes(const MessageShape &shape);
/// "[1753, 2048] x bf16"; several tensors joined by " + ".
std::string formatShape(const MessageShape &shape);
/// The shape of a message of `bytes` bytes whose tensors are unknown:
/// [bytes] x i8.
MessageShape opaqueShape(int64_t bytes);

/// A stage's name: its part and its index within the part, "llm_s3" (a
/// colocated stage's part is "vision+audio"; a chain stage that merges
/// several is named "vision_s1+llm_s0").
std::string partStageName(llvm::StringRef part, int64_t index);
/// The index a stage name ends in ("_s" and digits), if it does.
std::optional<int64_t> partStageIndex(llvm::StringRef name);

/// One pipeline stage as the schedule sees it. All GPUs of a stage (its TP x
/// CP group, in every DP replica) run the same program.
struct StageInfo {
  std::string name; ///< e.g. "llm_s0".
  std::string part; ///< e.g. "llm", "vision"; colocated: "vision+audio".
  bool isLLM = false;
  /// Stage indices this stage receives activations from / sends to. An LLM
  /// first stage has one predecessor per encoder pipeline (fan-in). The
  /// schedule takes the edges from `prev` (`next` should list the same).
  std::vector<int> prev, next;
  /// Per microbatch, seconds, on one GPU of the stage.
  double fwd = 0, bwdInput = 0, bwdWeight = 0, recompute = 0;
  /// Seconds of the backward if every layer of the stage trained (weight +
  /// input gradients + recompute where requested): what a frozen-unaware
  /// system (LinearOneFOneB) runs. 0 when unknown.
  double unawareBackward = 0;
  /// Whether this stage runs an input-gradient / weight-gradient backward
  /// at all (frozen analysis); a stage with neither has no backward actions.
  bool needsInputGrad = false, needsWeightGrad = false;
  /// Whether the stage runs any backward.
  bool hasBackward() const { return needsInputGrad || needsWeightGrad; }
  /// Whether each predecessor edge carries a gradient back (the predecessor
  /// has trainable parameters at or upstream of it). Same order as `prev`;
  /// a missing entry counts as the predecessor's needsInputGrad ||
  /// needsWeightGrad.
  std::vector<bool> gradToPrev;
  /// Bytes of activations sent to each successor per microbatch (gradients
  /// going back have the same size unless `outputGradBytes` says otherwise).
  int64_t outputBytes = 0;
  /// Bytes of the gradient of this stage's output that each successor sends
  /// back per microbatch, when it is not `outputBytes` (colocated encoders of
  /// which only some train get only those encoders' slice back); -1: the
  /// same as `outputBytes`.
  int64_t outputGradBytes = -1;
  int64_t gradientBytes() const {
    return outputGradBytes < 0 ? outputBytes : outputGradBytes;
  }
  /// The tensors behind `outputBytes` (their bytes sum to it): per
  /// microbatch and GPU, [tokens, hidden] at the receiving stage's width
  /// (tokens / cp for a context-parallel LLM). Every edge out of the stage
  /// carries this shape, so a fan-in's edges carry their senders' shapes.
  /// Empty when unknown: the messages are then opaqueShape(bytes).
  MessageShape outputShape;
  /// The tensors of the gradient coming back when it is not all of
  /// `outputShape` (colocated encoders of which only some train); empty:
  /// `outputShape`.
  MessageShape outputGradShape;
  const MessageShape &gradientShape() const {
    return outputGradShape.empty() ? outputShape : outputGradShape;
  }
  /// Parameters with gradients on one GPU of the stage (0 when frozen), for
  /// the gradient all-reduce and the optimizer step.
  int64_t trainableParams = 0;
  /// Static memory of one GPU (weights, grads, optimizer), and the
  /// activation bytes one in-flight microbatch keeps.
  int64_t staticBytes = 0, activationBytesPerMicrobatch = 0;
  /// GPU memory capacity, to cap in-flight microbatches (0 = no cap).
  int64_t memoryCapacity = 0;
  /// Ranks of the stage (first global rank of each DP replica's TP x CP
  /// group is `firstRank + d * dpStride`), and the group sizes.
  int64_t firstRank = 0, dpStride = 1, tp = 1, cp = 1, dp = 1;
  /// Those ranks as a layout (TP innermost, as mllm-rank-map lays them out).
  runtime::RankLayout rankLayout() const {
    return runtime::RankLayout::tpInnermost(firstRank, dp, dpStride, cp, tp);
  }
};

struct PipelineGraph {
  std::vector<StageInfo> stages; ///< Topological order (encoders first).
  int64_t microbatches = 1;
  int64_t gpusPerNode = 8;
  double intraNodeBandwidth = 0, interNodeBandwidth = 0; ///< Bytes/s.
  double peakFlops = 0;                                  ///< Per GPU, for MFU.
  double flopsPerIteration = 0; ///< Model FLOPs of one iteration (all GPUs).
  int64_t tokensPerIteration = 0;
};

enum class ActionKind {
  Forward,
  /// Includes the recompute forward when requested. A stage that computes
  /// weight gradients only has no BackwardInput; its BackwardWeight then
  /// carries the recompute.
  BackwardInput,
  BackwardWeight,
  SendActivation,
  RecvActivation,
  SendGrad,
  RecvGrad,
  /// Gradient sync over DP x CP of this stage; `bytes` = trainableParams x
  /// kGradBytesPerParam.
  AllReduceGrads,
  OptimizerStep,
};

/// Classes of action kinds, used wherever actions are executed or checked.
inline bool isSend(ActionKind kind) {
  return kind == ActionKind::SendActivation || kind == ActionKind::SendGrad;
}
inline bool isRecv(ActionKind kind) {
  return kind == ActionKind::RecvActivation || kind == ActionKind::RecvGrad;
}
inline bool isComm(ActionKind kind) { return isSend(kind) || isRecv(kind); }
/// A send or receive of a gradient (vs an activation).
inline bool isGradMessage(ActionKind kind) {
  return kind == ActionKind::SendGrad || kind == ActionKind::RecvGrad;
}
inline bool isBackward(ActionKind kind) {
  return kind == ActionKind::BackwardInput ||
         kind == ActionKind::BackwardWeight;
}
/// Work a stage does itself (the optimizer step included).
inline bool isCompute(ActionKind kind) {
  return kind == ActionKind::Forward || isBackward(kind) ||
         kind == ActionKind::OptimizerStep;
}
/// Whether the action concerns one microbatch (vs the whole iteration).
inline bool perMicrobatch(ActionKind kind) {
  return kind != ActionKind::AllReduceGrads &&
         kind != ActionKind::OptimizerStep;
}

/// Gradients are accumulated and all-reduced in fp32.
constexpr int64_t kGradBytesPerParam = 4;

const char *toString(ActionKind kind);
/// The kind as the sched dialect's op and the plan file name it:
/// forward, backward_input, backward_weight, send_act, recv_act, send_grad,
/// recv_grad, all_reduce_grads, optimizer_step.
const char *actionMnemonic(ActionKind kind);
std::optional<ActionKind> parseActionMnemonic(llvm::StringRef name);

struct Action {
  ActionKind kind;
  int32_t microbatch = -1; ///< -1 for per-iteration actions.
  int32_t peer = -1;       ///< Peer stage of a send/recv.
  int64_t bytes = 0;       ///< Payload of a send/recv/all-reduce.
  /// The message tag of a send/recv (messageTag), -1 otherwise.
  int64_t tag = -1;
  /// The tensors of a send/recv (messageBytes(shape) == bytes); empty for
  /// other actions.
  MessageShape shape;
};

/// The tag of the message of microbatch `microbatch` of a send/recv of
/// `kind`: 2 x microbatch for activations, 2 x microbatch + 1 for
/// gradients. Between one pair of stages (and so of ranks) it tells every
/// message of an iteration apart: (sender, receiver, tag) identifies it.
int64_t messageTag(ActionKind kind, int32_t microbatch);

/// The program of one stage.
struct Program {
  int stage = 0;
  std::vector<Action> actions;
  /// Most microbatches whose activations this stage holds at once: warm-up
  /// + 1 (at most the microbatch count) with a backward, 1 without.
  int64_t maxInFlight = 0;
  /// Forwards run before the first backward (1F1B warm-up; the microbatch
  /// count for GPipe and for stages without a backward).
  int64_t warmup = 0;
};

/// The collectives a compute action runs inside it: the TP all-reduces of a
/// tensor-parallel stage's forward and input backward, and a CP stage's K/V
/// all-gather (forward; also in the backward that runs the attention
/// backward) and dK/dV reduce-scatter. The attention backward runs in the
/// input backward when the microbatch has one, else in the weight backward.
struct ComputeCollectives {
  bool tpAllReduce = false, cpAllGather = false, cpReduceScatter = false;
};
ComputeCollectives computeCollectives(const StageInfo &stage,
                                      const Program &program, size_t action);
/// The same for every action of `program`, in one pass (linear; the form
/// above scans the program for a weight backward).
std::vector<ComputeCollectives> computeCollectives(const StageInfo &stage,
                                                   const Program &program);

/// A run of a program's actions: actions[begin, begin + length), `times`
/// times in a row, the k-th time (from 0) with every microbatch + k and
/// every tag + 2k. A 1F1B program is a warm-up, a steady state and a
/// cool-down, each such a run: the plan file writes a run as one `repeat`
/// entry (docs/plan-format.md, "Repeated actions"), so its size does not grow
/// with the microbatch count, and a consumer may execute it as a loop.
struct ActionRun {
  size_t begin = 0, length = 1;
  int64_t times = 1; ///< 1: the actions one by one.
};
/// The fewest repetitions a run has (shorter ones are single actions), and
/// the longest block tried (a fan-in stage's steady state with a few
/// encoders fits).
constexpr int64_t kMinActionRepeat = 4;
constexpr size_t kMaxActionRunLength = 64;
/// `b` is `a` k microbatches later: same kind, peer, bytes, shape and
/// collectives, microbatch + k, tag + 2k.
bool shiftedEqual(const Action &a, const ComputeCollectives &ca,
                  const Action &b, const ComputeCollectives &cb, int64_t k);
/// A program's actions as runs, greedily from the front: at each action the
/// block (of at most kMaxActionRunLength actions) that repeats over the most
/// actions, shorter blocks first on ties, if it repeats kMinActionRepeat
/// times. Deterministic, so a plan's write -> read -> write stays
/// byte-identical. `collectives` are computeCollectives(stage, program).
std::vector<ActionRun>
findActionRuns(const std::vector<Action> &actions,
               const std::vector<ComputeCollectives> &collectives);

/// "send_activation microbatch 3 to 'llm_s0', 1048576 bytes".
std::string describeAction(const PipelineGraph &graph, const Action &action);

/// Proves that the programs complete: every send has a matching receive
/// (same pair, kind, microbatch, size, tag and shape, in the same order) and
/// executing
/// them with asynchronous sends (posted, never blocking) and blocking
/// receives never waits forever. A deadlock is a cycle of blocked receives;
/// the error names a stuck stage, its action and the peer it waits for. It also
/// checks each program's dependency order (every microbatch forwarded once,
/// received before it is used, sent after it is computed, the optimizer step
/// after the last backward, at most one gradient all-reduce and optimizer
/// step and only with weight gradients) and that it holds at most
/// `maxInFlight` microbatches; that activations go to later stages and
/// gradients to earlier ones, one message per microbatch and tag on each
/// link, each of the size of its shape. These are also the checks the sched
/// ops' verifiers make on IR, so that a schedule generated in memory
/// (--emit=plan) is checked as much as one in IR. Only the programs are
/// checked, not the graph's edges (the linear baseline uses other edges than
/// the graph's).
llvm::Error verifySchedule(const PipelineGraph &graph,
                           const std::vector<Program> &programs);

/// The error verifySchedule() returns: the message, and where it is when it
/// concerns one action (stage and action index, else -1), so that callers
/// can point at the action without reading the message.
class ScheduleError : public llvm::ErrorInfo<ScheduleError> {
public:
  static char ID;
  ScheduleError(std::string message, int stage = -1, int64_t action = -1)
      : message(std::move(message)), stage(stage), action(action) {}
  void log(llvm::raw_ostream &os) const override { os << message; }
  std::error_code convertToErrorCode() const override {
    return llvm::inconvertibleErrorCode();
  }
  std::string message;
  int stage;
  int64_t action;
};

} // namespace mllm::sched

#endif // MLLM_RUNTIME_SCHEDULE_H
