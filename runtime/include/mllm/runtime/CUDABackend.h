//===- CUDABackend.h - Can the CUDA backend run here? -----------*- C++ -*-===//
//
// What `mllm-run --backend=cuda` asks before it plans anything: whether this
// build has the CUDA backend and whether the process sees a usable GPU. The
// header needs no CUDA: without the toolkit the library (MLLMCUDABackend)
// is a stub that answers "built without CUDA", so the tool links the same
// library in every build.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_CUDABACKEND_H
#define MLLM_RUNTIME_CUDABACKEND_H

#include "llvm/Support/Error.h"

namespace mllm::runtime {

/// Whether this build includes the CUDA backend (CMake found the toolkit).
bool cudaBackendBuilt();

/// The CUDA devices this process can use; 0 without a device, without a
/// driver, or in a build without CUDA.
int cudaDeviceCount();

/// Success when the CUDA backend can run: built with CUDA and at least one
/// GPU of compute capability 8.0 or newer visible. Otherwise an error whose
/// message starts with "no CUDA device: " (and says why: no driver, no GPU,
/// hidden devices, GPUs too old) or is "mllm-run was built without CUDA
/// ...".
llvm::Error checkCudaBackend();

} // namespace mllm::runtime

#endif // MLLM_RUNTIME_CUDABACKEND_H
