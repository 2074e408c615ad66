//===- Attention.h - CPU flash attention over bitfield masks ----*- C++ -*-===//
//
// Forward and backward flash attention (online softmax, never an S x S
// matrix) for the bitfield masks of docs/masks.md, driven by a tile map:
// Skip tiles are never touched, Full tiles run without per-pair checks and
// Partial tiles apply a precomputed bit per (query, key) pair. GQA, ALiBi
// and a softmax scale; fp32, and fp64 for gradient checks.
//
// The query and key token lists are given by global positions into one
// TokenLayout, so the same call serves the plain case (both 0..S-1) and a
// context-parallel rank (its own query tokens, all-gathered keys in rank
// order). prepareAttention() does all mask work once per batch; the plan is
// then reused by every head and layer that shares the layout.
//
// Results are bitwise reproducible run to run whatever the thread count:
// each output element is reduced by one task in a fixed order, with no
// atomics. See docs/attention-cpu.md.
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_KERNELS_CPU_ATTENTION_H
#define MLLM_KERNELS_CPU_ATTENTION_H

#include "mllm/kernels/TileMap.h"

#include <cstdint>
#include <string>
#include <vector>

namespace mllm {
namespace kernels {
namespace cpu {

/// Which query tokens attend to which key tokens. Query tile r is entries
/// [r * rows, (r + 1) * rows) of the query list, key tile c entries
/// [c * cols, (c + 1) * cols) of the key list, whatever their positions.
struct AttentionTokens {
  const TokenLayout *layout = nullptr;
  MaskPolicy policy;
  /// rows = queries per tile, cols = keys per tile (1..64).
  TileShape tiles;
  /// Global positions into `layout`; nullptr means 0..len-1.
  const int64_t *qPos = nullptr;
  int64_t qLen = 0;
  const int64_t *kPos = nullptr;
  int64_t kLen = 0;

  /// Every token of `layout` attends over every token (no CP).
  static AttentionTokens whole(const TokenLayout &layout, MaskPolicy policy,
                               TileShape tiles = {}) {
    AttentionTokens t;
    t.layout = &layout;
    t.policy = policy;
    t.tiles = tiles;
    t.qLen = t.kLen = layout.size();
    return t;
  }
};

/// The per-layer shape. Q and O are [qLen, heads, headDim], K and V
/// [kLen, kvHeads, headDim] (token-major, as a QKV linear writes them), LSE
/// [heads, qLen]. Query head h reads kv head h / (heads / kvHeads).
struct AttentionHeads {
  int64_t heads = 1, kvHeads = 1, headDim = 64;
  /// Multiplies QK^T (usually 1 / sqrt(headDim)).
  double scale = 1.0;
  /// Optional, one per query head: adds slope * (kPos - qPos) to the
  /// scaled score, on global positions.
  const float *alibiSlopes = nullptr;
};

struct AttentionPlanOptions {
  /// Forward and dQ: runs of consecutive non-skipped key tiles are fused into
  /// one GEMM of at most this many keys.
  int64_t spanKeys = 256;
  /// dK/dV: keys per key-stationary block (one task per block and kv head).
  int64_t keyBlockKeys = 128;
};

/// A call runs one OpenMP parallel region and holds OpenBLAS at one thread
/// meanwhile (openblas_set_num_threads is process-wide), so calls from
/// different threads must not overlap.
struct AttentionOptions {
  /// OpenMP threads; 0 = omp_get_max_threads().
  int threads = 0;
};

/// A tile's entry in AttentionPlan::tileRefs.
constexpr int32_t kSkipTile = -2;
constexpr int32_t kFullTile = -1;

/// Everything mask-dependent, built once per batch by prepareAttention().
/// Read-only afterwards, so one plan may serve concurrent calls.
struct AttentionPlan {
  /// Key tiles [first, last] of one query tile fused into one GEMM.
  struct Span {
    int64_t first, last;
  };
  /// A query tile that a key block sees: its non-skipped key tiles inside
  /// the block lie in [first, last].
  struct BlockRow {
    int64_t row, first, last;
  };

