//===- PartitionImpl.h - partitioners shared with the allocator -*- C++ -*-===//
//
// Internal to MLLMPlan: the min-max table, the cuts the planners price
// (StageCuts), the search over every cut (CutSearch) and its budget, and
// the per-stage load helpers that the partitioners (Partition.cpp), the
// stage allocation (Allocate*.cpp) and the chain (Chain.cpp) use.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_LIB_PLAN_PARTITIONIMPL_H
#define MLLM_LIB_PLAN_PARTITIONIMPL_H

#include "mllm/Plan/Partition.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/STLFunctionalExtras.h"

#include <algorithm>
#include <cassert>
#include <limits>
#include <optional>
#include <vector>

namespace mllm::plan::detail {

inline constexpr double kInf = std::numeric_limits<double>::infinity();
/// planPipeline's exactWorkLimit for colocated encoders.
inline constexpr double kColocatedExactWork = 2e6;

inline std::vector<double> prefixSums(llvm::ArrayRef<double> w) {
  std::vector<double> p(w.size() + 1, 0.0);
  for (size_t i = 0; i < w.size(); ++i)
    p[i + 1] = p[i] + w[i];
  return p;
}

/// Whether layers [first, end) may form one stage (end is one past its last
/// layer): the memory check of one GPU. MinMaxTable reads it by binary
/// search over the ends, as if a stage that fits still fit without its last
/// layers. That holds but where the shorter stage sends more (a module's
/// last stage sends its output or nothing, where a stage inside it sends
/// its cut): there the table may miss a stage that fits, never take one
/// that does not. CutSearch asks every end.
using SegmentFits = llvm::function_ref<bool(int64_t first, int64_t end)>;
/// SegmentFits for the k-th stage (from 0) of a partition: the same
/// property for each k.
using StageFits =
    llvm::function_ref<bool(int64_t stage, int64_t first, int64_t end)>;

/// Below this many DP steps (stages x N^2) a predicate is honoured exactly.
inline constexpr double kMinMaxExactWork = 2e7;
/// What one planPipeline call may spend pricing cuts beyond StageCuts'
/// (CutSearch, more stages): at most PipelineResources::searchBudget
/// plans, and per plan of it this much of the memory-capped estimate's
/// work (estimateWork), its dearest part (3 x 10^7 at the default). A
/// bound on its time where many cuts come near the best; counted, not
/// timed, so that plans do not depend on the machine.
inline constexpr int64_t kCutSearchWorkPerPlan = 3000;
/// The estimate's work a search of `budget` plans may spend.
inline int64_t cutSearchWork(int64_t budget) {
  return budget > std::numeric_limits<int64_t>::max() / kCutSearchWorkPerPlan
             ? std::numeric_limits<int64_t>::max()
             : budget * kCutSearchWorkPerPlan;
}
/// A plan counts as one more per this many layers in the search budget:
/// building one takes as long.
inline constexpr int64_t kCutSearchLayersPerPlan = 128;
/// The edges the memory-capped estimate has scanned on this thread so far
/// (Estimate.cpp, CycleRatio.cpp): its work, most of the time of pricing a
/// capped plan.
int64_t estimateWork();

/// The min-max DP of §B.5 over one chain, optionally with a per-stage
/// background load added to each stage (`bg[k]`, the other colocated
/// encoders' share of stage k) and a predicate every stage must satisfy
/// (one for all stages, or one per stage index).
/// x[k][i] = best bottleneck of layers [0, i) in stages 0..k (each >= 1
/// layer), infinite where no partition satisfies the predicate.
///
/// x[k][i] = min_{j in [k, i)} max(x[k-1][j], bg[k] + W(j, i)): the first
/// term is non-decreasing in j and the second non-increasing, so without a
/// predicate the minimum sits where they cross, found by binary search.
/// A predicate is read once as the last end each start allows (binary
/// search, O(N log N) calls). Up to `exactWorkLimit` steps, j is then
/// scanned down from i - 1 until W(j, i) alone exceeds the best found
/// (exact for any predicate); beyond, the crossing is searched among the
/// starts from which every later start allows i (exact when every part of
/// a stage that fits fits too, as memory is up to a tied head's copy).
class MinMaxTable {
public:
  MinMaxTable(llvm::ArrayRef<double> weights, int64_t maxStages,
              llvm::ArrayRef<double> background = {},
              SegmentFits fits = nullptr,
              double exactWorkLimit = kMinMaxExactWork)
      : MinMaxTable(Unfilled(), weights, maxStages, background) {
    if (fits)
      readPredicate(
          [&](int64_t, int64_t first, int64_t end) { return fits(first, end); },
          1, exactWorkLimit);
    fill();
  }

