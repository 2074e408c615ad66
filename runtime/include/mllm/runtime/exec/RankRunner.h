//===- RankRunner.h - one rank of a parallel run ----------------*- C++ -*-===//
//
// Runs the program the plan gives this rank (docs/plan-format.md): its
// stage's share of the model (the steps of the partition units it holds,
// several parts' for colocated encoders), microbatch by microbatch in the
// program's order. Messages follow the plan: receive buffers sized from the
// plan's shapes, the plan's tags, sends posted asynchronously and waited at
// the end of the iteration, receives waited just before the action that
// needs them. Gradients are all-reduced over the stage's grad_sync group and
// the optimizer steps the stage's parameters; the result is the one-process
// run's (exec::Trainer) up to the order of floating-point sums.
//
// What a message carries is derived, not exchanged: every stage knows which
// tensors each stage produces (an encoder's projected tokens, a part's
// activation at a cut), consumes and passes on, so both ends agree on the
// tensors and their order (the plan's shapes are checked against it before
// the first action runs).
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_EXEC_RANKRUNNER_H
#define MLLM_RUNTIME_EXEC_RANKRUNNER_H

#include "mllm/runtime/Comm.h"
#include "mllm/runtime/RankLayout.h"
#include "mllm/runtime/exec/Checkpoint.h"
#include "mllm/runtime/exec/Data.h"
#include "mllm/runtime/exec/Evaluate.h"
#include "mllm/runtime/exec/Generate.h"
#include "mllm/runtime/exec/Optimizer.h"
#include "mllm/runtime/exec/Trainer.h"

#include <functional>
#include <map>
#include <optional>
#include <set>