  TileShape shape;
  MaskPolicy policy;
  int64_t qLen = 0, kLen = 0, rowTiles = 0, colTiles = 0;
  std::vector<int64_t> qPos, kPos;
  /// The conservative classification from tile summaries. For the plain
  /// case it equals buildTileMap(layout, policy, shape), the balancer's map.
  TileMap map;
  /// Per tile, row-major: kSkipTile, kFullTile or the index of its bit rows
  /// in partialBits. Exact: a Partial tile whose bits turn out empty or full
  /// is recorded as Skip or Full.
  std::vector<int32_t> tileRefs;
  /// shape.rows words per Partial tile; bit j of word i: query i of the tile
  /// may attend to key j. Rows past qLen are 0.
  std::vector<uint64_t> partialBits;
  /// Non-skipped tiles per query tile, and the query tiles heaviest first.
  std::vector<int64_t> rowWork, rowOrder;
  /// Per query tile r: spans[spanStart[r] .. spanStart[r + 1]).
  std::vector<int64_t> spanStart;
  std::vector<Span> spans;
  /// Key blocks of blockTiles key tiles; per block b: blockRows[blockStart[b]
  /// .. blockStart[b + 1]) in ascending row order, its work (non-skipped
  /// tiles) and the blocks heaviest first.
  int64_t blockTiles = 1;
  std::vector<int64_t> blockStart;
  std::vector<BlockRow> blockRows;
  std::vector<int64_t> blockWork, blockOrder;
  /// The widest span and block, in keys (scratch sizes).
  int64_t maxSpanKeys = 0, maxBlockKeys = 0;

  int32_t ref(int64_t row, int64_t col) const {
    return tileRefs[static_cast<size_t>(row * colTiles + col)];
  }
  const uint64_t *bits(int32_t ref) const {
    return partialBits.data() + static_cast<size_t>(ref) * shape.rows;
  }
  /// The exact class of a tile (after refinement).
  TileClass tileClass(int64_t row, int64_t col) const;
  int64_t numTiles() const { return rowTiles * colTiles; }
  int64_t nonSkippedTiles() const;
  /// Skip tiles / all tiles of the exact classification.
  double skippedFraction() const;
  /// Allowed (query, key) pairs: the work a kernel cannot avoid.
  int64_t visiblePairs() const;
};

/// Empty when `tokens` is usable, else why not (no layout, positions out of
/// range, tile shape outside 1..64 key columns, negative lengths).
std::string checkAttentionTokens(const AttentionTokens &tokens);
/// Empty when `heads` is usable (positive sizes, kvHeads divides heads).
std::string checkAttentionHeads(const AttentionHeads &heads);

/// Summarises the query and key tiles, classifies every tile, computes the
/// bit rows of Partial tiles and the work order. O(qLen + kLen + tiles +
/// rows x cols per Partial tile), parallel over query tiles. Precondition:
/// checkAttentionTokens(tokens) is empty.
AttentionPlan prepareAttention(const AttentionTokens &tokens,
                               const AttentionPlanOptions &options = {});

/// O and LSE from Q, K, V. Precondition: checkAttentionHeads(heads) is
/// empty. A query with no visible key gets O = 0 and LSE = -inf.
template <typename T>
void attentionForward(const AttentionPlan &plan, const AttentionHeads &heads,
                      const T *q, const T *k, const T *v, T *o, T *lse,
                      const AttentionOptions &options = {});

/// dQ, dK, dV from the forward's inputs, its O and LSE, and dO. dK and dV are
/// for the plan's key list (under CP: the gathered keys, to be
/// reduce-scattered). Rows with LSE = -inf contribute nothing.
template <typename T>
void attentionBackward(const AttentionPlan &plan, const AttentionHeads &heads,
                       const T *q, const T *k, const T *v, const T *o,
                       const T *lse, const T *dO, T *dq, T *dk, T *dv,
                       const AttentionOptions &options = {});

extern template void attentionForward<float>(const AttentionPlan &,
                                             const AttentionHeads &,
                                             const float *, const float *,
                                             const float *, float *, float *,
                                             const AttentionOptions &);
extern template void
attentionForward<double>(const AttentionPlan &, const AttentionHeads &,
                         const double *, const double *, const double *,
                         double *, double *, const AttentionOptions &);
extern template void
attentionBackward<float>(const AttentionPlan &, const AttentionHeads &,
                         const float *, const float *, const float *,
                         const float *, const float *, const float *, float *,
                         float *, float *, const AttentionOptions &);
extern template void attentionBackward<double>(
    const AttentionPlan &, const AttentionHeads &, const double *,
    const double *, const double *, const double *, const double *,
    const double *, double *, double *, double *, const AttentionOptions &);

} // namespace cpu
} // namespace kernels
} // namespace mllm

#endif // MLLM_KERNELS_CPU_ATTENTION_H
