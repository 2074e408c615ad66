//===- CUDABackend.cpp - Can the CUDA backend run here? -------------------===//
//
// Compiled in every build: with MLLM_HAVE_CUDA it asks the CUDA runtime,
// without it it answers that the build has no CUDA. A machine with the
// toolkit but no driver (CI) gets cudaErrorInsufficientDriver or
// cudaErrorNoDevice from cudaGetDeviceCount, never a crash.
//
//===----------------------------------------------------------------------===//

#include "mllm/runtime/CUDABackend.h"

#if MLLM_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

using namespace mllm;

static llvm::Error fail(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

bool runtime::cudaBackendBuilt() { return MLLM_HAVE_CUDA != 0; }

int runtime::cudaDeviceCount() {
#if MLLM_HAVE_CUDA
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError(); // clear the sticky error for later callers
    return 0;
  }
  return count;
#else
  return 0;
#endif
}

llvm::Error runtime::checkCudaBackend() {
#if MLLM_HAVE_CUDA
  int count = 0;
  cudaError_t rc = cudaGetDeviceCount(&count);
  if (rc != cudaSuccess) {
    cudaGetLastError();
    std::string why = cudaGetErrorString(rc);
    if (rc == cudaErrorInsufficientDriver)
      why += " (is the NVIDIA driver installed?)";
    else if (rc == cudaErrorNoDevice)
      why += " (CUDA_VISIBLE_DEVICES may hide the GPUs)";
    return fail("no CUDA device: " + why);
  }
  if (count == 0)
    return fail("no CUDA device: the driver reports no GPU");
  // The kernels use bf16 tensor cores (WMMA), which start with Ampere.
  int major = 0, minor = 0;
  for (int d = 0; d < count; ++d) {
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, d);
    cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, d);
    if (major >= 8)
      return llvm::Error::success();
  }
  return fail("no CUDA device: the GPUs are sm_" + llvm::Twine(major) +
              llvm::Twine(minor) +
              " and the CUDA backend needs sm_80 (Ampere) or newer");
#else
  return fail("mllm-run was built without CUDA (no CUDA toolkit found, or "
              "-DMLLM_ENABLE_CUDA=OFF); rebuild where nvcc is installed, see "
              "docs/cuda.md");
#endif
}