  /// With stage k held to `fits(min(k, rows - 1), first, end)`: the
  /// stages from `rows - 1` on share one predicate.
  MinMaxTable(llvm::ArrayRef<double> weights, int64_t maxStages,
              llvm::ArrayRef<double> background, StageFits fits, int64_t rows,
              double exactWorkLimit = kMinMaxExactWork)
      : MinMaxTable(Unfilled(), weights, maxStages, background) {
    readPredicate(fits, std::clamp<int64_t>(rows, 1, maxK), exactWorkLimit);
    fill();
  }

  double w(int64_t j, int64_t i) const { return p[i] - p[j]; }
  double bottleneck(int64_t stages) const { return x[stages - 1][n]; }
  /// Whether some partition into `stages` stages satisfies the predicate
  /// (one was found, beyond the exact work limit).
  bool feasible(int64_t stages) const { return bottleneck(stages) < kInf; }

  /// The partition into `stages` stages with the optimal bottleneck whose
  /// stage sizes, read from the last stage, are lexicographically smallest:
  /// each stage (from the last) is the shortest one whose remaining prefix
  /// can still meet the bottleneck. Requires feasible(stages).
  std::vector<int64_t> reconstruct(int64_t stages) const {
    assert(feasible(stages) && "no partition satisfies the predicate");
    double b = bottleneck(stages);
    std::vector<int64_t> sizes(stages, 0);
    int64_t end = n;
    for (int64_t k = stages - 1; k >= 1; --k) {
      int64_t chosen = -1;
      for (int64_t j = end - 1; j >= k; --j) {
        if (bg[k] + w(j, end) > b)
          break; // Longer last stages only get heavier.
        if (allowed(k, j, end) && x[k - 1][j] <= b) {
          chosen = j;
          break;
        }
      }
      assert(chosen >= 0 && "DP table inconsistent");
      sizes[k] = end - chosen;
      end = chosen;
    }
    sizes[0] = end;
    return sizes;
  }

private:
  std::vector<double> p, bg;
  int64_t n, maxK;
  std::vector<std::vector<double>> x;
  /// With a predicate, per stage index (the last row for every stage from
  /// it on; one when it is the same for all): the last end each start allows
  /// (start itself where not even one layer fits), and for each end the
  /// first start of the run of starts before it that all allow it.
  std::vector<std::vector<int64_t>> lastEnd, runStart;
  bool exact = false;

  /// Weights and background only; the constructors read the predicate and
  /// fill().
  struct Unfilled {};
  MinMaxTable(Unfilled, llvm::ArrayRef<double> weights, int64_t maxStages,
              llvm::ArrayRef<double> background)
      : p(prefixSums(weights)), bg(background.begin(), background.end()),
        n(static_cast<int64_t>(weights.size())), maxK(maxStages) {
    assert(maxK >= 1 && maxK <= n && "need 1 <= stages <= layers");
    if (bg.empty())
      bg.assign(maxK, 0.0);
    assert(static_cast<int64_t>(bg.size()) >= maxK);
  }

  void fill() {
    x.assign(maxK, std::vector<double>(n + 1, kInf));
    for (int64_t i = 1; i <= n; ++i)
      if (allowed(0, 0, i))
        x[0][i] = bg[0] + w(0, i);
    for (int64_t k = 1; k < maxK; ++k) {
      for (int64_t i = k + 1; i <= n; ++i)
        x[k][i] = exact ? scan(k, i) : crossing(k, i);
    }
  }

