//===- HostTwin.h - What only the host twin defines -------------*- C++ -*-===//
//
// A test's view of the host twin of the CUDA libraries (kernels/lib/cudahost,
// docs/cuda.md "Host twin"), which only a program linked against the twin
// may call: the GPU libraries do not define it.
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_KERNELS_CUDA_HOSTTWIN_H
#define MLLM_KERNELS_CUDA_HOSTTWIN_H

#include <cstdint>

namespace mllm {
namespace kernels {
namespace cuda {
namespace twin {

/// cudaMalloc and cudaFree calls so far (cudaFree of null excluded). On a
/// GPU each waits for the whole device, NCCL's transfers in flight
/// included, so an executor makes none while a step runs.
int64_t deviceWideCalls();

} // namespace twin
} // namespace cuda
} // namespace kernels
} // namespace mllm

#endif // MLLM_KERNELS_CUDA_HOSTTWIN_H
