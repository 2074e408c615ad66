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
#include "mllm/Plan/Memory.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/STLFunctionalExtras.h"

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace mllm::plan {

/// Per-layer time of one microbatch, seconds.
struct LayerTime {
  double fwd = 0;
  double bwd = 0; ///< Weight grad + input grad + recompute, as applicable.
  /// Of `bwd`, the weight-gradient part: the frozen-aware schedules run it
  /// after the input gradient has gone upstream (only the estimate of a
  /// memory-capped pipeline reads it).
  double bwdWeight = 0;
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

/// partitionMinMax among the partitions whose every stage, layers
/// [first, end), satisfies `fits` (the memory check of one GPU), with the
/// same tie rule; empty when none is found. `fits` must keep holding when
/// a stage loses its last layers (it may fail for a later start: a stage
/// holding a whole module skips its tied head's copy); it is called
/// O(N log N) times. Up to `exactWorkLimit` steps (stages x N^2) the result
/// is exact; beyond, the search takes O(stages x N log N + N^2) and is
/// exact when `fits` also keeps holding as a stage loses its first layers.
std::vector<int64_t>
partitionMinMax(llvm::ArrayRef<double> weights, int64_t stages,
                llvm::function_ref<bool(int64_t first, int64_t end)> fits,
                double exactWorkLimit = 2e7);

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
///    heuristic's) with an O(work) reachability DP per step (a few to tens
///    of steps: a step lowers the upper end to the path it finds, or raises
///    the lower end to the least cost it refused).
/// Returns layers per stage per encoder. Requires 1 <= stages <= min_e N_e,
/// weights >= 0. Deterministic. planPipeline uses exactWorkLimit = 2e6 (about
/// 1e8 basic steps per stage count at worst; three encoders of 32/24/12
/// layers need under 7e4).
std::vector<std::vector<int64_t>>
partitionColocated(llvm::ArrayRef<std::vector<double>> weights, int64_t stages,
                   double exactWorkLimit = 2e6);

/// What one layer holds on one GPU of its stage, bytes.
struct LayerMemory {
  double weights = 0, grads = 0, optimizer = 0;
  double activations = 0; ///< Saved for backward by one microbatch.
  /// Its bytes with one microbatch in flight.
  double total() const { return weights + grads + optimizer + activations; }
};

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
  /// Per layer (as many as `layers`), or empty: no memory model (nothing is
  /// capped and everything fits).
  std::vector<LayerMemory> memory;
  /// What the module's last stage adds when it does not start at layer 0 (a
  /// tied LM head's copy of the embedding matrix).
  LayerMemory lastStageExtra;
  /// Per microbatch and GPU: the bytes a stage sends the next stage of the
  /// module, the bytes the module's last stage sends downstream, and the
  /// bytes its first stage receives (the LLM's: every encoder's output).
  double cutBytes = 0, outputBytes = 0, inputBytes = 0;

  /// Per microbatch and GPU: what one of its stages receives (the module's
  /// input on its first stage, a cut after) and sends (a cut, or downstream
  /// from its last stage; the LLM's last stage sends nothing).
  double receivedBytes(bool firstStage) const {
    return firstStage ? inputBytes : cutBytes;
  }
  double sentBytes(bool lastStage) const {
    if (!lastStage)
      return cutBytes;
    return isLLM ? 0.0 : outputBytes;
  }
};

/// PipelineResources::searchBudget's default.
inline constexpr int64_t kDefaultSearchBudget = 10000;

/// What the plan runs on.
struct PipelineResources {
  int64_t gpuBudget = 0;    ///< GPUs of one replica.
  int64_t microbatches = 1; ///< Per replica and iteration.
  /// Bytes of one GPU; 0: no memory check.
  double memoryCapacity = 0;
  /// Links between stages: ranks are laid out stage by stage, dp replicas
  /// of a stage consecutive (docs/plan-format.md); two stages talk over the
  /// intra-node link when their first ranks share a node. Bandwidths of 0
  /// count as infinite.
  int64_t gpusPerNode = 0, dp = 1;
  double intraNodeBandwidth = 0, interNodeBandwidth = 0;
  /// The plans the search over every cut may price (docs/plan-format.md,
  /// "Every cut"; mllmc --search-budget); 0: no search.
  int64_t searchBudget = kDefaultSearchBudget;
};

/// How encoders share GPUs: the mllm dialect's enum (Parallel, Colocated,
/// Chain).
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
  double bwdWeight = 0;    ///< Of bwd (LayerTime::bwdWeight).
  /// One GPU's memory; `memory.wanted` 0 means unknown (no cap).
  StageMemory memory;
  /// Seconds to send one microbatch's output to the next stage of its path
  /// (and its gradient back); 0 for the last.
  double sendTime = 0;
  /// Layout chain: this stage runs on the GPUs of the StagePlan before it
  /// (one chain stage holding the end of one module and the start of the
  /// next).
  bool colocated = false;
  /// Memory moved the module's (layout chain: the chain's) cut off its
  /// fastest one for this stage count, which does not fit a GPU or holds
  /// fewer microbatches in flight (StageCuts).
  bool cutToFit = false;
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
  /// Whether every stage fits the GPU with at least one microbatch in
  /// flight (false only when no choice of stage counts fits; the plan is
  /// then the one whose largest stage is the smallest, the closest miss).
  bool fits = true;
  /// How far the search over every cut went (docs/plan-format.md, "Every
  /// cut"; mllm.pipeline's `search`), the most limiting where several
  /// apply; none where it did not run (no part's cut is free, one
  /// microbatch, no plan fits). Layout Chain: Every, Budget, or TooLarge for
  /// a chain too large to search.
  std::optional<SearchCoverage> search;
  /// The plans the search priced (raised stage counts included).
  int64_t searchPriced = 0;
  /// The encoder -> LLM paths handed to estimateIterationTime (real times):
  /// one per encoder (encoders-parallel; just the LLM if there is no
  /// encoder), or one (encoders-colocated) whose encoder stages are merged
  /// into one StagePlan per stage index (module "a+b", fwd, bwd, numLayers
  /// and firstLayer summed: the merged layers counted in stage order, so
  /// that each stage has its own first layer).
  std::vector<std::vector<StagePlan>> paths;
};

