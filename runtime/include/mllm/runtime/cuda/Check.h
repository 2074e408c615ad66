//===- Check.h - CUDA, NCCL and kernel errors as llvm::Error ----*- C++ -*-===//
//
// Status-returning macros for the CUDA runtime library: a failed call
// returns an llvm::Error from the enclosing function with the file, line,
// the call and the library's own explanation (for NCCL also
// ncclGetLastError, which says which peer or transport failed). A library
// never exits; the tool decides what a failure ends.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_CUDA_CHECK_H
#define MLLM_RUNTIME_CUDA_CHECK_H

#include "mllm/kernels/cuda/Status.h"

#include "llvm/Support/Error.h"

#include <cuda_runtime_api.h>
#include <nccl.h>

namespace mllm::runtime::cuda {

llvm::Error cudaError(cudaError_t code, const char *expr, const char *file,
                      int line);
llvm::Error ncclError(ncclResult_t code, ncclComm_t comm, const char *expr,
                      const char *file, int line);
/// A kernels-library Status as an llvm::Error (success when ok).
llvm::Error toError(const kernels::cuda::Status &status);

} // namespace mllm::runtime::cuda

#define MLLM_RT_CUDA(expr)                                                     \
  do {                                                                         \
    cudaError_t mllmRc_ = (expr);                                              \
    if (mllmRc_ != cudaSuccess)                                                \
      return ::mllm::runtime::cuda::cudaError(mllmRc_, #expr, __FILE__,        \
                                              __LINE__);                       \
  } while (0)

/// ncclInProgress is not a failure: on a non-blocking communicator the call
/// goes on in the background (the caller waits for it with a deadline).
#define MLLM_RT_NCCL(comm, expr)                                               \
  do {                                                                         \
    ncclResult_t mllmRc_ = (expr);                                             \
    if (mllmRc_ != ncclSuccess && mllmRc_ != ncclInProgress)                   \
      return ::mllm::runtime::cuda::ncclError(mllmRc_, comm, #expr, __FILE__,  \
                                              __LINE__);                       \
  } while (0)

#define MLLM_RT_STATUS(expr)                                                   \
  do {                                                                         \
    if (llvm::Error mllmErr_ = ::mllm::runtime::cuda::toError(expr))           \
      return mllmErr_;                                                         \
  } while (0)

#endif // MLLM_RUNTIME_CUDA_CHECK_H
