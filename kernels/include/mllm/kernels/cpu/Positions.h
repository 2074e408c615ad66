//===- Positions.h - Sinusoidal position table ------------------*- C++ -*-===//
//
// The fixed sinusoidal table of Whisper's encoder (openai/whisper
// `sinusoids`, the tensor2tensor layout): sin on the first half of the
// features, cos on the second. For h = dim / 2, i in [0, h):
//
//   inv_i          = exp(-i * ln(maxTimescale) / (h - 1))
//   table[r, i]    = sin(positions[r] * inv_i)
//   table[r, h+i]  = cos(positions[r] * inv_i)
//
// i.e. timescales 1 ... maxTimescale geometrically, both ends included. This
// is not the interleaved sin/cos of "Attention is all you need" (which divides
// by dim, not h - 1). Computed in double, rounded once to T (Whisper computes
// in float32). The table is a constant: no backward.
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_KERNELS_CPU_POSITIONS_H
#define MLLM_KERNELS_CPU_POSITIONS_H

#include <cstdint>

namespace mllm {
namespace kernels {
namespace cpu {

/// table[count, dim] for the given positions; dim even and >= 4.
template <typename T>
void sinusoidalPositions(T *table, const int64_t *positions, int64_t count,
                         int64_t dim, double maxTimescale = 10000.0);

} // namespace cpu
} // namespace kernels
} // namespace mllm

#endif // MLLM_KERNELS_CPU_POSITIONS_H
