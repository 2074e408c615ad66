//===- AttentionRegisters.cuh - Pieces of the register-tile kernels -*- CUDA
//-*-===//
//
// Not API: what the forward and backward of AttentionKernel::Registers
// share. A warp owns 16 rows of a 64-column score tile as eight 16 x 8
// mma.sync accumulators (`float[8][4]`) and of an output tile as D / 8 of
// them; the operand tiles ([64, D] bf16, leading dimension ldH<D>) sit in
// shared memory. The lane maps are MmaLayout.h's.
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_KERNELS_LIB_CUDA_ATTENTIONREGISTERS_CUH
#define MLLM_KERNELS_LIB_CUDA_ATTENTIONREGISTERS_CUH

#include "AttentionDevice.cuh"
#include "Mma.cuh"

#include "mllm/kernels/cuda/MmaLayout.h"

namespace mllm {
namespace kernels {
namespace cuda {
namespace dev {

/// Rows [first, first + 64) of one head of a [len, numHeads, D] bf16 tensor
/// into shared memory by cp.async (the caller commits the group), zeros
/// past `len`: a ragged tile's rows must be zeros, not stale values, as
/// their zero probabilities multiply them.
template <int D>
__device__ inline void loadTileAsync(bf16 *dst, const bf16 *src, int64_t first,
                                     int64_t len, int head, int numHeads) {
  constexpr int kVec = D / 8;
  for (int i = threadIdx.x; i < 64 * kVec; i += blockDim.x) {
    const int r = i / kVec, c = (i % kVec) * 8;
    const bool in = first + r < len;
    const bf16 *from = in ? src + ((first + r) * numHeads + head) * D + c : src;
    cpAsync16(dst + r * ldH<D>() + c, from, in);
  }
}

/// loadTokens by cp.async, in the caller's group: the next tile's tokens
/// stream in with its K and V instead of stalling the threads on the loads.
/// Entries past the list are zeros, as loadTokens makes them.
__device__ inline void loadTokensAsync(TileTokens &t, TokenListView list,
                                       int64_t first, int64_t width) {
  const int64_t n = tileExtent(list.len, width, first / width);
  for (int i = threadIdx.x; i < width; i += blockDim.x) {
    const bool in = i < n;
    const int64_t at = in ? first + i : 0;
    cpAsyncSmall<8>(&t.word[i], list.words + at, in);
    cpAsyncSmall<4>(&t.seg[i], list.segs + at, in);
    cpAsyncSmall<8>(&t.pos[i], list.pos + at, in);
  }
  if (threadIdx.x == 0)
    t.count = static_cast<int>(n);
}

/// The LSE (`rows[0, 64)`) and delta (`rows[64, 128)`) of query tile q0 of
/// one head by cp.async; a row past the list gets LSE = -inf (no
/// probability, no gradient) and delta = 0 by plain stores, not a copy's
/// zeros.
__device__ inline void loadRowStatsAsync(float *rows, const float *lse,
                                         const float *delta, int head,
                                         int64_t q0, int64_t qLen) {
  for (int i = threadIdx.x; i < 64; i += blockDim.x) {
    if (q0 + i < qLen) {
      cpAsyncSmall<4>(&rows[i], lse + head * qLen + q0 + i, true);
      cpAsyncSmall<4>(&rows[64 + i], delta + head * qLen + q0 + i, true);
    } else {
      rows[i] = negativeInfinity<float>();
      rows[64 + i] = 0.0f;
    }
  }
}

template <int N>
__device__ inline void clear(float (&acc)[N][4]) {
#pragma unroll
  for (int f = 0; f < N; ++f)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      acc[f][e] = 0.0f;
}

/// The A operand of rows [row0, row0 + 16), columns [16 kc, 16 kc + 16) of
/// a [64, D] tile.
template <int D>
__device__ inline void loadA(uint32_t (&a)[4], const bf16 *tile, int row0,
                             int kc, int lane) {
  const mma::Coord c = mma::aOperandRow(lane);
  ldmatrixX4(a, tile + (row0 + c.row) * ldH<D>() + 16 * kc + c.col);
}

/// Chunk kk (columns [16 kk, 16 kk + 16)) of a 16 x 64 accumulator tile as
/// an A operand, rounded to bf16.
__device__ inline void packChunk(uint32_t (&a)[4], const float (&s)[8][4],
                                 int kk) {
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    const mma::AccPair src = mma::chunkSource(kk, r);
    a[r] = packBf16(s[src.tile][src.element], s[src.tile][src.element + 1]);
  }
}

/// s (16 x 64) += A B^T over columns [16 kc, 16 kc + 16), where A is the
/// warp's operand and B's 64 rows are a [64, D] tile (S = Q K^T).
template <int D>
__device__ inline void dotRows(float (&s)[8][4], const uint32_t (&a)[4], int kc,
                               const bf16 *tileB, int lane) {
  const mma::Coord c = mma::bPairFromNRows(lane);
#pragma unroll
  for (int np = 0; np < 4; ++np) {
    uint32_t b[4];
    ldmatrixX4(b, tileB + (16 * np + c.row) * ldH<D>() + 16 * kc + c.col);
    mma16816(s[2 * np], a, b[0], b[1]);
    mma16816(s[2 * np + 1], a, b[2], b[3]);
  }
}

/// s (16 x 64) = rows [row0, row0 + 16) of tile A times tile B^T, both
/// [64, D] tiles, the A operands loaded as they are used.
template <int D>
__device__ inline void dotTiles(float (&s)[8][4], const bf16 *tileA, int row0,
                                const bf16 *tileB, int lane) {
  clear(s);
#pragma unroll
  for (int kc = 0; kc < D / 16; ++kc) {
    uint32_t a[4];
    loadA<D>(a, tileA, row0, kc, lane);
    dotRows<D>(s, a, kc, tileB, lane);
  }
}

/// acc (16 x D) += A B for chunk kk of A (16 x 64, packed) and rows
/// [16 kk, 16 kk + 16) of a [64, D] tile B (O += P V).
template <int D>
__device__ inline void accumulateChunk(float (&acc)[D / 8][4],
                                       const uint32_t (&a)[4], int kk,
                                       const bf16 *tileB, int lane) {
  const mma::Coord c = mma::bPairFromKRows(lane);
#pragma unroll
  for (int dp = 0; dp < D / 16; ++dp) {
    uint32_t b[4];
    ldmatrixX4Trans(b, tileB + (16 * kk + c.row) * ldH<D>() + 16 * dp + c.col);
    mma16816(acc[2 * dp], a, b[0], b[1]);
    mma16816(acc[2 * dp + 1], a, b[2], b[3]);
  }
}

/// Rows [r0 + 16 warp, +16) of one head of a [len, numHeads, D] bf16
/// tensor from the warp's accumulators times `scale`; rows past `len` are
/// not written.
template <int D>
__device__ inline void storeRows(const float (&acc)[D / 8][4], float scale,
                                 bf16 *dst, int64_t r0, int64_t len, int head,
                                 int numHeads, int warp, int lane) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const mma::Coord at = mma::accElement(lane, 2 * r);
    const int64_t row = r0 + 16 * warp + at.row;
    if (row >= len)
      continue;
#pragma unroll
    for (int f = 0; f < D / 8; ++f)
      *reinterpret_cast<__nv_bfloat162 *>(dst + (row * numHeads + head) * D +
                                          8 * f + at.col) =
          __floats2bfloat162_rn(acc[f][2 * r] * scale,
                                acc[f][2 * r + 1] * scale);
  }
}

} // namespace dev
} // namespace cuda
} // namespace kernels
} // namespace mllm

#endif // MLLM_KERNELS_LIB_CUDA_ATTENTIONREGISTERS_CUH
