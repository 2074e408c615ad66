//===- Status.cpp - Messages of failed CUDA and cuBLAS calls --------------===//

#include "mllm/kernels/cuda/Status.h"

using namespace mllm::kernels;
using namespace mllm::kernels::cuda;

static std::string where(const char *file, int line) {
  std::string path(file);
  size_t slash = path.rfind('/');
  return (slash == std::string::npos ? path : path.substr(slash + 1)) + ":" +
         std::to_string(line) + ": ";
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
                       cublasLtGetStatusString(code));
}
