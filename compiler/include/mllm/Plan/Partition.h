//===- Partition.h - pipeline stage partitioning ----------------*- C++ -*-===//
//
// Contiguous min-max partitioning of a module's layers over its stages
// (cornstarch-brief §B.5), the allocation of a stage budget between encoders
// and the LLM for both encoder layouts, and the pipeline-time estimate the
// allocation minimises. Plain C++ on the dialect's enums: the MLIR pass,
// the benchmarks and the simulator call the same code.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_PLAN_PARTITION_H
#define MLLM_PLAN_PARTITION_H

#include "mllm/Dialect/MLLM/IR/MLLMEnums.h"

#include "llvm/ADT/ArrayRef.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mllm::plan {

/// Per-layer time of one microbatch, seconds.
struct LayerTime {
  double fwd = 0;
  double bwd = 0; ///< Weight grad + input grad + recompute, as applicable.
  double total() const { return fwd + bwd; }
};

/// Layers per stage (each >= 1, summing to the number of layers) that
/// minimise the largest stage sum of `weights`; ties prefer the partition
/// that is lexicographically smallest in stage sizes from the last stage
/// (the last stage as small as possible, then the one before it, ...).
/// Requires 1 <= stages <= weights.size() and weights >= 0. Stage sums are
/// compared as differences of prefix sums, so the result is deterministic.
/// O(stages x N log N).
std::vector<int64_t> partitionMinMax(llvm::ArrayRef<double> weights,
                                     int64_t stages);

/// The optimal bottleneck of partitionMinMax(weights, k) for every
/// k = 1..maxStages (element k - 1), from one DP table. Requires
/// 1 <= maxStages <= weights.size().
std::vector<double> minMaxBottlenecks(llvm::ArrayRef<double> weights,
                                      int64_t maxStages);

/// Joint partition of colocated encoders: encoder e's layers (weights[e]) over
/// the same `stages` stages (each >= 1 layer of every encoder), minimising the
/// largest stage time, where stage i runs segment i of every encoder one
/// after another (sum). The problem is NP-hard in the number of encoders
/// (three-layer encoders over two stages encode PARTITION), so:
///  - heuristic: per-encoder min-max, then coordinate descent re-partitioning
///    one encoder exactly against the others' per-stage loads while the
///    bottleneck strictly improves;
///  - exact (to the last bit of the double; ties between partitions broken
///    deterministically), when work = stages x E x prod_e (N_e - stages + 1)
///    <= exactWorkLimit: bisection on the bottleneck (starting from the
///    heuristic's) with an O(work) reachability DP per step (~50 steps).
/// Returns layers per stage per encoder. Requires 1 <= stages <= min_e N_e,
/// weights >= 0. Deterministic. planPipeline uses exactWorkLimit = 2e6 (about
/// 1e8 basic steps per stage count at worst; three encoders of 32/24/12
/// layers need under 7e4).
std::vector<std::vector<int64_t>>
partitionColocated(llvm::ArrayRef<std::vector<double>> weights, int64_t stages,
                   double exactWorkLimit = 2e6);

/// A module's place in the pipeline graph.
struct PipelineModule {
  std::string name;
  /// What each layer really costs: the plan's stage times and iteration
  /// time are always computed from these.
  std::vector<LayerTime> layers;
  /// What the partitioner balances and the allocator minimises, if different
  /// from `layers` (the frozen-unaware baseline balances all-trainable times
  /// and is then charged the real ones). Empty: use `layers`.
  std::vector<LayerTime> balanceLayers;
  bool isLLM = false;
  /// Fixed stage count, or nullopt to let the allocator choose.
  std::optional<int64_t> stages;
  /// Explicit layers per stage (explicit partition policy), or empty.
  std::vector<int64_t> explicitStages;
  /// GPUs one stage of this module occupies (tp x cp).
  int64_t gpusPerStage = 1;
};

/// How encoders share GPUs: the mllm dialect's enum (Parallel, Colocated).
using Layout = mllm::EncoderLayout;

/// How layers are split over a module's stages.
enum class Objective {
  MinMax,   ///< minimise the largest stage (fwd + bwd) of the balanced times.
  Uniform,  ///< equal layer counts (the first stages take the remainder).
  Explicit, ///< the user's explicitStages.
};