/// Estimated iteration time of the multimodal 1F1B pipeline: a period per
/// microbatch plus fill and drain along the longest encoder -> LLM path. With
/// colocated encoders an encoder stage runs every encoder's layers of that
/// stage one after another.
///
/// Precisely, with t = fwd + bwd of a stage: B = max over all stages of t;
/// S = max over paths of the sum over the path's stages of t - bwdWeight,
/// plus 2 x sendTime per boundary (activation down, gradient up), plus the
/// bwdWeight of the bottleneck stage (the frozen-aware schedules send the
/// input gradient before the weight gradient, which leaves the fill and
/// drain); P the period of one microbatch in the steady state. Result: S - P
/// + microbatches x P (0 without stages). Without memory caps P = B, so
/// uniform stages of time t on a p-stage path give the closed form m t +
/// (p - 1)(t - bwdWeight), which is 1F1B's (m + p - 1) t without weight
/// gradients.
///
/// When a stage is capped below its warm-up (memory.inFlight <
/// memory.wanted), P is the steady state of the programs the generator
/// writes for it (Generate.cpp): warm-ups min(depth, m), capped to
/// inFlight - 1, carried down the stages that run a backward with the
/// capped stages' shares (multimodalWarmups, Warmup.h); each stage
/// runs F(j + w), Bd(j), Bw(j); activations go down after F and gradients
/// up after Bd. P is the largest ratio of time to microbatches spanned over
/// the cycles of that event graph (Howard's policy iteration for the
/// maximum cycle ratio): a stage capped to k waits for the round trip of its
/// microbatch to the loss and back every k microbatches, and neighbours with
/// equal warm-ups hand each other their backward (two stage times per
/// microbatch). Then the result is max(the uncapped one, S' + (m - k) P),
/// with S' the longest path with weight gradients and k the fewest
/// microbatches a held-back stage may hold: k microbatches start without
/// waiting, the others one period apart (within a few percent of mllm-sim
/// on capped plans; docs/plan-format.md). Each element of a path is one
/// stage as it runs: pass a
/// colocated encoder stage as one StagePlan with the summed times and
/// memory (PipelinePlan::paths does). Stages are identified across paths by
/// module and first layer. A search comparing candidates with the best so
/// far passes its estimate as `atMost`: a result above it may then be only
/// a lower bound (the steady state of memory-capped stages, the costly
/// part, is not priced once the uncapped estimate exceeds it).
double
estimateIterationTime(const std::vector<std::vector<StagePlan>> &paths,
                      int64_t microbatches,
                      double atMost = std::numeric_limits<double>::infinity());

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

/// The same with memory and links: every candidate choice of stage counts is
/// priced with estimateIterationTime on its stages' memory caps and
/// transfers, a choice whose stages do not fit (not even one microbatch in
/// flight) is taken only when no choice fits (PipelinePlan::fits), and the
/// stage counts for a bottleneck target are raised to the least that fit.
/// Under Objective::MinMax a module (not colocated encoders) is cut by the
/// min-max partition among those whose every stage fits with one
/// microbatch in flight, so a stage count is not lost because its fastest
/// cut overflows a GPU; the unconstrained one when none fits.
std::optional<PipelinePlan>
planPipeline(const std::vector<PipelineModule> &modules, Layout layout,
             Objective objective, const PipelineResources &resources);

/// Layout Chain (planPipeline dispatches to it): the modules' layers, in
/// input order (the encoders, then the LLM), are one chain cut into K stages
/// by the objective (MinMax on the balance times or Uniform; Explicit is not
/// supported), and a stage may hold the end of one module and the start of
/// the next (its later pieces are StagePlans with `colocated`). Every
/// module must have the same gpusPerStage g and no fixed stage count; K
/// (<= gpuBudget / g) minimises the estimate of the one path, with memory
/// and transfers as planPipeline's (MinMax cuts among the partitions whose
/// chain stages fit, as planPipeline's modules). nullopt when that is not
/// possible.
std::optional<PipelinePlan>
planChain(const std::vector<PipelineModule> &modules, Objective objective,
          const PipelineResources &resources);

} // namespace mllm::plan

#endif // MLLM_PLAN_PARTITION_H
