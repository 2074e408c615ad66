//===- Threads.cpp - Thread count of the CPU kernels ----------------------===//
//
// OpenMP and OpenBLAS keep separate pools; both are set together so a
// runtime that pins one rank to n cores does not oversubscribe them.
//
//===----------------------------------------------------------------------===//

#include "mllm/kernels/cpu/Threads.h"

#include <cassert>
#include <cblas.h>
#include <omp.h>

int mllm::kernels::cpu::numThreads() { return omp_get_max_threads(); }

void mllm::kernels::cpu::setNumThreads(int n) {
  assert(n >= 1 && "thread count must be positive");
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}