namespace mllm::runtime::exec {

/// A tensor that flows between stages: the activation of chain `chain`
/// entering its step `step` (step == chain size: the part's output, an
/// encoder's projected tokens).
struct FlowKey {
  int64_t chain = 0, step = 0;
  bool operator<(const FlowKey &o) const {
    return chain != o.chain ? chain < o.chain : step < o.step;
  }
  bool operator==(const FlowKey &o) const {
    return chain == o.chain && step == o.step;
  }
};

/// The steps of one chain a stage runs.
struct StageRange {
  size_t chain = 0, first = 0, last = 0;
};

/// What every stage of the plan runs and passes on, the same on every
/// rank.
struct StageFlow {
  std::vector<StageRange> ranges;
  /// Tensors it produces, needs from earlier stages, and sends on (to its
  /// one successor), ascending.
  std::vector<FlowKey> produced, consumed, sends;
};

/// The flows of every program of the plan's schedule.
llvm::Expected<std::vector<StageFlow>> planFlows(const Model &model);

/// The checks every rank of a parallel run makes before its first message,
/// each giving every rank the same answer: every rank of `world` read the
/// same plan (its content hash), the world has the plan's size, and every
/// rank has a program. `rank` is this rank, for the message.
llvm::Error agreeOnPlan(const Plan &plan, Group &world, int rank);

/// Before a run's first step, collectively over `world`: every rank is at
/// `step` (stages that resumed from different checkpoints would otherwise
/// pair messages of different steps); the error names the first rank that
/// is not.
llvm::Error agreeOnStep(Group &world, int64_t step);

/// The LLM's token embedding and LM head on `rank` (at `coord` of its
/// stage): whether it holds each and, when the head is tied to an embedding
/// that trains on another stage and `rank` holds one of the two, the rank
/// holding the other (the two copies' gradients are summed before every
/// optimizer step); -1 otherwise.
struct TiedHead {
  bool embedding = false, head = false;
  int64_t peer = -1;
};
TiedHead tiedHead(const Plan &plan, int rank, const RankLayout::Coord &coord);

/// The ranks a message action `kind` of a rank at `coord` of `stage`
/// exchanges with `peer`'s ranks (docs/runtime.md, "Rank pairing"): a send
/// goes to, a receive comes from, those ranks. An activation received at
/// (d, c, t) comes from the sender's (d, c mod cp_s, t mod tp_s); a
/// gradient goes back from the receivers with t == t_s mod tp_r and is
/// received from every CP rank of the receivers (summed there).
std::vector<int64_t> messagePeers(const sched::StageInfo &stage,
                                  const RankLayout::Coord &coord,
                                  const sched::StageInfo &peer,
                                  sched::ActionKind kind);

/// The dims of tensor `planned` of a message that carries `key`, on a rank
/// of `model` and for microbatch `data`: the plan's, except for the LLM's
/// activation at a cut (and its gradient) under CP, which is this rank's
/// share of the tokens of each sequence (the batch's own split when it has
/// one, or generation's new tokens (KeyCache.h), else `model.localTokens`). The
/// plan's shape is the even share, and an assignment balanced for the mask
/// gives some ranks more; the two ends of such a message are the same CP rank
/// of the LLM's stages (one cp per part), so they agree on its size. Shared by
/// the CPU runner and the device executor.
std::vector<int64_t> messageTensorDims(const Model &model, const FlowKey &key,
                                       const sched::TensorShape &planned,
                                       const MicrobatchData &data);
/// The same for a rank holding `localTokens` tokens of each sequence (an
/// executor that sizes its buffers for the largest share).
std::vector<int64_t> messageTensorDims(const Model &model, const FlowKey &key,
                                       const sched::TensorShape &planned,
                                       int64_t localTokens);

/// Writes a sharded checkpoint of step `step` into `dir`, collectively over
/// `world` (every rank, `rank` this one): rank 0 makes `.step-N.partial`,
/// every rank given `writeShard` writes its shard at the path it is passed
/// (`rank-R.safetensors` there) or nothing, and only when all succeeded
/// does rank 0 rename the directory to `step-N`, so a checkpoint is never
/// torn across ranks. Errors are RankErrors.
llvm::Error writeShardedCheckpoint(
    Group &world, int rank, llvm::StringRef dir, int64_t step,
    const std::function<llvm::Error(llvm::StringRef shard)> &writeShard);

/// The LLM's context-parallel shares for a stage with cp > 1: every CP
/// rank's tokens of a sequence (the plan's assignment, ascending), or an
/// error naming the stage when the plan has none for its cp.
llvm::Expected<std::vector<std::vector<int64_t>>>
contextShares(const Plan &plan, const sched::StageInfo &stage);

/// Every CP rank's tokens of a sequence for microbatch `data`: the batch's
/// own split when it has one (real data, BatchSplit.h), else the plan's
/// (`model.contextParallel.tokens`).
const std::vector<std::vector<int64_t>> &cpSplit(const Model &model,
                                                 const MicrobatchData &data);

/// `full` with the LLM's token ids and targets of this rank's tokens under
/// CP (of cpSplit()); as it is without CP.
MicrobatchData localShare(const Model &model, MicrobatchData full);

/// Where token `row` of a sequence of `data` lies among this rank's tokens
/// (its CP share of cpSplit()), -1 when on another CP rank; `row` itself
/// without CP.
int64_t localRow(const Model &model, const MicrobatchData &data, int64_t row);

/// Collective over `world`: every query's token from the one rank that
/// found it (`offered`: slot -> id, -1 for a row of NaN, on that rank
/// only), into `ids` on every rank; `width` slots. A slot no rank or
/// several ranks answered is an internal error naming it, not a token.
/// Shared by the CPU and device ranks' generation.
llvm::Error shareTokens(Group &world, int64_t width,
                        const std::map<int64_t, int64_t> &offered,
                        llvm::ArrayRef<TokenQuery> queries,
                        llvm::MutableArrayRef<int64_t> ids);

/// Writes the checkpoint shard of a rank holding `params` (some of them
/// tensor-parallel shards) to `path`: collectively over `tp` (its TP group;
/// null without TP) each sharded tensor, moments included, is assembled
/// whole, and TP rank 0 writes, so a checkpoint does not depend on the
/// parallel layout.
llvm::Error writeTensorParallelCheckpoint(
    llvm::StringRef path, const Plan &plan, llvm::ArrayRef<NamedParam> params,
    const Optimizer &optimizer, const CheckpointInfo &info, Group *tp);

/// The error of a rank: its rank and, when it concerns one, the action.
class RankError : public llvm::ErrorInfo<RankError> {
public:
  static char ID;
  RankError(int rank, std::string message)
      : rank(rank), message(std::move(message)) {}
  void log(llvm::raw_ostream &os) const override {
    os << "rank " << rank << ": " << message;
  }
  std::error_code convertToErrorCode() const override {
    return llvm::inconvertibleErrorCode();
  }
  int rank;
  std::string message;
};

/// One action as it ran on a rank (mllm-run --trace): seconds from the
/// start of the iteration. A receive is the time the rank waited for it; a
/// compute action excludes that wait.
struct RankEvent {
  int32_t stage = 0, kind = 0, microbatch = -1, peer = -1;
  int64_t rank = 0;
  double start = 0, end = 0;
};

/// Collective over `world`: every rank's `events` on the group's rank 0,
/// nothing on the others.
llvm::Expected<std::vector<RankEvent>>
gatherRankEvents(Group &world, const std::vector<RankEvent> &events);

/// What this rank is doing now, kept up to date for a signal handler to
/// print when the launcher stops the job (async-signal-safe to read).
const char *currentActivity();
/// Records what this rank does now, printf-style (the CPU and the device
/// runners keep it up to date).
void setActivity(const char *format, ...) __attribute__((format(printf, 1, 2)));

class RankRunner : public ProgramRunner {
public:
  /// This rank's share of `model`. Checks that the world matches the plan
  /// and that every rank read the same plan (an error on every rank), builds
  /// the rank's share of the model (its stage's weights, TP shards and CP
  /// token share) from `seed` and its data source with `makeData`, and
  /// refuses what the runner does not execute.
  using DataFactory = std::function<llvm::Expected<std::unique_ptr<DataSource>>(
      const Model &model)>;
  static llvm::Expected<std::unique_ptr<RankRunner>>
  create(const Plan &plan, uint64_t seed, Comm &comm,
         const DataFactory &makeData);
  const Model &theModel() const { return model; }