  size_t row(int64_t k) const {
    return std::min<size_t>(static_cast<size_t>(k), lastEnd.size() - 1);
  }

  bool allowed(int64_t k, int64_t j, int64_t i) const {
    return lastEnd.empty() || i <= lastEnd[row(k)][j];
  }

  void readPredicate(StageFits fits, int64_t rows, double exactWorkLimit) {
    exact = static_cast<double>(maxK) * static_cast<double>(n) *
                static_cast<double>(n) <=
            exactWorkLimit;
    lastEnd.assign(rows, std::vector<int64_t>(n, 0));
    for (int64_t k = 0; k < rows; ++k)
      for (int64_t j = 0; j < n; ++j) {
        int64_t lo = j, hi = n; // fits(k, j, lo) holds (lo == j: vacuously).
        while (lo < hi) {
          int64_t mid = lo + (hi - lo + 1) / 2;
          if (fits(k, j, mid))
            lo = mid;
          else
            hi = mid - 1;
        }
        lastEnd[k][j] = lo;
      }
    if (exact)
      return;
    runStart.assign(rows, std::vector<int64_t>(n + 1, 0));
    for (int64_t k = 0; k < rows; ++k)
      for (int64_t i = 1; i <= n; ++i) {
        int64_t j = i;
        while (j > 0 && lastEnd[k][j - 1] >= i)
          --j;
        runStart[k][i] = j;
      }
  }

  /// x[k][i] by the crossing: the smallest j in the allowed range with
  /// x[k-1][j] >= bg[k] + W(j, i), or the one before it.
  double crossing(int64_t k, int64_t i) const {
    const std::vector<double> &prev = x[k - 1];
    int64_t first = lastEnd.empty() ? k : std::max(k, runStart[row(k)][i]);
    if (first >= i)
      return kInf;
    int64_t lo = first, hi = i;
    while (lo < hi) {
      int64_t mid = lo + (hi - lo) / 2;
      if (prev[mid] >= bg[k] + w(mid, i))
        hi = mid;
      else
        lo = mid + 1;
    }
    double best = kInf;
    if (lo < i)
      best = prev[lo];
    if (lo > first)
      best = std::min(best, bg[k] + w(lo - 1, i));
    return best;
  }

  /// x[k][i] with a predicate, exactly.
  double scan(int64_t k, int64_t i) const {
    double best = kInf;
    for (int64_t j = i - 1; j >= k; --j) {
      double last = bg[k] + w(j, i);
      if (last >= best)
        break; // Longer last stages only get heavier.
      if (allowed(k, j, i))
        best = std::min(best, std::max(x[k - 1][j], last));
    }
    return best;
  }
};

/// The cuts of one chain of layers (a module, or layout chain's chain) into
/// k stages that the allocators price, by the balance times:
///  - level 0: the fastest cut among those whose stages fit one GPU with
///    one microbatch in flight (the least any schedule keeps);
///  - level l > 0: the fastest whose stages fit 2^l microbatches in flight,
///    which memory-aware 1F1B caps less (a faster cut that only just fits
///    can run slower than a slower one with room);
///  - the last level, the taper: the fastest whose stage s of k holds its
///    whole warm-up, k - s microbatches (at most the count), which 1F1B
///    does not cap at all where the module ends the pipeline (the LLM, a
///    chain; an encoder's stages want the LLM's stages more);
///  - where no cut fits, the closest miss: the cut whose largest stage
///    needs the least memory (min-max of the layers' bytes).
/// Without a memory model (or capacity) every level is the fastest cut.
class StageCuts {
public:
  /// One GPU's memory of the stage holding layers [first, end).
  using MemoryOf = llvm::function_ref<StageMemory(int64_t first, int64_t end)>;

  /// `layerBytes`: each layer's bytes with one microbatch in flight;
  /// `lastExtraBytes`: what the last stage adds when it is not the only
  /// one. Roomier levels are kept to 2^l < `microbatches` and to sizes whose
  /// DP is exact (kMinMaxExactWork).
  StageCuts(std::vector<double> balance, int64_t maxStages, MemoryOf memory,
            double capacity, int64_t microbatches,
            std::vector<double> layerBytes, double lastExtraBytes);

