//===- Device.h - Device memory, streams and the rank's GPU -----*- C++ -*-===//
//
// The few RAII types the CUDA runtime needs, with errors as llvm::Error:
// a device buffer, a stream that can be waited on with a deadline (a hung
// kernel or a dead NCCL peer becomes an error, not a hang), and the choice
// of this rank's GPU from the launcher's local rank.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_CUDA_DEVICE_H
#define MLLM_RUNTIME_CUDA_DEVICE_H

#include "llvm/Support/Error.h"

#include <cuda_runtime_api.h>

#include <chrono>
#include <cstddef>

namespace mllm::runtime::cuda {

/// Bytes of device memory; move-only, freed on destruction.
class DeviceBuffer {
public:
  DeviceBuffer() = default;
  static llvm::Expected<DeviceBuffer> allocate(size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer &&other) noexcept;
  DeviceBuffer &operator=(DeviceBuffer &&other) noexcept;
  DeviceBuffer(const DeviceBuffer &) = delete;
  DeviceBuffer &operator=(const DeviceBuffer &) = delete;

  void *data() const { return ptr; }
  template <typename T>
  T *as() const {
    return static_cast<T *>(ptr);
  }
  size_t bytes() const { return size; }

  /// Synchronous copies from / to host memory (`bytes` at most size()).
  llvm::Error upload(const void *host, size_t bytes);
  llvm::Error download(void *host, size_t bytes) const;

private:
  void *ptr = nullptr;
  size_t size = 0;
};

/// A non-blocking stream (it does not synchronise with the legacy default
/// stream), destroyed with its owner.
class Stream {
public:
  Stream() = default;
  static llvm::Expected<Stream> create();
  ~Stream();
  Stream(Stream &&other) noexcept;
  Stream &operator=(Stream &&other) noexcept;
  Stream(const Stream &) = delete;
  Stream &operator=(const Stream &) = delete;

  cudaStream_t get() const { return stream; }
  /// Waits until the stream's work is done, polling, failing after
  /// `timeout` with a message naming `what`.
  llvm::Error synchronize(std::chrono::milliseconds timeout,
                          const llvm::Twine &what) const;

private:
  cudaStream_t stream = nullptr;
};

/// Polls `event` until it completed, the deadline passed (error naming
/// `what`) or the device reported a fault.
llvm::Error waitEvent(cudaEvent_t event, std::chrono::milliseconds timeout,
                      const llvm::Twine &what);

/// The launcher's local rank (OpenMPI, MPICH, SLURM, torchrun variables),
/// or -1 when none is set.
int launcherLocalRank();

/// Makes this thread use the GPU `requested`, or when it is -1 the local
/// rank's GPU (local rank modulo the devices; `worldRank` when no launcher
/// says), and returns its index.
llvm::Expected<int> selectDevice(int requested, int worldRank);

} // namespace mllm::runtime::cuda

#endif // MLLM_RUNTIME_CUDA_DEVICE_H