  /// Collective: every rank is at the same step (agreeOnStep). Call it on
  /// every rank after load() and before the first step, also on a rank
  /// with no step left to run; step() calls it if it was not.
  llvm::Error agreeOnStart();
  /// One iteration: the program's actions, then the loss summed over the
  /// world (every rank returns the same StepStats).
  llvm::Expected<StepStats> step();
  /// Collective: the held-out loss and token accuracy of the current
  /// weights on `set` (the same on every rank; docs/runtime.md,
  /// "Evaluation and generation"). The forwards of the rank's program and
  /// their activations' messages run, in the program's order, over the
  /// plan's microbatches at a time (each replica its own batches); the LM
  /// head's ranks count. The interpreter runs them, also where step() runs
  /// compiled step functions.
  llvm::Expected<EvalStats> evaluate(EvalSet &set);
  /// Collective: greedy generation with the current weights, for an
  /// exec::Generator on every rank (docs/runtime.md, "Evaluation and
  /// generation"). It continues one sample per microbatch of each replica
  /// at once (slot j dp + d: replica d's microbatch j); each round runs the
  /// forward part of the program as evaluate() does, the LM head's rank
  /// holding a sample's last token predicts its next, and the world sums
  /// the predictions so that every rank's Generator continues alike. With
  /// `cacheKeys` (and canCacheKeys), after a sample's first round the
  /// rounds run the LLM's stages on its new token only, each rank keeping
  /// its layers' keys and values (KeyCache.h); the messages between LLM
  /// stages then carry that token's rows.
  llvm::Expected<std::unique_ptr<NextToken>> nextToken(bool cacheKeys = true);
  /// Action `index` of this rank's program, for a StepDriver inside step();
  /// errors name the rank, stage and action.
  llvm::Error runAction(size_t index) override;
  // ProgramRunner: the plan's schedule and this rank's program in it.
  const sched::PipelineGraph &graph() const override;
  const std::vector<sched::Program> &programs() const override;
  const std::string &scheduleKind() const override;
  int64_t programIndex() const override;
  sched::MemoryPlan memoryPlan() const override;
  int64_t recordedArena() const override;
  llvm::Error makeError(const llvm::Twine &message) const override;
  int rank() const override;
  std::string describe() const override;
  bool parallel() const override { return true; }
  int64_t stepsDone() const { return done; }