  int64_t levels() const {
    return static_cast<int64_t>(tables.size() + tapers.size());
  }
  bool checked() const { return isChecked; }
  /// The bottleneck of level 0's cut into k stages (infinite where none
  /// fits).
  double bottleneck(int64_t k) const { return tables[0].bottleneck(k); }
  bool fits(int64_t k) const { return tables[0].feasible(k); }
  /// The cut of `level` into k stages: level 0's where that level has
  /// none, the closest miss where nothing fits.
  std::vector<int64_t> cut(int64_t k, int64_t level = 0) const;
  /// The fastest cut, memory aside.
  std::vector<int64_t> fastest(int64_t k) const {
    return MinMaxTable(balance, k).reconstruct(k);
  }

private:
  std::vector<double> balance, layerBytes;
  double lastExtraBytes = 0;
  bool isChecked = false;
  std::vector<MinMaxTable> tables; ///< Per level but the taper.
  /// The tapers', over the layers reversed (stage r is the r-th from the
  /// last), those that fit some stage count.
  std::vector<MinMaxTable> tapers;
};

/// Every cut of a chain of layers into k stages whose stages each fit (the
/// one-in-flight memory check, which any plan that fits passes; asked of
/// every stage, as it need not be monotone) and weigh at most a limit, for
/// the planners' search over the estimate (docs/plan-format.md, "Every
/// cut"): a branch and bound whose bound is a lower bound of the estimate,
/// path work + (microbatches - 1) x the bottleneck, so a limit on the
/// bottleneck, and optionally a per-stage one (Admits). A prefix of stages
/// is extended only where the layers after it can still be cut within the
/// limits (a table of the suffixes' min-max bottlenecks), so every branch
/// ends in a cut that is visited; the visitor prices it and returns the
/// limit, which shrinks as better plans are found.
class CutSearch {
public:
  /// Up to `maxStages` stages (at most the layers).
  CutSearch(llvm::ArrayRef<double> weights, int64_t maxStages,
            SegmentFits fits);

  /// The least bottleneck of a cut into `stages` stages that fit, infinite
  /// where none does.
  double bottleneck(int64_t stages) const { return suffix[stages - 1][0]; }

  /// Whether a search may take the stage of layers [first, end) with
  /// `after` stages after it (a bound of the plans that contain it).
  using Admits =
      llvm::function_ref<bool(int64_t after, int64_t first, int64_t end)>;
  /// The visitor of one cut (stage sizes); returns the limit from now on,
  /// -infinity to end the search.
  using Visit = llvm::function_ref<double(llvm::ArrayRef<int64_t> sizes)>;
  /// Visits every cut into `stages` stages that fit, whose stages are
  /// admissible (none: all are), whose largest stage weighs at most the
  /// limit (`limit`, then what `visit` returns) and more than `above`, in
  /// lexicographic order of the stage sizes, until `budget` cuts have been
  /// visited (it counts them down). Returns whether it visited them all
  /// (false: the budget or the visitor ended it).
  bool search(int64_t stages, double limit, double above, Admits admissible,
              int64_t &budget, Visit visit) const;
  /// The least bottleneck of a cut into `stages` stages that fit and are
  /// admissible, with no stage heavier than `limit` (infinite: none).
  double bottleneck(int64_t stages, double limit, Admits admissible) const;

  /// How many cuts into `stages` stages fit and are admissible with no
  /// stage heavier than `limit` (as a double: it may be astronomical).
  double count(int64_t stages, double limit, Admits admissible) const;

  /// The largest bottleneck of a plan that may estimate at most
  /// `estimate` (plus rounding), when each path's forwards and input
  /// gradients take at least `pathFloor` (the sum over its layers): the
  /// estimate is at least pathFloor + (microbatches - 1) x the bottleneck
  /// (estimateIterationTime). Requires microbatches > 1.
  static double limitFor(double estimate, double pathFloor,
                         int64_t microbatches) {
    assert(microbatches > 1);
    return (estimate - pathFloor) / static_cast<double>(microbatches - 1) *
               (1 + 1e-9) +
           1e-12;
  }

