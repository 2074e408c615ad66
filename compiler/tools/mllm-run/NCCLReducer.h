//===- NCCLReducer.h - gradient sums over NCCL for mllm-run -----*- C++ -*-===//
#ifndef MLLM_TOOLS_MLLM_RUN_NCCLREDUCER_H
#define MLLM_TOOLS_MLLM_RUN_NCCLREDUCER_H

#include "mllm/runtime/cuda/NCCLComm.h"
#include "mllm/runtime/device/DeviceTrainer.h"

#include <memory>
#include <vector>

namespace mllm {
/// Gradient sums over NCCL on the group's own stream: each waits (on the
/// GPU) for the trainer's stream to reach the post, so the sums overlap the
/// rest of the backward; finish() waits for them with the deadline.
class NCCLReducer final : public runtime::device::GradientReducer {
public:
  explicit NCCLReducer(runtime::cuda::NCCLGroup &group) : group(group) {}
  llvm::Error post(float *data, int64_t count, cudaStream_t stream) override {
    cudaEvent_t ready = nullptr;
    cudaError_t rc = cudaEventCreateWithFlags(&ready, cudaEventDisableTiming);
    if (rc == cudaSuccess)
      rc = cudaEventRecord(ready, stream);
    if (rc == cudaSuccess)
      rc = cudaStreamWaitEvent(group.stream(), ready, 0);
    if (ready)
      cudaEventDestroy(ready); // released once the wait is done
    if (rc != cudaSuccess)
      return llvm::createStringError(
          llvm::inconvertibleErrorCode(),
          llvm::Twine("ordering the gradient sum after the backward: ") +
              cudaGetErrorString(rc));
    auto request = group.allReduceSumAsync(data, count);
    if (!request)
      return request.takeError();
    pending.push_back(std::move(*request));
    return llvm::Error::success();
  }
  /// Waits for every posted sum, then returns the first error.
  llvm::Error finish() override {
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
  runtime::cuda::NCCLGroup &group;
  std::vector<std::unique_ptr<runtime::cuda::NCCLRequest>> pending;
};
} // namespace mllm

#endif // MLLM_TOOLS_MLLM_RUN_NCCLREDUCER_H
