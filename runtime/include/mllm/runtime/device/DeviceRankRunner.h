//===- DeviceRankRunner.h - one GPU of a pipeline ---------------*- C++ -*-===//
//
// The device executor on one rank of a parallel plan: the program the plan
// gives the rank, action by action, on its GPU. It runs its stage's layers
// (an encoder's or the LLM's) with the kernels and arena of DeviceTrainer
// (docs/cuda.md §9): forwards and backwards of the microbatches in the
// program's order, the activations and gradients between stages as bf16
// messages in the same arena at the offsets of the program's static memory
// plan (a send's buffer until the action the plan releases it at), the
// gradients summed over the stage's data-parallel replicas (bucket by
// bucket during the last backward) and, for an LM head tied to an
// embedding on another stage, between those two stages, then one AdamW
// step.
//
// What it runs: pipeline, data and tensor parallelism of what DeviceTrainer
// runs, and context parallelism of the LLM's stages (a rank's tokens of
// each sequence as the queries, every CP rank's K and V gathered, their
// gradients reduce-scattered back, as cpu::AttentionPart under CP). A stage
// with tp > 1 runs shards (Megatron-LM's split, the CPU backend's
// cpu::TensorShard): its blocks' heads and feed-forward columns, its
// embedding's and head's vocabulary rows, with the all-reduces inside the
// layers (ShardCollectives); its other layers whole. Encoders run on stages of
// their own, colocated, or on the chain layout's stages with the LLM's first
// layers: an encoder's last stage sends its projected tokens to the LLM's first
// stage, which places them (the fan-in) and sends their gradient back; a tensor
// the linear baseline passes through a stage goes on as it came. create()
// refuses what it does not run, saying what. Checkpoints are the CPU backend's
// sharded ones.
//
// Messages go through a Comm over device memory: NCCLWorld on GPUs (its
// point-to-point channels connected and its per-pair order checked by the
// caller), the MPI world on the host twin, whose device memory is host
// memory. Like DeviceTrainer, the code is built on the CUDA libraries and on
// their host twin.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_DEVICE_DEVICERANKRUNNER_H
#define MLLM_RUNTIME_DEVICE_DEVICERANKRUNNER_H

#include "mllm/runtime/cuda/PairOrder.h"
#include "mllm/runtime/device/DeviceTrainer.h"
#include "mllm/runtime/exec/Generate.h"
#include "mllm/runtime/exec/RankRunner.h"

namespace mllm::runtime::device {

/// Where a rank runs in a plan, and the groups a launcher creates for it.
struct RankPlace {
  int rank = 0;
  int64_t program = -1; ///< Its program in the plan's schedule.
  RankLayout::Coord coord;
  /// The ranks whose gradients this rank's are summed with: its stage's
  /// data-parallel replicas (itself alone when dp = 1).
  std::vector<int64_t> replicas;
  /// Its stage's tensor-parallel group (itself alone when tp = 1), and its
  /// context-parallel group (itself alone when cp = 1).
  std::vector<int64_t> shards, contexts;
  /// The embedding's and the tied head's ranks when this rank holds one of
  /// a tied pair on different stages; empty otherwise.
  std::vector<int64_t> tied;
  /// Every directed (sender, receiver) pair of ranks of the plan's
  /// point-to-point messages, the same list on every rank.
  std::vector<std::pair<int, int>> peers;
};
/// `rank`'s place in `plan`: an error when the plan has no program for it
/// or it asks for what context parallelism does not run (docs/cuda.md
/// §9), the same on every rank.
llvm::Expected<RankPlace> placeRank(const Plan &plan, int rank);

/// What a rank communicates over.
struct RankGroups {
  /// The stages' messages, in device memory.
  Comm *messages = nullptr;
  /// Every rank, host memory: the plan check and the loss.
  Group *world = nullptr;
  /// The sums of the gradients over RankPlace::replicas (device memory),
  /// and the same ranks on the host (the start check); null when dp = 1.
  GradientReducer *gradients = nullptr;
  Group *replicas = nullptr;
  /// RankPlace::tied, summing device memory; null when there is none.
  Group *tied = nullptr;
  /// RankPlace::shards when tp > 1: the shards' collectives over device
  /// memory, and the same ranks on the host (a checkpoint assembles the
  /// shards' tensors there); null when tp = 1.
  ShardCollectives *shards = nullptr;
  Group *shardsHost = nullptr;
  /// RankPlace::contexts when cp > 1: the K/V exchange over device memory,
  /// and the same ranks on the host (the layers' CP shares); null when
  /// cp = 1.
  ShardCollectives *contexts = nullptr;
  Group *contextsHost = nullptr;
  /// The gradients are posted in buckets of at least this many bytes.
  int64_t bucketBytes = int64_t(25) << 20;
};

class DeviceRankRunner {
public:
  /// This rank's share of `plan`'s model (its stage's layers, initialised
  /// from `seed` as the CPU backend's), on the current GPU, with its data
  /// from `makeData`. Every rank checks that all read the same plan.
  static llvm::Expected<std::unique_ptr<DeviceRankRunner>>
  create(const Plan &plan, uint64_t seed, const RankGroups &groups,
         const exec::RankRunner::DataFactory &makeData);
  ~DeviceRankRunner();

