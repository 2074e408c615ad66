//===- DeviceTrainer.h - training a plan's model on GPUs --------*- C++ -*-===//
//
// The one-process run of exec::Trainer on a GPU: every microbatch's
// forward and backward through the CUDA kernels (kernels/cuda: bitfield
// flash attention, cuBLASLt GEMMs, the layer kernels), then one fused AdamW
// step. Activations are bf16; statistics, weight gradients, master weights
// and optimizer state fp32. The model, its initial weights and its data
// come from the CPU backend's exec::Model and DataSource, so a GPU run and
// a CPU run of the same plan start from the same weights and see the same
// batches, and their losses agree within bf16's precision.
//
// What it runs: vision encoders (a patch embedding with learned or no
// positions and an optional class token, pre-norm transformer blocks, a
// norm) and Whisper-style audio encoders (two 1-D convolutions, windows as
// sequences) with an MLP or linear projector, whose tokens the LLM's fan-in
// places in its sequences; an LLM of a token embedding (learned positions
// or none), pre-norm transformer blocks (RMSNorm or LayerNorm, biases or
// not, RoPE, ALiBi or no positions, GQA, SwiGLU, GeGLU, GELU, ReLU or SiLU,
// head dimension 64 or 128), a final norm and the LM head (tied or not). Any
// part may be frozen: the plan's frozen analysis says which weight and input
// gradients are computed. Blocks of parts with recomputation keep only their
// input and run their forward again before their backward. Optimizer adamw;
// precision bf16. Anything else is refused by create(), naming the layer or
// setting. Every buffer lives in one arena laid out by the static memory plan
// of the one-process program (one microbatch in flight); only the per-batch
// attention and embedding-gradient plans allocate as the step runs.
//
// Data parallelism across processes, one GPU each (DataParallel): every
// process computes its replicas' microbatches, the gradients are summed
// over the processes before the optimizer step, and every process takes
// the same step.
//
// The code is written against the CUDA kernel API only, so it builds twice:
// MLLMRuntimeDevice on the CUDA libraries, MLLMRuntimeDeviceHost on their
// host twin (docs/cuda.md), which runs it on the CPU in CI.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_DEVICE_DEVICETRAINER_H
#define MLLM_RUNTIME_DEVICE_DEVICETRAINER_H

#include "mllm/runtime/Comm.h"
#include "mllm/runtime/MemoryPlan.h"
#include "mllm/runtime/exec/Data.h"
#include "mllm/runtime/exec/Evaluate.h"
#include "mllm/runtime/exec/Generate.h"
#include "mllm/runtime/exec/Model.h"
#include "mllm/runtime/exec/Trainer.h"

#include "mllm/kernels/cuda/Attention.h"

#include "llvm/Support/Error.h"

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <memory>
#include <vector>

