//===- TilePlanHost.h - The device tile plan, run on the host ---*- C++ -*-===//
//
// What kernels/lib/cuda/AttentionPlan.cu runs on the GPU, as a host loop
// over the same MLLM_HD steps of TilePlan.h (one loop iteration per device
// thread), so the CPU tests check exactly the code the device runs. Test
// code only.
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_TEST_UNIT_CUDA_TILEPLANHOST_H
#define MLLM_TEST_UNIT_CUDA_TILEPLANHOST_H

#include "mllm/kernels/TileMap.h"
#include "mllm/kernels/cuda/TilePlan.h"

#include <vector>

namespace mllm {
namespace cuda_test {

using namespace mllm::kernels;

/// A token list gathered from global positions (owns its arrays).
struct HostTokenList {
  std::vector<uint64_t> words;
  std::vector<uint32_t> segs;
  std::vector<int64_t> pos;

  HostTokenList(const TokenLayout &layout, const std::vector<int64_t> &p)
      : pos(p) {
    for (int64_t g : p) {
      words.push_back(layout.words[g]);
      segs.push_back(layout.segment(g));
    }
  }
  cuda::TokenListView view() const {
    return {words.data(), segs.data(), pos.data(),
            static_cast<int64_t>(pos.size())};
  }
};

struct HostTilePlan {
  int64_t rowTiles = 0, colTiles = 0;
  /// After step 2 (summaries) and after step 3 (exact), row-major.
  std::vector<TileClass> conservative, exact;
  int64_t visiblePairs = 0;
};

/// Steps 1-3 of TilePlan.h with `rows` x `cols` tiles (cols <= 64).
inline HostTilePlan buildHostTilePlan(const HostTokenList &q,
                                      const HostTokenList &k, MaskPolicy policy,
                                      int64_t rows, int64_t cols) {
  cuda::TokenListView qv = q.view(), kv = k.view();
  HostTilePlan p;
  p.rowTiles = numTiles(qv.len, rows);
  p.colTiles = numTiles(kv.len, cols);
  std::vector<TileSummary> qs, ks;
  for (int64_t t = 0; t < p.rowTiles; ++t) // summarizeKernel
    qs.push_back(cuda::summarizeTile(qv, t, rows));
  for (int64_t t = 0; t < p.colTiles; ++t)
    ks.push_back(cuda::summarizeTile(kv, t, cols));
  for (int64_t r = 0; r < p.rowTiles; ++r) // classifyKernel
    for (int64_t c = 0; c < p.colTiles; ++c) {
      TileClass cls = classifyTile(qs[r], ks[c], policy);
      p.conservative.push_back(cls);
      int64_t m = tileExtent(qv.len, rows, r), n = tileExtent(kv.len, cols, c);
      if (cls == TileClass::Full)
        p.visiblePairs += cuda::fullTilePairs(qv.len, kv.len, rows, cols, r, c);
      if (cls != TileClass::Partial) {
        p.exact.push_back(cls);
        continue;
      }
      uint64_t any = 0, all = lowBits(n);
      int64_t pairs = 0;
      for (int64_t i = 0; i < m; ++i) { // one thread per query row
        uint64_t bits =
            cuda::planRowBits(policy, qv, r * rows + i, kv, c, cols);
        any |= bits;
        all &= bits;
        pairs += cuda::popcount64(bits);
      }
      TileClass exact = cuda::exactClass(any, all, n);
      p.exact.push_back(exact);
      p.visiblePairs += exact == TileClass::Skip ? 0 : pairs;
    }
  return p;
}

} // namespace cuda_test
} // namespace mllm

#endif // MLLM_TEST_UNIT_CUDA_TILEPLANHOST_H
