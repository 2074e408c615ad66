//===- Status.h - Errors of the CUDA kernel calls ---------------*- C++ -*-===//
//
// The kernels library depends on nothing of ours (no LLVM), so its calls
// report failures with this small value instead of llvm::Error: empty on
// success, else where and what failed. A library never exits or aborts on a
// CUDA error; the caller decides (the runtime turns a Status into an
// llvm::Error naming the layer).
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_KERNELS_CUDA_STATUS_H
#define MLLM_KERNELS_CUDA_STATUS_H

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <string>
#include <utility>

namespace mllm {
namespace kernels {
namespace cuda {

class [[nodiscard]] Status {
public:
  Status() = default;
  static Status error(std::string message) {
    Status s;
    s.text = message.empty() ? std::string("unknown error") : message;
    return s;
  }
  bool ok() const { return text.empty(); }
  const std::string &message() const { return text; }

private:
  std::string text;
};

/// "file:line: CUDA: expr: why".
Status cudaFailure(cudaError_t code, const char *expr, const char *file,
                   int line);
Status cublasFailure(cublasStatus_t code, const char *expr, const char *file,
                     int line);

} // namespace cuda
} // namespace kernels
} // namespace mllm

/// Returns a Status from the enclosing function when a CUDA call fails.
#define MLLM_CUDA_TRY(expr)                                                    \
  do {                                                                         \
    cudaError_t mllmCode_ = (expr);                                            \
    if (mllmCode_ != cudaSuccess)                                              \
      return ::mllm::kernels::cuda::cudaFailure(mllmCode_, #expr, __FILE__,    \
                                                __LINE__);                     \
  } while (0)

/// The same for cuBLAS / cuBLASLt calls.
#define MLLM_CUBLAS_TRY(expr)                                                  \
  do {                                                                         \
    cublasStatus_t mllmCode_ = (expr);                                         \
    if (mllmCode_ != CUBLAS_STATUS_SUCCESS)                                    \
      return ::mllm::kernels::cuda::cublasFailure(mllmCode_, #expr, __FILE__,  \
                                                  __LINE__);                   \
  } while (0)

/// Forwards a failed Status.
#define MLLM_STATUS_TRY(expr)                                                  \
  do {                                                                         \
    ::mllm::kernels::cuda::Status mllmStatus_ = (expr);                        \
    if (!mllmStatus_.ok())                                                     \
      return mllmStatus_;                                                      \
  } while (0)

/// After a kernel launch: the launch error, if any (asynchronous faults
/// surface at the next synchronising call).
#define MLLM_CUDA_LAUNCHED() MLLM_CUDA_TRY(cudaGetLastError())

#endif // MLLM_KERNELS_CUDA_STATUS_H