struct StagePlan {
  std::string module;
  int64_t firstLayer = 0, numLayers = 0;
  double fwd = 0, bwd = 0; ///< Per microbatch.
};

struct PipelinePlan {
  std::vector<StagePlan> stages; ///< Modules in input order, stages in order.
  /// Stages per module, in input order.
  std::vector<int64_t> stagesPerModule;
  /// Largest stage fwd + bwd, over the stages as they run (a colocated
  /// encoder stage is the sum of every encoder's segment at that index).
  double bottleneck = 0;
  double iterationTime = 0; ///< Estimate of one iteration (see below).
  /// The estimate under the balance times (balanceLayers where given), i.e.
  /// what the allocator minimised; equals iterationTime without balanceLayers.
  double balanceIterationTime = 0;
  int64_t gpus = 0; ///< GPUs per replica the plan occupies.
  /// The encoder -> LLM paths handed to estimateIterationTime (real times):
  /// one per encoder (encoders-parallel; just the LLM if there is no
  /// encoder), or one (encoders-colocated) whose encoder stages are merged
  /// into one StagePlan per stage index (module "a+b", fwd, bwd and
  /// numLayers summed, firstLayer 0).
  std::vector<std::vector<StagePlan>> paths;
};

/// Estimated iteration time of the multimodal 1F1B pipeline: the bottleneck
/// stage's time for every microbatch plus fill and drain along the longest
/// encoder -> LLM path: sum over that path's stages of (fwd + bwd) minus the
/// bottleneck, plus bottleneck x microbatches. With colocated encoders an
/// encoder stage runs every encoder's layers of that stage one after another.
///
/// Precisely: B = max over all stages of all paths of fwd + bwd, S = max over
/// paths of the sum of fwd + bwd over the path's stages, result
/// S - B + microbatches x B (0 without stages). Each element of a path is one
/// stage as it runs: pass a colocated encoder stage as one StagePlan with the
/// summed times (PipelinePlan::paths does). Uniform stages of time t on a
/// p-stage path give the 1F1B closed form (m + p - 1) t. Note that S is the
/// path's total work, independent of how it is cut into stages, so the
/// estimate depends on a partition only through B.
double estimateIterationTime(const std::vector<std::vector<StagePlan>> &paths,
                             int64_t microbatches);

/// Partitions every module and, for modules without a fixed stage count,
/// chooses stage counts such that the GPUs used per replica (sum of stages x
/// gpusPerStage; colocated encoders share) do not exceed `gpuBudget`,
/// minimising estimateIterationTime. Returns nullopt if no assignment fits.
///
/// - At most one module has isLLM; the others are encoders feeding it.
/// - Each module gets 1..layers.size() stages (its `stages` if set).
/// - Objective::MinMax partitions the balance times (balanceLayers, else
///   layers) with partitionMinMax, colocated encoders jointly with
///   partitionColocated; Uniform gives equal layer counts (the first stages
///   take the remainder); Explicit uses explicitStages (which fixes the
///   stage count; the caller validates them: a module whose explicitStages
///   do not sum to its layers, or disagree with `stages`, makes the result
///   nullopt) and falls back to MinMax for a module without them.
/// - Encoders-colocated: every encoder gets the same stage count K_enc and
///   they must have equal gpusPerStage g (else nullopt); they cost K_enc x g
///   GPUs once.
/// - The choice minimises the estimate under the balance times, i.e. (for
///   microbatches > 1) the bottleneck; ties go to fewer GPUs, then more LLM
///   stages, then fewer encoder stages in input order. With microbatches == 1
///   every choice ties (the estimate is the path's total work) and the
///   fewest GPUs win. microbatches < 1 or gpusPerStage < 1: nullopt.
/// - The returned stages, bottleneck, paths and iterationTime use the real
///   `layers` times; balanceIterationTime is the minimised estimate.
std::optional<PipelinePlan>
planPipeline(const std::vector<PipelineModule> &modules, Layout layout,
             Objective objective, int64_t gpuBudget, int64_t microbatches);

} // namespace mllm::plan

#endif // MLLM_PLAN_PARTITION_H