namespace mllm::runtime::device {

/// Sums gradients (device memory) over the data-parallel processes. The
/// trainer posts them bucket by bucket during its last microbatch's
/// backward, as each layer's gradients are final, so the sums overlap the
/// rest of the backward; finish() ends the step's sums.
class GradientReducer {
public:
  virtual ~GradientReducer() = default;
  /// Starts summing `count` floats at `data` over the processes once the
  /// work queued on `stream` so far is done; may return before the sum is.
  virtual llvm::Error post(float *data, int64_t count, cudaStream_t stream) = 0;
  /// Returns once every posted sum is done (an error when one failed or
  /// passed its deadline).
  virtual llvm::Error finish() = 0;
};

/// A GradientReducer on any Group: waits for the stream, then sums at once.
/// For the host twin, whose device memory is host memory (an MPI group).
class GroupReducer final : public GradientReducer {
public:
  explicit GroupReducer(Group &group) : group(group) {}
  llvm::Error post(float *data, int64_t count, cudaStream_t stream) override;
  llvm::Error finish() override { return llvm::Error::success(); }

private:
  Group &group;
};

/// The collectives of a tensor-parallel shard's layers and of a
/// context-parallel rank's attention, over device memory and in the order
/// of the executor's stream: each starts once the work queued on `stream`
/// so far is done, and work queued on `stream` afterwards sees its result.
/// A call may return before the collective ran; finish() returns once all
/// have (an error when one failed or passed its deadline), and must be
/// called before the host waits for `stream`.
class ShardCollectives {
public:
  virtual ~ShardCollectives() = default;
  virtual int size() const = 0;
  virtual int rank() const = 0;
  /// Sums bf16 values (the row-parallel partial sums, the input gradients
  /// of column-parallel layers, the vocab-parallel embedding's rows).
  virtual llvm::Error allReduceSum(__nv_bfloat16 *data, int64_t count,
                                   cudaStream_t stream) = 0;
  /// The vocab-parallel cross-entropy's sums and row maxima.
  virtual llvm::Error allReduceSum(double *data, int64_t count,
                                   cudaStream_t stream) = 0;
  virtual llvm::Error allReduceMax(float *data, int64_t count,
                                   cudaStream_t stream) = 0;
  /// Context parallelism: every rank's `counts[rank]` values one after
  /// another in `out` (K and V), and the reverse sum (their gradients).
  /// Unlike the sums above, work queued on `stream` after these calls does
  /// not wait for them until join(): what is queued in between overlaps
  /// the exchange, and must not touch its buffers.
  virtual llvm::Error allGather(const __nv_bfloat16 *local,
                                llvm::ArrayRef<int64_t> counts,
                                __nv_bfloat16 *out, cudaStream_t stream) = 0;
  virtual llvm::Error reduceScatterSum(const __nv_bfloat16 *in,
                                       llvm::ArrayRef<int64_t> counts,
                                       __nv_bfloat16 *local,
                                       cudaStream_t stream) = 0;
  /// Orders the work queued on `stream` from now on after every collective
  /// posted so far.
  virtual llvm::Error join(cudaStream_t stream) = 0;
  virtual llvm::Error finish() = 0;
};

/// ShardCollectives on any Group: waits for the stream, then runs the
/// group's collective at once (bf16 summed in fp32 and rounded once). For
/// the host twin, whose device memory is host memory (an MPI group).
class GroupCollectives final : public ShardCollectives {
public:
  explicit GroupCollectives(Group &group) : group(group) {}
  int size() const override { return group.size(); }
  int rank() const override { return group.rank(); }
  llvm::Error allReduceSum(__nv_bfloat16 *data, int64_t count,
                           cudaStream_t stream) override;
  llvm::Error allReduceSum(double *data, int64_t count,
                           cudaStream_t stream) override;
  llvm::Error allReduceMax(float *data, int64_t count,
                           cudaStream_t stream) override;
  llvm::Error allGather(const __nv_bfloat16 *local,
                        llvm::ArrayRef<int64_t> counts, __nv_bfloat16 *out,
                        cudaStream_t stream) override;
  llvm::Error reduceScatterSum(const __nv_bfloat16 *in,
                               llvm::ArrayRef<int64_t> counts,
                               __nv_bfloat16 *local,
                               cudaStream_t stream) override;
  llvm::Error join(cudaStream_t) override { return llvm::Error::success(); }
  llvm::Error finish() override { return llvm::Error::success(); }

private:
  Group &group;
  std::vector<float> staging, gathered;
};

/// Data parallelism across processes: process `index` of `processes`
/// computes the plan's replicas [index x dp / processes, (index + 1) x dp /
/// processes) (`processes` divides the plan's dp), then the processes sum
/// their gradients and losses. One process (the default) runs every replica.
struct DataParallel {
  int index = 0, processes = 1;
  /// Sums the gradients over the processes: over NCCL on GPUs (mllm-run),
  /// a GroupReducer on the host twin.
  GradientReducer *gradients = nullptr;
  /// The gradients are posted in buckets of at least this many bytes (the
  /// last one may be smaller).
  int64_t bucketBytes = int64_t(25) << 20;
  /// Sums host memory (the loss) over the processes: a group of the Comm
  /// the NCCL world was bootstrapped from.
  Group *host = nullptr;
};

class DeviceTrainer {
public:
  /// Checks that the device executor runs `model` (an error names the first
  /// layer it does not) and uploads the model's weights to the current GPU
  /// (cudaSetDevice; NCCLWorld::create selects it for a parallel run).
  /// `model`, `data` and the groups of `parallel` must outlive the trainer.
  static llvm::Expected<std::unique_ptr<DeviceTrainer>>
  create(exec::Model &model, exec::DataSource &data,
         const DataParallel &parallel = {});
  ~DeviceTrainer();

