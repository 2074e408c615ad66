//===- Allocator.h - planPipeline's allocation of a GPU budget -*- C++ -*-===//
//
// Internal to MLLMPlan: the Allocator that planPipeline runs for the
// parallel and colocated encoder layouts, its candidates and their keys.
// Allocate.cpp proposes and compares candidates, AllocatePlan.cpp builds a
// candidate's plan, AllocateSearch.cpp searches beyond the proposals.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_LIB_PLAN_ALLOCATOR_H
#define MLLM_LIB_PLAN_ALLOCATOR_H

#include "PartitionImpl.h"

#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

namespace mllm::plan::detail {

inline std::vector<int64_t> uniformSizes(int64_t n, int64_t k) {
  std::vector<int64_t> sizes(k, n / k);
  for (int64_t i = 0; i < n % k; ++i)
    ++sizes[i];
  return sizes;
}

/// What planPipeline knows about one module.
struct ModuleInfo {
  int64_t n = 0, lo = 1, hi = 1, gpus = 1;
  std::vector<double> balance; ///< Per-layer balance fwd + bwd.
  bool useExplicit = false, useUniform = false;
  /// Bottleneck of the balance times for k = lo..hi (element k - lo).
  std::vector<double> bottleneck;
  /// The min-max cuts (Objective::MinMax, not colocated encoders).
  std::optional<StageCuts> cuts;
  /// Every cut, for the search (Allocator::searchCuts), built when needed.
  std::optional<CutSearch> every;
  /// With it, where memory is checked: the microbatches in flight the
  /// memory of each stage [first, end) allows (capInFlight without a
  /// warm-up), at first * (n + 1) + end. admits() reads it for every cut it
  /// bounds.
  std::vector<int64_t> holds;
  /// Prefix sums of the balance times' forward + input gradient and of
  /// their weight gradients; the last layer without a backward (-1: none).
  std::vector<double> tripSums, weightSums;
  int64_t lastWithoutBackward = -1;

  std::vector<int64_t> sizes(const PipelineModule &m, int64_t k,
                             int64_t level = 0) const {
    if (useExplicit)
      return m.explicitStages;
    if (useUniform)
      return uniformSizes(n, k);
    if (cuts)
      return cuts->cut(k, level);
    return MinMaxTable(balance, k).reconstruct(k);
  }
  int64_t levels() const { return cuts ? cuts->levels() : 1; }
};

/// One choice of stage counts (and, colocated, the encoders' partition).
struct Candidate {
  std::vector<int64_t> stages;                 ///< Per module.
  std::vector<std::vector<int64_t>> colocated; ///< Per encoder, if any.
  /// Per colocated encoder: cut off its fastest for memory.
  std::vector<bool> colocatedToFit;
  int64_t level = 0; ///< Of the modules' StageCuts.
  /// Per module, where the search (Allocator::searchCuts) chose its cut;
  /// empty for the level's.
  std::vector<std::vector<int64_t>> searched;
  /// Given more stages than proposed (considerMoreStages).
  bool raised = false;
};

/// How good a candidate is: fitting first (among those that do not, the
/// smallest largest stage), then the estimate under the balance times,
/// fewer GPUs, more LLM stages, fewer encoder stages.
using Key =
    std::tuple<bool, double, double, int64_t, int64_t, std::vector<int64_t>>;

/// One run of planPipeline.
class Allocator {
public:
  Allocator(const std::vector<PipelineModule> &modules, Layout layout,
            Objective objective, const PipelineResources &res)
      : modules(modules), layout(layout), objective(objective), res(res),
        info(modules.size()) {}

  std::optional<PipelinePlan> run() {
    if (modules.empty() || res.microbatches < 1 || !readModules())
      return std::nullopt;
    if (layout == Layout::Parallel || encoders.empty())
      chooseParallel();
    else if (!chooseColocated())
      return std::nullopt;
    searchCuts();
    markCutsToFit();
    if (best) {
      best->search = searchCoverage();
      best->searchPriced = searchPriced;
    }
    return best;
  }

private:
  const std::vector<PipelineModule> &modules;
  Layout layout;
  Objective objective;
  PipelineResources res;
  int64_t llm = -1;
  std::vector<size_t> encoders;
  std::vector<ModuleInfo> info;
  /// Each encoder's balance weights, in `encoders` order.
  std::vector<std::vector<double>> encoderBalance;
  std::optional<PipelinePlan> best;
  std::optional<Key> bestKey;
  Candidate bestCandidate;
  /// The candidates priced, each choice of stage counts, colocated
  /// encoders' cut and level once (pricedKeys), with their estimates and
  /// whether memory caps them: where considerMoreStages and searchCuts
  /// start.
  struct Priced {
    double estimate = 0;
    bool capped = false;
    Candidate candidate;
  };
  std::vector<Priced> priced;
  std::set<std::tuple<std::vector<int64_t>, std::vector<std::vector<int64_t>>,
                      int64_t>>
      pricedKeys;
  /// Cuts the search may still price (PipelineResources::searchBudget).
  int64_t searchBudget = res.searchBudget;
  /// estimateWork() when the search began (-1: not yet); whether it spent
  /// its budget.
  int64_t workStart = -1;
  bool exhausted = false;
  /// Whether searchCuts ran (a fitting best, more than one microbatch),
  /// and the plans it and considerMoreStages priced.
  bool searchRan = false;
  int64_t searchPriced = 0;
  /// The joint searches (searchKey) left out for their size and not made
  /// later.
  std::set<std::vector<std::vector<int64_t>>> skippedJoint;
  /// The searches made (searchKey).
  std::set<std::vector<std::vector<int64_t>>> searchesMade;

