//===- TilePlan.h - Per-thread steps of the device tile plan ----*- C++ -*-===//
//
// The CUDA attention builds its tile map on the device, with the same
// predicate (attend), summaries (TileSummary::addRun) and classification
// (classifyTile) the CPU kernel and the CP balancer use. This header holds
// what one device thread does in each step, as MLLM_HD functions, so the
// CPU unit tests run exactly these bodies in a host loop and compare the
// result with the CPU plan (cpu::prepareAttention) and the dense mask:
//
//   1. summarizeTile: one thread per query tile and per key tile;
//   2. classifyTile on the two whole-tile summaries: one thread per tile.
//      Conservative for any token set (tiles straddling packed samples are
//      never Full and Skip only when no pair is allowed), so unlike the CPU
//      plan no per-sample split is needed: step 3 makes the class exact;
//   3. tileRowBits per query row of every Partial tile (one thread per
//      row), folded over the rows by exactClass: Skip, Full or Partial,
//      exactly as refineTile decides on the CPU.
//
// The CUDA kernels then evaluate attend() per pair on Partial tiles (no bit
// rows are stored: at 128k tokens they would not fit).
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_KERNELS_CUDA_TILEPLAN_H
#define MLLM_KERNELS_CUDA_TILEPLAN_H

#include "mllm/kernels/OnlineSoftmax.h"

#include <cstdint>

namespace mllm {
namespace kernels {
namespace cuda {

/// One token list (the queries or the keys of a call): per entry its word,
/// segment and global position. Pointers are device or host memory,
/// matching where the code runs.
struct TokenListView {
  const uint64_t *words = nullptr;
  const uint32_t *segs = nullptr;
  const int64_t *pos = nullptr;
  int64_t len = 0;
};

/// The summary of tile `t` (entries [t * width, (t + 1) * width) of the
/// list), adding runs of identical tokens at consecutive positions at once,
/// as the CPU plan does.
MLLM_HD inline TileSummary summarizeTile(TokenListView list, int64_t t,
                                         int64_t width) {
  TileSummary s;
  s.begin = t * width;
  s.end = s.begin + tileExtent(list.len, width, t);
  for (int64_t i = s.begin; i < s.end;) {
    int64_t j = i + 1;
    while (j < s.end && list.words[j] == list.words[i] &&
           list.segs[j] == list.segs[i] && list.pos[j] == list.pos[j - 1] + 1)
      ++j;
    s.addRun(list.words[i], list.segs[i], list.pos[i], list.pos[j - 1]);
    i = j;
  }
  return s;
}

/// Bit j: query `qi` of the query list may attend to key j of key tile `c`.
MLLM_HD inline uint64_t planRowBits(MaskPolicy policy, TokenListView q,
                                    int64_t qi, TokenListView k, int64_t c,
                                    int64_t cols) {
  int64_t k0 = c * cols;
  return tileRowBits(policy, q.words[qi], q.segs[qi], q.pos[qi], k.words + k0,
                     k.segs + k0, k.pos + k0, tileExtent(k.len, cols, c));
}

/// The exact class of a tile of `n` keys from the OR and the AND of its
/// rows' bits (refineTile's rule, for bits folded in parallel).
MLLM_HD inline TileClass exactClass(uint64_t anyRow, uint64_t allRows,
                                    int64_t n) {
  if (anyRow == 0)
    return TileClass::Skip;
  return allRows == lowBits(n) ? TileClass::Full : TileClass::Partial;
}

MLLM_HD inline int popcount64(uint64_t bits) {
#if MLLM_DEVICE_PASS
  return __popcll(bits);
#else
  return __builtin_popcountll(bits);
#endif
}

/// The allowed pairs of a tile: m x n when Full, else the sum of the row
/// popcounts (Partial), 0 when Skip.
MLLM_HD inline int64_t fullTilePairs(int64_t qLen, int64_t kLen, int64_t rows,
                                     int64_t cols, int64_t r, int64_t c) {
  return tileExtent(qLen, rows, r) * tileExtent(kLen, cols, c);
}

} // namespace cuda
} // namespace kernels
} // namespace mllm

#endif // MLLM_KERNELS_CUDA_TILEPLAN_H