  /// One optimizer step over the global batch (dp x microbatches; with
  /// DataParallel, this process's share and the sum over the processes).
  llvm::Expected<exec::StepStats> step();
  /// The first half of step(): the weight gradients of the next step's
  /// global batch, accumulated from zero and summed over the processes,
  /// without the optimizer step; the global batch's loss. With
  /// downloadGradients(), what a gradient check compares.
  llvm::Expected<double> accumulateGradients();
  /// Copies the fp32 weight gradients into the CPU model's parameters'
  /// gradient buffers.
  llvm::Error downloadGradients();
  int64_t stepsDone() const;
  /// Copies the fp32 master weights back into the CPU model's parameters
  /// (for a checkpoint or a comparison).
  llvm::Error downloadParams();
  /// The held-out loss and accuracy of the current weights (mllm-run
  /// --eval) on the device: every batch of `set` (opened on this
  /// trainer's model, exec/Evaluate.h) through the forward, with the
  /// head's bf16 logits reduced to each row's largest logit, sum of exp,
  /// target logit and prediction (the first largest logit); the loss and
  /// hits are summed on the host as exec::Evaluator::run does. Within
  /// bf16's rounding of the CPU's numbers for the same weights.
  /// Collective over data-parallel processes: each evaluates every N-th
  /// batch, and the counts are summed.
  llvm::Expected<exec::EvalStats> evaluate(exec::EvalSet &set);
  /// Greedy generation on the device (mllm-run --generate, with
  /// exec::Generator): each token is a forward of the sample's batch, its
  /// head's logits reduced on the device to the first largest among the
  /// ids the tokenizer decodes at the sample's last row (rowArgmax); one
  /// id comes back. With `cacheKeys` (and a model exec::canCacheKeys
  /// allows) the LLM runs on the prompt once, then per round on the new
  /// token only, the earlier tokens' keys and values kept on the device
  /// (exec::SampleKeys' rule); else over the whole padded sequence every
  /// round. Collective over data-parallel processes: each continues one
  /// sample at a time (slot = its index), and the world's sum gives every
  /// process every token. Valid while the trainer lives.
  std::unique_ptr<exec::NextToken> nextToken(bool cacheKeys = true);
  /// Writes the weights and AdamW moments to `path` in the CPU backend's
  /// checkpoint format (exec/Checkpoint.h), so either backend resumes it.
  llvm::Error save(llvm::StringRef path, uint64_t seed);
  /// Restores weights, moments and the step count from a checkpoint of
  /// either backend (of this plan or another of the same model).
  llvm::Error load(llvm::StringRef path);
  bool loadedOtherPlan() const;
  /// Bytes of device memory in the trainer's arena: weights, gradients,
  /// optimizer state, the saved activations of the microbatch in flight and
  /// the workspace of one action.
  int64_t deviceBytes() const;
  /// The arena's layout: the static memory plan (MemoryPlan.h) of the
  /// one-process program with this executor's buffer sizes.
  const sched::MemoryPlan &memoryPlan() const;
  /// The highest byte of the arena any step used, plus one: equals
  /// memoryPlan().arenaBytes once a step ran.
  int64_t measuredArenaBytes() const;
  /// Gradient sums posted over the data-parallel processes so far (buckets
  /// and the rest at each step's end; 0 in one process).
  int64_t gradientSumsPosted() const;
  /// The attention kernels' implementation (docs/cuda.md §2; Staged unless
  /// set). The host twin has one implementation and ignores it.
  void setAttentionKernel(kernels::cuda::AttentionKernel kernel);

  struct Impl;

private:
  explicit DeviceTrainer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl;
};

} // namespace mllm::runtime::device

#endif // MLLM_RUNTIME_DEVICE_DEVICETRAINER_H