  /// Collective: every rank is at the same step (exec::agreeOnStep). Call
  /// it on every rank after load() and before the first step, also on a
  /// rank with no step left to run; step() calls it if it was not.
  llvm::Error agreeOnStart();
  /// One iteration of the rank's program and the optimizer step; every rank
  /// returns the global batch's loss.
  llvm::Expected<exec::StepStats> step();
  /// Collective: the held-out loss and token accuracy of the current
  /// weights on `set`, the same on every rank, as the CPU's
  /// exec::RankRunner::evaluate runs it (the forwards of the rank's program
  /// and their activations' messages, the plan's microbatches at a time,
  /// each replica its own batches) with the head of DeviceTrainer::evaluate
  /// (vocab-parallel under TP). Before each round `beforeRound`, if given,
  /// gets the rank's messages of the round in posting order (for
  /// NCCLWorld::expectMessages; a subsequence of messages() that keeps its
  /// per-pair order).
  using MessagesHook =
      std::function<void(llvm::ArrayRef<cuda::P2PMessage> messages)>;
  llvm::Expected<exec::EvalStats>
  evaluate(exec::EvalSet &set, const MessagesHook &beforeRound = nullptr);
  /// Collective: greedy generation with the current weights, for an
  /// exec::Generator on every rank, as exec::RankRunner::nextToken gives
  /// it (one sample per microbatch of each replica at once, each round the
  /// forward part of the program, the world's sum of the tokens) with the
  /// device's generation head (vocab-parallel under TP). With `cacheKeys`
  /// (and a plan exec::canCacheKeys allows) each rank keeps its layers'
  /// keys per slot and a round runs the new tokens only, as
  /// DeviceTrainer::nextToken does. `beforeRound` as evaluate()'s. The
  /// runner outlives what it returns.
  llvm::Expected<std::unique_ptr<exec::NextToken>>
  nextToken(const MessagesHook &beforeRound = nullptr, bool cacheKeys = true);
  /// The iteration without the optimizer step: the weight gradients of the
  /// next step's batch, summed over the replicas and the tied pair; the
  /// loss.
  llvm::Expected<double> accumulateGradients();
  /// Copies this rank's fp32 gradients / master weights into the CPU
  /// model's parameters.
  llvm::Error downloadGradients();
  llvm::Error downloadParams();
  /// The rank's model; params() are the parameters it holds.
  exec::Model &model();
  const std::vector<exec::NamedParam> &params() const;
  /// Uploads params()' values again, after the caller changed them on the
  /// host (mllm-run --init).
  llvm::Error uploadParams();
  /// Writes the rank's shard of a checkpoint into `dir` in the CPU
  /// backend's sharded format (replica 0's ranks write, every rank calls
  /// it), so either backend resumes it; `seed` is recorded in it.
  llvm::Error save(llvm::StringRef dir, uint64_t seed);
  /// Restores the rank's weights, moments and step count from a checkpoint
  /// of either backend (one file or a sharded directory, of this plan or
  /// another of the same model).
  llvm::Error load(llvm::StringRef path);
  bool loadedOtherPlan() const;
  int64_t stepsDone() const;
  /// The rank's program: the plan's, with each message's shapes and bytes
  /// as this rank posts it (a receive from several ranks: one copy). Under
  /// CP the LLM's activations between its stages hold the rank's share of
  /// the tokens, not the plan's even share (exec::messageTensorDims; the
  /// largest share any split gives when batches bring their own), so a
  /// launcher that checks the messages of every rank lists them from here.
  const sched::Program &program() const;
  /// This rank's messages of one iteration, in the order and sizes it
  /// posts them (program(), each action's peers by exec::messagePeers):
  /// what cuda::exchangeAndCheckPairOrder checks over the world before the
  /// first message, on NCCL (mllm-run) and on the host twin alike.
  std::vector<cuda::P2PMessage> messages() const;
  /// The arena, laid out by the static memory plan of the rank's program
  /// with this executor's sizes (messages included), and the highest byte
  /// the steps bound.
  const sched::MemoryPlan &memoryPlan() const;
  int64_t measuredArenaBytes() const;
  /// Gradient sums posted over the replicas so far.
  int64_t gradientSumsPosted() const;
  /// As DeviceTrainer::setAttentionKernel.
  void setAttentionKernel(kernels::cuda::AttentionKernel kernel);

  /// Records the actions of the next step(), which starts with a barrier so
  /// that every rank's clock starts together and synchronises its stream
  /// after each compute action so that the GPU's work is inside its event
  /// (the trace of a step costs those synchronisations).
  void traceNextStep();
  /// After a traced step, on every rank (a collective): all ranks' events
  /// on rank 0, nothing on the others (exec::RankEvent: seconds from the
  /// step's start; a receive is the time the rank waited for it).
  llvm::Expected<std::vector<exec::RankEvent>> gatherTrace();

  struct Impl;

private:
  explicit DeviceRankRunner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl;
};

} // namespace mllm::runtime::device

#endif // MLLM_RUNTIME_DEVICE_DEVICERANKRUNNER_H