  /// Whether a part is small enough to search: its tables' work, stages x
  /// layers^2, is within kMinMaxExactWork, and its fit table (a memory
  /// check per start and end, each summing the stage's layers: layers^3 /
  /// 6) within kMaxSearchedLayers.
  static bool affordable(int64_t maxStages, int64_t layers) {
    return layers <= kMaxSearchedLayers &&
           static_cast<double>(maxStages) * static_cast<double>(layers) *
                   static_cast<double>(layers) <=
               kMinMaxExactWork;
  }
  static constexpr int64_t kMaxSearchedLayers = 512;

private:
  /// Of one search: least[r][j], the least bottleneck of layers [j, n) in
  /// r + 1 admissible stages within the limit; heavy[r][j], whether one of
  /// them has a stage heavier than `above`.
  struct Tables {
    std::vector<std::vector<double>> least;
    std::vector<std::vector<char>> heavy;
  };
  Tables tables(int64_t stages, double limit, double above,
                Admits admissible) const;

  std::vector<double> p;
  int64_t n;
  /// Whether the stage of layers [j, e) fits, at j x (n + 1) + e.
  std::vector<char> fitTable;
  /// suffix[r - 1][j]: the least bottleneck of layers [j, n) in r stages
  /// that fit.
  std::vector<std::vector<double>> suffix;

  double w(int64_t j, int64_t e) const { return p[e] - p[j]; }
  bool fitsAt(int64_t j, int64_t e) const {
    return fitTable[static_cast<size_t>(j * (n + 1) + e)] != 0;
  }
};

/// Per-stage sums of `weights` for a partition (differences of prefix sums).
std::vector<double> stageLoads(llvm::ArrayRef<double> weights,
                               llvm::ArrayRef<int64_t> sizes);
/// Per-stage loads of colocated encoders (sum over encoders) plus `bg`.
std::vector<double> colocatedLoads(llvm::ArrayRef<std::vector<double>> weights,
                                   llvm::ArrayRef<std::vector<int64_t>> sizes,
                                   int64_t k, llvm::ArrayRef<double> bg);
double maxOf(llvm::ArrayRef<double> v);
/// The stages of `m` cut into `sizes`, with `times` summed and, when `m` has
/// a memory model, its memory (in flight not yet decided).
std::vector<StagePlan> stagePlans(const PipelineModule &m,
                                  llvm::ArrayRef<LayerTime> times,
                                  llvm::ArrayRef<int64_t> sizes);
/// The stage of `m` holding layers [first, first + count), `last` when it
/// ends the module.
StagePlan stagePlan(const PipelineModule &m, llvm::ArrayRef<LayerTime> times,
                    int64_t first, int64_t count, bool last);
/// One GPU's memory of the stage holding layers [first, first + count) of
/// `m` (the last stage's extra when it is the last and does not start at 0),
/// with its messages (stageMessages).
StageMemory stageMemory(const PipelineModule &m, int64_t first, int64_t count,
                        bool last);
/// Whether memory caps a stage of `paths` with a backward below its
/// warm-up (the estimate then waits for its round trips).
bool anyCapped(const std::vector<std::vector<StagePlan>> &paths);
/// The largest stage memory of `plan`'s paths over `capacity` (0 without
/// a capacity): how the plans that do not fit are ranked.
double worstMemoryRatio(const PipelinePlan &plan, double capacity);
/// Whether a stage of memory `mem` fits in `capacity` with one microbatch
/// in flight, the least any schedule keeps (capacity 0: no check).
bool fitsOneInFlight(StageMemory mem, double capacity);
/// The joint partition of colocated encoders into `k` stages over a
/// background load `bg` (exact below `exactWorkLimit`, else heuristic).
std::vector<std::vector<int64_t>>
colocatedImpl(llvm::ArrayRef<std::vector<double>> weights, int64_t k,
              llvm::ArrayRef<double> bg, double exactWorkLimit);

} // namespace mllm::plan::detail

#endif // MLLM_LIB_PLAN_PARTITIONIMPL_H
