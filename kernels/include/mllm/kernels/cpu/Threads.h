//===- Threads.h - Thread count of the CPU kernels --------------*- C++ -*-===//
//
// One knob for the two thread pools the CPU kernels use: OpenMP (elementwise
// loops, row and column reductions) and OpenBLAS (GEMMs). Results are bitwise
// deterministic for a fixed thread count; every kernel except the GEMMs is
// also independent of the thread count (see docs/kernels-cpu.md).
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_KERNELS_CPU_THREADS_H
#define MLLM_KERNELS_CPU_THREADS_H

#include <cstdint>

namespace mllm {
namespace kernels {
namespace cpu {

/// Sets the OpenMP thread count and OpenBLAS's to `n` (n >= 1).
void setNumThreads(int n);

/// The OpenMP thread count the next parallel loop will use.
int numThreads();

/// Loops over fewer elements than this run on the calling thread: opening a
/// parallel region costs a few microseconds, more than the loop itself.
constexpr int64_t kParallelGrain = 1 << 14;

} // namespace cpu
} // namespace kernels
} // namespace mllm

#endif // MLLM_KERNELS_CPU_THREADS_H
