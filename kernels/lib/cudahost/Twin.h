//===- Twin.h - Internals of the host twin of the CUDA kernels --*- C++ -*-===//
//
// Not API: what the twin's kernels ask its fake runtime (Runtime.cpp), and
// the bf16 <-> fp32 conversions around the CPU kernels. Under the twin
// "device memory" is host memory from the fake cudaMalloc, so a kernel can
// check that every pointer it is given lies in a live allocation of the
// size it will touch (a real GPU would fault, or silently read garbage) and
// then run the CPU kernel on it directly.
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_KERNELS_LIB_CUDAHOST_TWIN_H
#define MLLM_KERNELS_LIB_CUDAHOST_TWIN_H

#include "mllm/kernels/cuda/Status.h"

#include <cuda_bf16.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <vector>

namespace mllm {
namespace kernels {
namespace cuda {
namespace twin {

/// Whether [p, p + bytes) lies inside the live device allocation that
/// holds `base` (a gathered row must stay inside its table).
bool isInAllocationOf(const void *base, const void *p, size_t bytes);

/// Whether `stream` is the default stream or a live stream.
bool isLiveStream(cudaStream_t stream);

/// Waits until `stream`'s queued work (HostTwin.h's AsyncWork) is done, so
/// that work called on it now runs in stream order; the legacy default
/// stream (null) waits for every blocking stream, as CUDA's does.
/// cudaErrorInvalidResourceHandle (recorded) for a stream that is not live.
cudaError_t settle(cudaStream_t stream);

/// Records `code` for cudaGetLastError and returns it.
cudaError_t recordError(cudaError_t code);

/// Empty Status when `p` may be read or written for `elements` elements of
/// `bytesPerElement` bytes, else an error naming the kernel and argument.
/// `optional`: a null pointer is fine.
Status checkArg(const char *kernel, const char *arg, const void *p,
                int64_t elements, size_t bytesPerElement,
                bool optional = false);

template <typename T>
Status checkArg(const char *kernel, const char *arg, const T *p,
                int64_t elements, bool optional = false) {
  return checkArg(kernel, arg, static_cast<const void *>(p), elements,
                  sizeof(T), optional);
}

/// Error unless `stream` is valid for `kernel`.
Status checkStream(const char *kernel, cudaStream_t stream);

/// Error unless `p` is 16-byte aligned (the attention kernels' vector
/// loads need it).
Status checkAligned(const char *kernel, const char *arg, const void *p);

/// Error for a negative size argument.
Status checkSizes(const char *kernel, std::initializer_list<int64_t> sizes);

inline std::vector<float> toFloat(const __nv_bfloat16 *p, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    out[i] = __bfloat162float(p[i]);
  return out;
}

/// Rounds to nearest even, as the kernels' __float2bfloat16.
inline void storeBf16(const float *src, __nv_bfloat16 *dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    dst[i] = __float2bfloat16(src[i]);
}

} // namespace twin
} // namespace cuda
} // namespace kernels
} // namespace mllm

#endif // MLLM_KERNELS_LIB_CUDAHOST_TWIN_H
