//===- MmaLayout.h - Lane index maps of the register-tile kernels -*- C++
//-*-===//
//
// Which element of a tile each lane of a warp addresses or holds in the
// register-tile attention kernels (AttentionKernel::Registers): the row
// addresses it gives ldmatrix for each operand, where an mma.sync
// m16n8k16 accumulator element lands, and how accumulators become the A
// operand of the next product. Plain host/device code, so that
// test/unit/CUDA/MmaLayoutTest.cpp runs the kernels' index math through an
// emulation of ldmatrix and mma.sync written from the PTX ISA on the CPU.
// With g = lane / 4 and t = lane % 4 the PTX layouts are:
//
//   A (16 x 16), 4 registers of two bf16: a0 = (g, 2t), a1 = (g + 8, 2t),
//     a2 = (g, 2t + 8), a3 = (g + 8, 2t + 8), each with the next column;
//   B (16 x 8, k x n), 2 registers: b0 = (2t, g), b1 = (2t + 8, g), each
//     with the next row;
//   C (16 x 8, fp32): c0, c1 = (g, 2t), (g, 2t + 1); c2, c3 = the same
//     columns of row g + 8.
//
// ldmatrix .x4 loads four 8 x 8 matrices; lanes 8j..8j+7 give the row
// addresses of matrix j, which lands in register j of every lane: (g, 2t)
// and (g, 2t + 1), or transposed (2t, g) and (2t + 1, g).
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_KERNELS_CUDA_MMALAYOUT_H
#define MLLM_KERNELS_CUDA_MMALAYOUT_H

#include "mllm/kernels/HostDevice.h"

namespace mllm {
namespace kernels {
namespace cuda {
namespace mma {

/// A (row, column) offset inside a tile.
struct Coord {
  int row, col;
};

/// The row address a lane gives ldmatrix .x4 to load a 16 x 16 A operand
/// from a row-major tile: matrices (rows 0-7, cols 0-7), (8-15, 0-7),
/// (0-7, 8-15), (8-15, 8-15) are a0..a3.
MLLM_HD inline Coord aOperandRow(int lane) {
  return {(lane & 7) + (lane & 8), (lane >> 4) * 8};
}

/// The row address for the B operands of two adjacent n tiles (n 0-7 and
/// 8-15, k 0-15) from a tile whose rows are n and columns k (K for Q K^T):
/// registers 0, 1 are b0, b1 of the first n tile, 2, 3 of the second.
MLLM_HD inline Coord bPairFromNRows(int lane) {
  return {(lane & 7) + (lane >> 4) * 8, lane & 8};
}

/// The same B operands from a tile whose rows are k and columns n (V for
/// P V), with ldmatrix .trans.
MLLM_HD inline Coord bPairFromKRows(int lane) {
  return {(lane & 7) + (lane & 8), (lane >> 4) * 8};
}

/// Where accumulator element e (0..3) of a lane sits in its 16 x 8 tile.
MLLM_HD inline Coord accElement(int lane, int e) {
  return {lane / 4 + (e >> 1) * 8, 2 * (lane % 4) + (e & 1)};
}

/// The accumulator pair that becomes A register r of k chunk kk: chunk kk
/// covers columns [16 kk, 16 kk + 16) of a row of 8-column accumulator
/// tiles, so its registers are tile 2 kk + r / 2, elements 2 (r % 2) and
/// 2 (r % 2) + 1 (a1 and a3 hold row g + 8: elements 2 and 3).
struct AccPair {
  int tile, element;
};

MLLM_HD inline AccPair chunkSource(int kk, int r) {
  return {2 * kk + r / 2, 2 * (r % 2)};
}

} // namespace mma
} // namespace cuda
} // namespace kernels
} // namespace mllm

#endif // MLLM_KERNELS_CUDA_MMALAYOUT_H
