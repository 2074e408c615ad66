//===- RankLayout.h - which global ranks a pipeline stage runs on -*- C++
//-*-===//
//
// The one definition of the rank formula. A stage runs on dp data-parallel
// replicas, each made of cp context-parallel slots of tp tensor-parallel
// GPUs; the GPU at (d, c, t) has the global rank
//
//   first + d * dpStride + c * cpStride + t * tpStride.
//
// mllm-rank-map lays ranks out with TP innermost (tpStride 1, cpStride tp),
// which is what tpInnermost() builds. The communicator groups of a stage
// (its replicas, TP groups, CP groups and the DP x CP gradient-sync groups)
// follow from the layout, so the plan, the simulator and the runtime derive
// them here instead of each writing the formula again.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_RANKLAYOUT_H
#define MLLM_RUNTIME_RANKLAYOUT_H

#include <cstdint>
#include <optional>
#include <vector>

namespace mllm::runtime {

struct RankLayout {
  int64_t first = 0;
  int64_t dp = 1, cp = 1, tp = 1;
  int64_t dpStride = 1, cpStride = 1, tpStride = 1;

  /// TP innermost: a replica's cp x tp GPUs are consecutive from its first
  /// rank (the layout mllm-rank-map produces).
  static RankLayout tpInnermost(int64_t first, int64_t dp, int64_t dpStride,
                                int64_t cp, int64_t tp);

  /// GPUs of the stage: dp x cp x tp.
  int64_t size() const { return dp * cp * tp; }
  int64_t rank(int64_t d, int64_t c, int64_t t) const {
    return first + d * dpStride + c * cpStride + t * tpStride;
  }
  /// Every rank, ordered by (d, c, t).
  std::vector<int64_t> ranks() const;
  /// One past the largest rank.
  int64_t end() const;

  /// Where `rank` sits in the stage, if it is one of its GPUs.
  struct Coord {
    int64_t d = 0, c = 0, t = 0;
  };
  std::optional<Coord> coordOf(int64_t rank) const;

  /// The GPUs of each replica (dp groups of cp x tp ranks).
  std::vector<std::vector<int64_t>> replicaGroups() const;
  /// The TP groups: one per (d, c), tp ranks each.
  std::vector<std::vector<int64_t>> tpGroups() const;
  /// The CP groups: one per (d, t), cp ranks each.
  std::vector<std::vector<int64_t>> cpGroups() const;
  /// The groups that all-reduce gradients: one per t, the dp x cp ranks
  /// holding the same TP shard.
  std::vector<std::vector<int64_t>> gradSyncGroups() const;

  bool operator==(const RankLayout &o) const {
    return first == o.first && dp == o.dp && cp == o.cp && tp == o.tp &&
           dpStride == o.dpStride && cpStride == o.cpStride &&
           tpStride == o.tpStride;
  }
  bool operator!=(const RankLayout &o) const { return !(*this == o); }
};

} // namespace mllm::runtime

#endif // MLLM_RUNTIME_RANKLAYOUT_H
