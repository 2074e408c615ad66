//===- HostTwin.h - What only the host twin defines -------------*- C++ -*-===//
//
// A test's view of the host twin of the CUDA libraries (kernels/lib/cudahost,
// docs/cuda.md "Host twin"), which only a program linked against the twin
// may call: the GPU libraries do not define it.
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_KERNELS_CUDA_HOSTTWIN_H
#define MLLM_KERNELS_CUDA_HOSTTWIN_H

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <memory>

namespace mllm {
namespace kernels {
namespace cuda {
namespace twin {

/// cudaMalloc and cudaFree calls so far (cudaFree of null excluded). On a
/// GPU each waits for the whole device, NCCL's transfers in flight
/// included, so an executor makes none while a step runs.
int64_t deviceWideCalls();

/// Whether [p, p + bytes) lies inside one live device allocation (any
/// pointer when bytes is 0).
bool isDeviceMemory(const void *p, size_t bytes);

/// Work that runs on a stream without the host waiting for it: the NCCL
/// twin's transfers (runtime/lib/CUDA/NCCLTwin.h). The twin's kernels and
/// copies run when they are called, but a stream with queued work first
/// finishes it (the host waits there, where a GPU's stream would), an event
/// recorded behind it completes only after it, and a stream that waits for
/// such an event queues that wait. So a consumer that forgets to wait for a
/// transfer reads its buffer before the transfer wrote it.
/// start() and test() run under the twin's lock, from whichever call makes
/// progress: they must not call the CUDA runtime.
class AsyncWork {
public:
  virtual ~AsyncWork() = default;
  /// Called once, when everything queued before it on its stream is done.
  virtual void start() = 0;
  /// Makes progress; true once finished (only called after start()).
  virtual bool test() = 0;
};

/// Queues `work` on `stream` (a live stream other than the default ones,
/// else cudaErrorInvalidResourceHandle); it starts at once if the stream
/// has nothing queued.
cudaError_t enqueue(cudaStream_t stream, std::unique_ptr<AsyncWork> work);

/// Tests the running work of every stream, starting what may follow; true
/// when something finished.
bool progress();

} // namespace twin
} // namespace cuda
} // namespace kernels
} // namespace mllm

#endif // MLLM_KERNELS_CUDA_HOSTTWIN_H
