//===- Status.cpp - Messages of failed CUDA and cuBLAS calls (host twin) --===//
//
// The messages of kernels/lib/cuda/Status.cpp. The CUDA half goes through
// the fake runtime's cudaGetErrorName/String; the cuBLAS half names the
// status itself, since the twin does not link cuBLASLt.
//
//===----------------------------------------------------------------------===//

#include "mllm/kernels/cuda/Status.h"

using namespace mllm::kernels;
using namespace mllm::kernels::cuda;

static std::string where(const char *file, int line) {
  std::string path(file);
  size_t slash = path.rfind('/');
  return (slash == std::string::npos ? path : path.substr(slash + 1)) + ":" +
         std::to_string(line) + ": ";
}

static std::string cublasName(cublasStatus_t code) {
  switch (code) {
  case CUBLAS_STATUS_SUCCESS:
    return "CUBLAS_STATUS_SUCCESS";
  case CUBLAS_STATUS_NOT_INITIALIZED:
    return "CUBLAS_STATUS_NOT_INITIALIZED";
  case CUBLAS_STATUS_ALLOC_FAILED:
    return "CUBLAS_STATUS_ALLOC_FAILED";
  case CUBLAS_STATUS_INVALID_VALUE:
    return "CUBLAS_STATUS_INVALID_VALUE";
  case CUBLAS_STATUS_ARCH_MISMATCH:
    return "CUBLAS_STATUS_ARCH_MISMATCH";
  case CUBLAS_STATUS_MAPPING_ERROR:
    return "CUBLAS_STATUS_MAPPING_ERROR";
  case CUBLAS_STATUS_EXECUTION_FAILED:
    return "CUBLAS_STATUS_EXECUTION_FAILED";
  case CUBLAS_STATUS_INTERNAL_ERROR:
    return "CUBLAS_STATUS_INTERNAL_ERROR";
  case CUBLAS_STATUS_NOT_SUPPORTED:
    return "CUBLAS_STATUS_NOT_SUPPORTED";
  case CUBLAS_STATUS_LICENSE_ERROR:
    return "CUBLAS_STATUS_LICENSE_ERROR";
  }
  return "cuBLAS status " + std::to_string(static_cast<int>(code));
}

Status cuda::cudaFailure(cudaError_t code, const char *expr, const char *file,
                         int line) {
  return Status::error(where(file, line) + "CUDA: " + expr + ": " +
                       cudaGetErrorName(code) + ": " +
                       cudaGetErrorString(code));
}

Status cuda::cublasFailure(cublasStatus_t code, const char *expr,
                           const char *file, int line) {
  return Status::error(where(file, line) + "cuBLAS: " + expr + ": " +
                       cublasName(code));
}
