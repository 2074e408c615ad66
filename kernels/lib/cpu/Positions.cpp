//===- Positions.cpp - Sinusoidal position table --------------------------===//

#include "mllm/kernels/cpu/Positions.h"
#include "mllm/kernels/cpu/Threads.h"

#include <cassert>
#include <cmath>

namespace mllm {
namespace kernels {
namespace cpu {

template <typename T>
void sinusoidalPositions(T *table, const int64_t *positions, int64_t count,
                         int64_t dim, double maxTimescale) {
  // h - 1 is a divisor: dim 2 would divide by zero (Whisper asserts even
  // dims and never uses fewer than 4).
  assert(dim % 2 == 0 && dim >= 4 && "sinusoidal table needs an even dim >= 4");
  int64_t half = dim / 2;
  double increment = std::log(maxTimescale) / static_cast<double>(half - 1);
#pragma omp parallel for schedule(static) if (count * dim >= kParallelGrain)
  for (int64_t r = 0; r < count; ++r) {
    double pos = static_cast<double>(positions[r]);
    T *row = table + r * dim;
    for (int64_t i = 0; i < half; ++i) {
      double a = pos * std::exp(-increment * static_cast<double>(i));
      row[i] = static_cast<T>(std::sin(a));
      row[half + i] = static_cast<T>(std::cos(a));
    }
  }
}

template void sinusoidalPositions(float *, const int64_t *, int64_t, int64_t,
                                  double);
template void sinusoidalPositions(double *, const int64_t *, int64_t, int64_t,
                                  double);

} // namespace cpu
} // namespace kernels
} // namespace mllm
