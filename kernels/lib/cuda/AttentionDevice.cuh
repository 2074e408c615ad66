//===- AttentionDevice.cuh - Device pieces of the CUDA attention -*- CUDA
//-*-===//
//
// Not API: what the forward, dK/dV and dQ kernels share. Tiles of Q, K, V
// and dO are staged in shared memory as bf16, products run on tensor cores
// through WMMA (16x16x16 bf16 -> fp32), and every element-wise step (the
// mask, ALiBi, the online softmax, dS) is the shared MLLM_HD code of
// OnlineSoftmax.h applied to an fp32 score tile in shared memory.
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_KERNELS_LIB_CUDA_ATTENTIONDEVICE_CUH
#define MLLM_KERNELS_LIB_CUDA_ATTENTIONDEVICE_CUH

#include "mllm/kernels/OnlineSoftmax.h"
#include "mllm/kernels/cuda/Attention.h"
#include "mllm/kernels/cuda/TilePlan.h"

#include "Reduce.cuh"

#include <cuda_bf16.h>
#include <mma.h>

namespace mllm {
namespace kernels {
namespace cuda {
namespace dev {

namespace wmma = nvcuda::wmma;

constexpr int kM = static_cast<int>(kTileRows);
constexpr int kN = static_cast<int>(kTileCols);
/// Row paddings that keep every 16-row WMMA tile 32-byte aligned and
/// spread rows over shared-memory banks.
constexpr int kLdS = kN + 4; // fp32 score tiles
constexpr int kLdP = kN + 8; // bf16 probability tiles
template <int D>
MLLM_HD constexpr int ldH() {
  return D + 8; // bf16 Q/K/V/dO tiles
}

using FragA = wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major>;
using FragAT =
    wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::col_major>;
using FragB = wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major>;
using FragBT =
    wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major>;
using FragC = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;

/// The plan as the kernels read it (device pointers).
struct Plan {
  MaskPolicy policy;
  int64_t qLen, kLen, rowTiles, colTiles;
  const uint8_t *classes;
  const int32_t *rowStart, *rowCols, *colStart, *colRows, *rowOrder, *colOrder;
  TokenListView q, k;
};

inline Plan view(const AttentionPlan &p) {
  Plan d;
  d.policy = p.policy;
  d.qLen = p.qLen;
  d.kLen = p.kLen;
  d.rowTiles = p.rowTiles;
  d.colTiles = p.colTiles;
  d.classes = p.classes.data();
  d.rowStart = p.rowStart.data();
  d.rowCols = p.rowCols.data();
  d.colStart = p.colStart.data();
  d.colRows = p.colRows.data();
  d.rowOrder = p.rowOrder.data();
  d.colOrder = p.colOrder.data();
  d.q = {p.qWords.data(), p.qSegs.data(), p.qPos.data(), p.qLen};
  d.k = {p.kWords.data(), p.kSegs.data(), p.kPos.data(), p.kLen};
  return d;
}

struct Heads {
  int heads, kvHeads, group;
  float scale;
  const float *slopes;
};

inline Heads view(const AttentionHeads &h) {
  return {static_cast<int>(h.heads), static_cast<int>(h.kvHeads),
          static_cast<int>(h.heads / h.kvHeads), h.scale, h.alibiSlopes};
}

/// The tokens of one tile in shared memory, for the per-pair predicate.
struct TileTokens {
  uint64_t word[64];
  uint32_t seg[64];
  int64_t pos[64];
  int count; // valid entries (ragged last tile)
};

__device__ inline void loadTokens(TileTokens &t, TokenListView list,
                                  int64_t first, int64_t width) {
  int64_t n = tileExtent(list.len, width, first / width);
  for (int i = threadIdx.x; i < width; i += blockDim.x) {
    bool in = i < n;
    t.word[i] = in ? list.words[first + i] : 0;
    t.seg[i] = in ? list.segs[first + i] : 0;
    t.pos[i] = in ? list.pos[first + i] : 0;
  }
  if (threadIdx.x == 0)
    t.count = static_cast<int>(n);
}

/// Rows [first, first + 64) of one head of a [len, numHeads, D] bf16 tensor
/// into shared memory (leading dimension ldH<D>), zeros past `len`.
template <int D>
__device__ inline void loadTile(bf16 *dst, const bf16 *src, int64_t first,
                                int64_t len, int head, int numHeads) {
  constexpr int kVec = D / 8; // 16-byte vectors per row
  for (int i = threadIdx.x; i < 64 * kVec; i += blockDim.x) {
    int r = i / kVec, c = (i % kVec) * 8;
    uint4 value = make_uint4(0, 0, 0, 0);
    if (first + r < len)
      value = *reinterpret_cast<const uint4 *>(
          src + ((first + r) * numHeads + head) * D + c);
    *reinterpret_cast<uint4 *>(dst + r * ldH<D>() + c) = value;
  }
}

/// The scaled score with its ALiBi bias, rounded alike in every kernel (the
/// backward's probabilities must use the forward's LSE on the same score):
/// the product rounded, then the bias added, never fused into an FMA.
__device__ inline float scaledScore(float dot, float scale, float slope,
                                    int64_t qPos, int64_t kPos) {
  const float s = __fmul_rn(dot, scale);
  return slope != 0.0f ? __fadd_rn(s, alibiBias(slope, qPos, kPos)) : s;
}

/// The score of pair (i, j) of a tile from the raw dot product: scaled,
/// ALiBi added, -inf where the pair is masked (ragged edges, and attend()
/// on Partial tiles).
__device__ inline float maskedScore(float dot, int i, int j, bool partial,
                                    const TileTokens &qt, const TileTokens &kt,
                                    MaskPolicy policy, float scale,
                                    float slope) {
  if (i >= qt.count || j >= kt.count)
    return negativeInfinity<float>();
  if (partial && !attend(policy, qt.word[i], qt.seg[i], qt.pos[i], kt.word[j],
                         kt.seg[j], kt.pos[j]))
    return negativeInfinity<float>();
  return scaledScore(dot, scale, slope, qt.pos[i], kt.pos[j]);
}

/// C (fp32, shared, ldc) tile (ti, tj) = A rows [16 ti, +16) x B^T, where A
/// and B are [*, D] bf16 tiles in shared memory (QK^T, dO V^T).
template <int D>
__device__ inline void dotTile(const bf16 *a, const bf16 *b, float *c, int ldc,
                               int ti, int tj) {
  FragC acc;
  wmma::fill_fragment(acc, 0.0f);
  for (int kk = 0; kk < D; kk += 16) {
    FragA fa;
    FragBT fb;
    wmma::load_matrix_sync(fa, a + 16 * ti * ldH<D>() + kk, ldH<D>());
    wmma::load_matrix_sync(fb, b + 16 * tj * ldH<D>() + kk, ldH<D>());
    wmma::mma_sync(acc, fa, fb, acc);
  }
  wmma::store_matrix_sync(c + 16 * ti * ldc + 16 * tj, acc, ldc,
                          wmma::mem_row_major);
}

/// A 16x16 fp32 table whose entry (r, c) is r (or c): loaded into an
/// accumulator fragment it tells, element by element, which row (column)
/// of the tile a thread holds. The mapping is fixed for a fragment type, so
/// rows can be rescaled in registers (the online softmax) without staging
/// the accumulator through shared memory.
__device__ inline void fillIndexTables(float *rows, float *cols) {
  for (int i = threadIdx.x; i < 256; i += blockDim.x) {
    rows[i] = static_cast<float>(i / 16);
    cols[i] = static_cast<float>(i % 16);
  }
}

/// The forward of AttentionKernel::Registers (AttentionForwardRegisters.cu):
/// writes O and LSE when `splits` is 1, else each split's normalised O and
/// LSE to `oPart` and `lsePart` for the merge.
Status launchForwardRegisters(const AttentionPlan &plan,
                              const AttentionHeads &heads, const bf16 *q,
                              const bf16 *k, const bf16 *v, bf16 *o, float *lse,
                              float *oPart, float *lsePart, int splits,
                              cudaStream_t stream);

/// Passes 2 and 3 of the backward of AttentionKernel::Registers
/// (AttentionBackwardRegisters.cu), from delta = rowsum(dO * O).
Status launchBackwardRegisters(const AttentionPlan &plan,
                               const AttentionHeads &heads, const bf16 *q,
                               const bf16 *k, const bf16 *v, const float *lse,
                               const float *delta, const bf16 *dO, bf16 *dq,
                               bf16 *dk, bf16 *dv, cudaStream_t stream);

/// Bytes rounded up to 128 so every shared-memory region starts aligned.
MLLM_HD constexpr size_t align128(size_t bytes) {
  return (bytes + 127) / 128 * 128;
}

} // namespace dev
} // namespace cuda
} // namespace kernels
} // namespace mllm

#endif // MLLM_KERNELS_LIB_CUDA_ATTENTIONDEVICE_CUH