  bool pipelined() const { return res.microbatches > 1; }
  bool colocated() const {
    return layout == Layout::Colocated && !encoders.empty();
  }
  bool readModules();
  void fillBottlenecks(size_t i);
  int64_t fewestFitting(size_t i) const;
  void chooseParallel();
  void considerMisses();
  /// Candidates with more stages than a priced one for the same bottleneck.
  void considerMoreStages(const std::vector<std::vector<int64_t>> &proposed);
  /// Takes `plans` plans' pricing from the search's budget
  /// (PipelineResources::searchBudget, cutSearchWork); false once it is spent.
  /// A plan of many layers counts as several (kCutSearchLayersPerPlan):
  /// building it takes as long.
  bool spend(int64_t plans = 1);
  /// What a module's search costs before its first cut, in plans.
  static constexpr int64_t kSearchSetupPlans = 4;
  /// A lower bound of every path's forwards and input gradients, whatever
  /// the stage counts and cuts.
  double pathWorkFloor() const;
  /// The largest balanced stage load of `c`'s plan: the colocated
  /// encoders' merged stages as cut and every other module's cut; with
  /// `fastest`, a module searched (everyCut) counts its fastest fitting cut
  /// of c's stage count instead of its own, so the result bounds every cut
  /// searchCuts may try from `c`.
  double cutBottleneck(const Candidate &c, bool fastest);
  /// cutBottleneck's two terms: the colocated encoders' merged stages (0
  /// without them), and every other module's.
  double colocatedBottleneck(const Candidate &c) const;
  double partsBottleneck(const Candidate &c, bool fastest);
  /// Whether neither `c` nor a cut searchCuts may try from it can beat a
  /// fitting best: pathWorkFloor() + (microbatches - 1) x the bottleneck
  /// bounds every estimate (CutSearch::limitFor).
  bool outclassed(const Candidate &c);
  void searchCuts();
  /// What every cut of the modules `free` shares, for `c`'s stage counts
  /// (the estimate's floor): each path's forwards, input gradients and
  /// transfers (the stage counts place the ranks), and the slowest stage
  /// outside them (the first, as the estimate takes it).
  struct SearchFloor {
    double longest = 0, besides = 0, besidesWeight = 0;
  };
  SearchFloor searchFloor(const Candidate &c,
                          llvm::ArrayRef<size_t> free) const;
  /// The largest bottleneck a plan over `floor` may have to beat the best.
  double searchLimit(const SearchFloor &floor) const;
  /// Whether a plan of `c`'s stage counts in which module i's stage with
  /// `after` stages after it holds layers [first, end) may estimate below
  /// `beat` (beatBy), by its memory: see the definition.
  bool admits(const Candidate &c, size_t i, double longest, double beat,
              int64_t after, int64_t first, int64_t end) const;
  /// Module i's CutSearch, or none where it is not searched.
  const CutSearch *everyCut(size_t i);
  /// Whether module i's cut is the planner's to choose (not explicit or
  /// uniform, room for more than one stage), and whether everyCut can
  /// search it (not a colocated encoder, small enough for CutSearch).
  bool freeCut(size_t i) const;
  bool searchable(size_t i) const;
  /// PipelinePlan::search for the plan chosen.
  std::optional<SearchCoverage> searchCoverage() const;
  /// The estimate below which `c` beats the best: a tie wins only where
  /// `c` is ahead on the key's later terms (fewer GPUs, ...), not on other
  /// cuts of the best's stage counts (rounding aside: the cuts StageCuts
  /// proposes are the balanced ones).
  double beatBy(const Candidate &c) const;
  /// The GPUs of one replica `c` takes.
  int64_t gpusOf(const Candidate &c) const;
  /// What tells a search apart from the others made (`searched`): `c`'s
  /// stage counts and the cuts of the modules held, outside `free`.
  std::vector<std::vector<int64_t>> searchKey(const Candidate &c,
                                              llvm::ArrayRef<size_t> free);
  /// Searches module i's cuts for `c`'s stage counts; false when the
  /// budget ran out.
  bool searchModule(const Candidate &c, size_t i);
  /// Searches every combination of the modules' cuts (the last one's by
  /// searchModule for each of the others'); false when the budget ran out.
  bool searchJointly(const Candidate &c, llvm::ArrayRef<size_t> mods);
  std::vector<int64_t> sizesOf(const Candidate &c, size_t i) const;
  void markCutsToFit();
  /// Whether `c` (level > 0) cuts every module as level 0 does: priced.
  bool sameAsLevelZero(const Candidate &c) const;
  bool chooseColocated();
  void consider(const Candidate &c);
  /// The plan of `c`; its estimates may be lower bounds where they exceed
  /// `bound` (estimateIterationTime's atMost). `balancedPaths`: where to
  /// put the paths the balanced estimate read.
  PipelinePlan
  build(const Candidate &c, double bound,
        std::vector<std::vector<StagePlan>> *balancedPaths = nullptr) const;
  std::vector<std::vector<StagePlan>>
  makePaths(const std::vector<std::vector<StagePlan>> &per,
            const Candidate &c) const;
  void placeStages(std::vector<std::vector<StagePlan>> &per,
                   const Candidate &c) const;
};

} // namespace mllm::plan::detail

#endif // MLLM_LIB_PLAN_ALLOCATOR_H
