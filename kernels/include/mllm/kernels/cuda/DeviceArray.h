//===- DeviceArray.h - Owned device memory of the kernels -------*- C++ -*-===//
//
// The little RAII the kernels library needs for what it allocates itself
// (attention plans, embedding-gradient plans): the runtime has its own
// buffers (runtime/cuda/Device.h), but kernels/ may not depend on runtime/.
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_KERNELS_CUDA_DEVICEARRAY_H
#define MLLM_KERNELS_CUDA_DEVICEARRAY_H

#include "mllm/kernels/cuda/Status.h"

#include <cstddef>
#include <vector>

namespace mllm {
namespace kernels {
namespace cuda {

/// `n` elements of T in device memory; move-only. The destructor frees
/// with cudaFree (which waits for the device), so keep arrays out of hot
/// loops; a smaller allocate() or upload() reuses the allocation.
template <typename T>
class DeviceArray {
public:
  DeviceArray() = default;
  ~DeviceArray() { reset(); }
  DeviceArray(DeviceArray &&o) noexcept
      : ptr(o.ptr), count(o.count), capacity(o.capacity) {
    o.ptr = nullptr;
    o.count = o.capacity = 0;
  }
  DeviceArray &operator=(DeviceArray &&o) noexcept {
    if (this != &o) {
      reset();
      std::swap(ptr, o.ptr);
      std::swap(count, o.count);
      std::swap(capacity, o.capacity);
    }
    return *this;
  }
  DeviceArray(const DeviceArray &) = delete;
  DeviceArray &operator=(const DeviceArray &) = delete;

  /// Room for `n` elements: the allocation it has when that is large
  /// enough (see upload()), else a new one.
  Status allocate(size_t n) {
    if (ptr && n <= capacity) {
      count = n;
      return Status();
    }
    reset();
    if (n == 0)
      return Status();
    MLLM_CUDA_TRY(cudaMalloc(reinterpret_cast<void **>(&ptr), n * sizeof(T)));
    count = capacity = n;
    return Status();
  }
  /// Room for `n` elements from now on, for later allocate() and upload()
  /// calls of up to `n`: an allocation made up front, before any transfer
  /// is in flight, instead of when a larger batch comes. Grows only; the
  /// contents are not kept when it does.
  Status reserve(size_t n) {
    if (n <= capacity)
      return Status();
    reset();
    MLLM_CUDA_TRY(cudaMalloc(reinterpret_cast<void **>(&ptr), n * sizeof(T)));
    capacity = n;
    return Status();
  }
  /// Copies `host` on `stream` (pageable memory: the copy is staged, so
  /// `host` may be freed when this returns), into the allocation it has
  /// when that is large enough: the copy follows the stream's earlier work,
  /// while cudaFree and cudaMalloc would wait for the whole device, NCCL's
  /// transfers included, each time a per-batch plan is made again. Every
  /// earlier reader of the array must therefore be ordered before `stream`.
  Status upload(const std::vector<T> &host, cudaStream_t stream) {
    MLLM_STATUS_TRY(allocate(host.size()));
    if (!host.empty())
      MLLM_CUDA_TRY(cudaMemcpyAsync(ptr, host.data(), host.size() * sizeof(T),
                                    cudaMemcpyHostToDevice, stream));
    return Status();
  }
  /// Copies the array to the host (waits for `stream`).
  Status download(std::vector<T> &host, cudaStream_t stream) const {
    host.resize(count);
    if (count)
      MLLM_CUDA_TRY(cudaMemcpyAsync(host.data(), ptr, count * sizeof(T),
                                    cudaMemcpyDeviceToHost, stream));
    MLLM_CUDA_TRY(cudaStreamSynchronize(stream));
    return Status();
  }
  void reset() {
    if (ptr)
      cudaFree(ptr);
    ptr = nullptr;
    count = capacity = 0;
  }

  T *data() { return ptr; }
  const T *data() const { return ptr; }
  size_t size() const { return count; }

private:
  T *ptr = nullptr;
  size_t count = 0, capacity = 0;
};

} // namespace cuda
} // namespace kernels
} // namespace mllm

#endif // MLLM_KERNELS_CUDA_DEVICEARRAY_H
