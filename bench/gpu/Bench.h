//===- Bench.h - Shared pieces of mllm-bench-attention-gpu ------*- C++ -*-===//

#ifndef MLLM_BENCH_GPU_BENCH_H
#define MLLM_BENCH_GPU_BENCH_H

#include "DenseAttention.h"

#include "mllm/kernels/MaskFamilies.h"
#include "mllm/kernels/cuda/Attention.h"
#include "mllm/kernels/cuda/Gemm.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace mllm {
namespace bench {

using kernels::MaskFamily;
namespace gpu = mllm::kernels::cuda;
using bf16 = __nv_bfloat16;

struct Options {
  std::vector<int64_t> sizes = {4096, 8192, 16384, 32768, 65536, 131072};
  std::vector<MaskFamily> families = {MaskFamily::Causal, MaskFamily::PrefixLm,
                                      MaskFamily::MllmEmbedded,
                                      MaskFamily::MultimodalPacked};
  int heads = 16, headDim = 128, reps = 3, splits = 0;
  gpu::AttentionKernel kernel = gpu::AttentionKernel::Staged;
  bool dense = true;
  int64_t checkUpTo = 16384;
  double denseGiB = 4.0;
  uint64_t seed = 2026;
};

/// Stops the bench with a message (a bench may exit; the library may not).
#define CHECK(expr)                                                            \
  do {                                                                         \
    if (!(expr)) {                                                             \
      std::fprintf(stderr, "mllm-bench-attention-gpu: %s failed\n", #expr);    \
      std::exit(2);                                                            \
    }                                                                          \
  } while (0)
#define CHECK_CUDA(expr) CHECK((expr) == cudaSuccess)
#define CHECK_OK(expr)                                                         \
  do {                                                                         \
    gpu::Status s_ = (expr);                                                   \
    if (!s_.ok()) {                                                            \
      std::fprintf(stderr, "mllm-bench-attention-gpu: %s\n",                   \
                   s_.message().c_str());                                      \
      std::exit(2);                                                            \
    }                                                                          \
  } while (0)

template <typename T>
inline T *deviceAlloc(size_t n) {
  void *p = nullptr;
  CHECK_CUDA(cudaMalloc(&p, std::max<size_t>(n, 1) * sizeof(T)));
  return static_cast<T *>(p);
}

/// Best time in ms of `reps` runs of `body` (after one warm-up run).
template <typename Body>
inline double bestMs(int reps, Body body) {
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  body();
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    CHECK_CUDA(cudaEventRecord(start));
    body();
    CHECK_CUDA(cudaEventRecord(stop));
    CHECK_CUDA(cudaEventSynchronize(stop));
    float ms = 0;
    CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
    best = std::min(best, static_cast<double>(ms));
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return best;
}

/// max |a - b| / max(1, max |b|) of two device tensors.
template <typename A, typename B>
inline double maxRelError(const A *a, const B *b, size_t n) {
  std::vector<A> ha(n);
  std::vector<B> hb(n);
  CHECK_CUDA(cudaMemcpy(ha.data(), a, n * sizeof(A), cudaMemcpyDeviceToHost));
  CHECK_CUDA(cudaMemcpy(hb.data(), b, n * sizeof(B), cudaMemcpyDeviceToHost));
  double diff = 0, ref = 1;
  for (size_t i = 0; i < n; ++i) {
    double x = static_cast<float>(ha[i]), y = static_cast<float>(hb[i]);
    diff = std::max(diff, std::fabs(x - y));
    ref = std::max(ref, std::fabs(y));
  }
  return diff / ref;
}

/// One row of the table: plan, flash forward and backward, the dense
/// reference and the error check.
void runCase(const Options &o, gpu::Gemm &gemm, MaskFamily family, int64_t s);

} // namespace bench
} // namespace mllm

#endif // MLLM_BENCH_GPU_BENCH_H
