//===- NCCLReducer.h - the device executor's sums over NCCL -----*- C++ -*-===//
//
// mllm-run's implementations of the device executor's collectives over
// NCCL: the gradient sums of data parallelism, the all-reduces inside a
// tensor-parallel shard's layers and a context-parallel rank's K/V
// exchange. Each runs on its group's own stream after
// the executor's stream reached the call (an event, no host wait); the
// host waits for them, with the world's deadline, in finish().
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_TOOLS_MLLM_RUN_NCCLREDUCER_H
#define MLLM_TOOLS_MLLM_RUN_NCCLREDUCER_H

#include "mllm/runtime/cuda/NCCLComm.h"
#include "mllm/runtime/device/DeviceTrainer.h"

#include <memory>
#include <vector>

namespace mllm {

/// Makes `to` wait (on the GPU) for the work queued on `from` so far.
inline llvm::Error orderAfter(cudaStream_t from, cudaStream_t to,
                              const char *what) {
  cudaEvent_t ready = nullptr;
  cudaError_t rc = cudaEventCreateWithFlags(&ready, cudaEventDisableTiming);
  if (rc == cudaSuccess)
    rc = cudaEventRecord(ready, from);
  if (rc == cudaSuccess)
    rc = cudaStreamWaitEvent(to, ready, 0);
  if (ready)
    cudaEventDestroy(ready); // released once the wait is done
  if (rc != cudaSuccess)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   llvm::Twine("ordering ") + what + ": " +
                                       cudaGetErrorString(rc));
  return llvm::Error::success();
}

/// Posted NCCL operations, waited for together.
class NCCLPending {
public:
  llvm::Error
  add(llvm::Expected<std::unique_ptr<runtime::cuda::NCCLRequest>> request) {
    if (!request)
      return request.takeError();
    pending.push_back(std::move(*request));
    return llvm::Error::success();
  }
  bool empty() const { return pending.empty(); }
  runtime::cuda::NCCLRequest &last() { return *pending.back(); }
  /// Waits for every posted operation, then returns the first error.
  llvm::Error finish() {
    std::vector<std::unique_ptr<runtime::cuda::NCCLRequest>> all;
    all.swap(pending);
    llvm::Error first = llvm::Error::success();
    for (auto &request : all)
      if (llvm::Error e = request->wait()) {
        if (first)
          llvm::consumeError(std::move(e));
        else
          first = std::move(e);
      }
    return first;
  }

private:
  std::vector<std::unique_ptr<runtime::cuda::NCCLRequest>> pending;
};

/// Gradient sums over NCCL on the group's own stream: each waits (on the
/// GPU) for the trainer's stream to reach the post, so the sums overlap the
/// rest of the backward; finish() waits for them with the deadline.
class NCCLReducer final : public runtime::device::GradientReducer {
public:
  explicit NCCLReducer(runtime::cuda::NCCLGroup &group) : group(group) {}
  llvm::Error post(float *data, int64_t count, cudaStream_t stream) override {
    if (llvm::Error e = orderAfter(stream, group.stream(),
                                   "the gradient sum after the backward"))
      return e;
    return pending.add(group.allReduceSumAsync(data, count));
  }
  llvm::Error finish() override { return pending.finish(); }

private:
  runtime::cuda::NCCLGroup &group;
  NCCLPending pending;
};

/// A tensor-parallel shard's all-reduces (a context-parallel rank's K/V
/// exchange) over NCCL, on the group's stream after the layer's work before
/// it. The executor's stream waits for an all-reduce on the GPU at once
/// (the layers need the sum; only the host moves on), for the K/V exchange
/// at join(), so the work queued in between overlaps it.
class NCCLShardCollectives final : public runtime::device::ShardCollectives {
public:
  explicit NCCLShardCollectives(runtime::cuda::NCCLGroup &group)
      : group(group) {}
  int size() const override { return group.size(); }
  int rank() const override { return group.rank(); }
  llvm::Error allReduceSum(__nv_bfloat16 *data, int64_t count,
                           cudaStream_t stream) override {
    return run(stream, [&] { return group.allReduceSumAsync(data, count); });
  }
  llvm::Error allReduceSum(double *data, int64_t count,
                           cudaStream_t stream) override {
    return run(stream, [&] { return group.allReduceSumAsync(data, count); });
  }
  llvm::Error allReduceMax(float *data, int64_t count,
                           cudaStream_t stream) override {
    return run(stream, [&] { return group.allReduceMaxAsync(data, count); });
  }
  llvm::Error allGather(const __nv_bfloat16 *local,
                        llvm::ArrayRef<int64_t> counts, __nv_bfloat16 *out,
                        cudaStream_t stream) override {
    return run(
        stream, [&] { return group.allGatherAsync(local, counts, out); },
        /*wait=*/false);
  }
  llvm::Error reduceScatterSum(const __nv_bfloat16 *in,
                               llvm::ArrayRef<int64_t> counts,
                               __nv_bfloat16 *local,
                               cudaStream_t stream) override {
    return run(
        stream, [&] { return group.reduceScatterSumAsync(in, counts, local); },
        /*wait=*/false);
  }
  llvm::Error join(cudaStream_t stream) override {
    // The group's stream runs its collectives in order: the last one's
    // event follows them all.
    return pending.empty() ? llvm::Error::success() : waitLast(stream);
  }
  llvm::Error finish() override { return pending.finish(); }

private:
  template <typename Post>
  llvm::Error run(cudaStream_t stream, Post post, bool wait = true) {
    if (llvm::Error e = orderAfter(stream, group.stream(),
                                   "a TP or CP collective after its input"))
      return e;
    if (llvm::Error e = pending.add(post()))
      return e;
    return wait ? waitLast(stream) : llvm::Error::success();
  }
  llvm::Error waitLast(cudaStream_t stream) {
    cudaError_t rc = cudaStreamWaitEvent(stream, pending.last().event(), 0);
    if (rc != cudaSuccess)
      return llvm::createStringError(
          llvm::inconvertibleErrorCode(),
          llvm::Twine("ordering the layer after its TP or CP collective: ") +
              cudaGetErrorString(rc));
    return llvm::Error::success();
  }

  runtime::cuda::NCCLGroup &group;
  NCCLPending pending;
};

} // namespace mllm

#endif // MLLM_TOOLS_MLLM_RUN_NCCLREDUCER_H