  /// Writes this rank's shard of a checkpoint into `dir`: every rank that
  /// owns parameters (replica 0) writes `rank-R.safetensors` into
  /// `.step-N.partial`, and only when all succeeded is it renamed to
  /// `step-N`, so a checkpoint is never torn across ranks.
  llvm::Error save(llvm::StringRef dir);
  /// Restores this rank's parameters and moments from a checkpoint of the
  /// same model (sharded or one file; this plan's or another's, re-sharded
  /// by name).
  llvm::Error load(llvm::StringRef path);
  bool loadedOtherPlan() const { return resharded; }
  /// This rank's parameters (its stage's, the tied embedding included).
  const std::vector<NamedParam> &params() const { return owned; }

  /// Records the actions of the next step(), which starts with a barrier so
  /// that every rank's clock starts together.
  void traceNextStep() { tracing = true; }
  /// After a traced step, on every rank (a collective): all ranks' events
  /// on rank 0, nothing on the others.
  llvm::Expected<std::vector<RankEvent>> gatherTrace();

  /// Test hook (mllm-run --inject-fault): the process kills itself before
  /// action `action` of the first iteration on rank `rank`.
  void injectFault(int rank, int64_t action) {
    faultRank = rank;
    faultAction = action;
  }
  /// Test hook (mllm-run --check-memory-plan): after each step, every
  /// message buffer of the MessageArena must have been used, every send's
  /// freed at the action where the program's static memory plan ends its
  /// lifetime, and the arena's measured peak must equal its planned size;
  /// an error names the first buffer that was not.
  void checkMemoryPlan() { checkPlan = true; }
  /// The last training step's message arena: its planned size and its
  /// measured peak (the highest byte in use), in bytes.
  int64_t messageArenaBytes() const;
  int64_t messageArenaPeak() const;

  ~RankRunner() override;

  /// The rank's view of the plan and the state of an iteration (defined in
  /// the implementation).
  struct Impl;

private:
  RankRunner(std::unique_ptr<Impl> impl, std::unique_ptr<Model> model,
             std::unique_ptr<DataSource> data, Comm &comm, uint64_t seed);
  llvm::Error setUp();
  /// An error when a failed step left messages or microbatches behind.
  llvm::Error checkIdle() const;
  /// The forward part of the program (forwards and their activations'
  /// messages) for the microbatches set up in the iteration's state, which
  /// it clears; `doing` names it in currentActivity().
  llvm::Error forwardRound(const char *doing);
  /// RankNextToken's round: the predictions of `queries` into `ids`.
  llvm::Error chooseTokens(llvm::ArrayRef<TokenQuery> queries, int64_t choices,
                           llvm::MutableArrayRef<int64_t> ids);
  friend class RankNextToken;
  /// After an iteration: an error for a receive whose message was never
  /// used; clears the receives.
  llvm::Error unusedReceives();
  llvm::Error run(size_t index);
  llvm::Error actionError(size_t index, llvm::Error e) const;
  /// Waits for the posted sends due at the end of action `at` (-1: all of
  /// them, the end of the iteration) and frees their buffers.
  llvm::Error waitSends(int64_t at);
  /// checkMemoryPlan()'s check after a step.
  llvm::Error checkMessages() const;
  /// The microbatch's data as this rank's layers read it (under CP: its
  /// tokens' ids and targets).
  MicrobatchData localData(MicrobatchData full) const;

  // The groups in `impl` outlive the layers that point at them.
  std::unique_ptr<Impl> impl;
  std::unique_ptr<Model> ownedModel;
  std::unique_ptr<DataSource> ownedData;
  Model &model;
  DataSource &data;
  Comm &comm;
  uint64_t seed;
  int64_t done = 0;
  std::vector<NamedParam> owned;
  Optimizer optimizer;
  bool checkPlan = false;
  mutable std::optional<sched::MemoryPlan> plannedMemory;
  int faultRank = -1;
  int64_t faultAction = -1;
  bool tracing = false;
  bool resharded = false;
  bool stepsAgreed = false;
  std::vector<RankEvent> events;
  std::unique_ptr<StepDriver> driver;
};

} // namespace mllm::runtime::exec

#endif // MLLM_RUNTIME_EXEC_RANKRUNNER_H
