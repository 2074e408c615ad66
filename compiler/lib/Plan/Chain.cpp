//===- Chain.cpp - encoders and LLM as one chain of stages ----------------===//
//
// planChain (Partition.h): the layout in which encoder and LLM layers form
// one linear pipeline, so that a stage may hold the last encoder layers and
// the first LLM layers, as Megatron puts the vision encoder in the first
// stage and as the paper's Fig. 1c cuts SigLIP + Llama-3.2-1B over 4 GPUs
// (cornstarch-brief §E.3). Frozen-aware like the others: the min-max
// partition balances the real (or, frozen_unaware, all-trainable) times of
// the whole chain.
//
//===----------------------------------------------------------------------===//
#include "PartitionImpl.h"

#include "llvm/ADT/STLExtras.h"

#include <optional>
#include <tuple>

using namespace mllm::plan;
using namespace mllm::plan::detail;

namespace {

/// The chain: every layer of every module, with the module it comes from.
struct ChainLayers {
  std::vector<double> balance;
  std::vector<size_t> module; ///< Per layer.
  std::vector<int64_t> local; ///< Per layer: its index in its module.
};

ChainLayers chainOf(const std::vector<PipelineModule> &modules) {
  ChainLayers c;
  for (size_t i = 0; i < modules.size(); ++i) {
    const PipelineModule &m = modules[i];
    const std::vector<LayerTime> &bal =
        m.balanceLayers.empty() ? m.layers : m.balanceLayers;
    for (size_t l = 0; l < bal.size(); ++l) {
      c.balance.push_back(bal[l].total());
      c.module.push_back(i);
      c.local.push_back(static_cast<int64_t>(l));
    }
  }
  return c;
}

/// Bytes one microbatch sends across the cut before chain layer `at`: the
/// activation inside a module, a module's output at its end, and the outputs
/// of earlier encoders that the LLM has not consumed yet.
double cutBytes(const std::vector<PipelineModule> &modules,
                const ChainLayers &c, size_t at) {
  size_t before = c.module[at - 1], after = c.module[at];
  double bytes =
      before == after ? modules[before].cutBytes : modules[before].outputBytes;
  // Up to the LLM's first layer, which reads them all (FromIR's layOutChain).
  if (!modules[before].isLLM)
    for (size_t i = 0; i < before; ++i)
      bytes += modules[i].outputBytes;
  return bytes;
}

/// Calls fn(module, first, count, last) for each module's piece of chain
/// layers [at, end), in order; `last` when the piece ends its module.
template <typename Fn>
void forEachPiece(const std::vector<PipelineModule> &modules,
                  const ChainLayers &c, int64_t at, int64_t end, Fn fn) {
  for (int64_t l = at; l < end;) {
    size_t i = c.module[l];
    int64_t first = c.local[l], count = 0;
    while (l < end && c.module[l] == i) {
      ++count;
      ++l;
    }
    fn(i, first, count,
       first + count == static_cast<int64_t>(modules[i].layers.size()));
  }
}

/// Sets the message terms of `mem`, the chain stage holding layers
/// [at, end): those across the cuts before and after it (what its pieces
/// hand each other stays on its GPUs).
void setChainMessages(StageMemory &mem,
                      const std::vector<PipelineModule> &modules,
                      const ChainLayers &c, int64_t at, int64_t end) {
  auto n = static_cast<int64_t>(c.module.size());
  double received = modules.front().inputBytes, sent = 0;
  if (at > 0)
    received = cutBytes(modules, c, static_cast<size_t>(at));
  if (end < n)
    sent = cutBytes(modules, c, static_cast<size_t>(end));
  // The cut goes back whole, as mllm-rank-map counts it (capInFlightAfter
  // reads it only behind a stage with a backward).
  setMessageTerms(mem, received, sent, at > 0 ? received : 0.0);
}

/// One GPU's memory of the chain stage holding layers [at, end).
StageMemory chainStageMemory(const std::vector<PipelineModule> &modules,
                             const ChainLayers &c, int64_t at, int64_t end) {
  StageMemory mem;
  forEachPiece(modules, c, at, end,
               [&](size_t i, int64_t first, int64_t count, bool last) {
                 mem.add(
                     stageMemory(modules[i], first, count, last).recorded());
               });
  setChainMessages(mem, modules, c, at, end);
  return mem;
}

/// The plan of K chain stages of the given sizes; its balanced estimate may
/// be a lower bound where it exceeds `bound` (estimateIterationTime's
/// atMost), and its real estimate is left to the caller.
PipelinePlan buildChain(const std::vector<PipelineModule> &modules,
                        const ChainLayers &c, llvm::ArrayRef<int64_t> sizes,
                        int64_t gpus, const PipelineResources &res,
                        bool balanceTimes, double bound) {
  PipelinePlan plan;
  auto k = static_cast<int64_t>(sizes.size());
  std::vector<StagePlan> path, balancedPath;
  std::vector<std::vector<StagePlan>> perModule(modules.size());
  plan.stagesPerModule.assign(modules.size(), 0);
  int64_t at = 0;
  for (int64_t s = 0; s < k; ++s) {
    StagePlan merged, balanced;
    int64_t end = at + sizes[s];
    forEachPiece(modules, c, at, end,
                 [&](size_t i, int64_t first, int64_t count, bool last) {
                   const PipelineModule &m = modules[i];
                   StagePlan piece = stagePlan(m, m.layers, first, count, last);
                   piece.colocated = !merged.module.empty();
                   StagePlan pb =
                       balanceTimes && !m.balanceLayers.empty()
                           ? stagePlan(m, m.balanceLayers, first, count, last)
                           : piece;
                   merged.module += (merged.module.empty() ? "" : "+") + m.name;
                   merged.numLayers += count;
                   merged.fwd += piece.fwd;
                   merged.bwd += piece.bwd;
                   merged.bwdWeight += piece.bwdWeight;
                   merged.memory.add(piece.memory.recorded());
                   piece.memory.sends = piece.memory.transit =
                       piece.memory.gradientBack = 0;
                   balanced.fwd += pb.fwd;
                   balanced.bwd += pb.bwd;
                   balanced.bwdWeight += pb.bwdWeight;
                   perModule[i].push_back(piece);
                   ++plan.stagesPerModule[i];
                 });
    setChainMessages(merged.memory, modules, c, at, end);
    // Chain stage s holds k - s microbatches at the peak, as an LLM stage,
    // and more sent gradients where the stage before holds more.
    merged.memory.wanted = inFlightDepth(true, s, k, k, res.microbatches);
    PredecessorsInFlight before;
    if (!path.empty() && path.back().memory.activations > 0)
      before.add(path.back().memory.inFlight);
    capInFlightAfter(merged.memory, res.memoryCapacity, before);
    // Recorded on the stage's last piece, which sends.
    StageMemory &sender = perModule[c.module[end - 1]].back().memory;
    sender.sends = merged.memory.sends;
    sender.transit = merged.memory.transit;
    if (end < static_cast<int64_t>(c.module.size())) {
      bool same = res.gpusPerNode <= 0 ||
                  (s * res.dp * gpus) / res.gpusPerNode ==
                      ((s + 1) * res.dp * gpus) / res.gpusPerNode;
      double bw = same ? res.intraNodeBandwidth : res.interNodeBandwidth;
      merged.sendTime =
          bw > 0 ? cutBytes(modules, c, static_cast<size_t>(end)) / bw : 0.0;
    }
    balanced.module = merged.module;
    balanced.firstLayer = merged.firstLayer = at;
    balanced.numLayers = merged.numLayers;
    balanced.memory = merged.memory;
    balanced.sendTime = merged.sendTime;
    plan.fits &= merged.memory.fits(res.memoryCapacity);
    plan.bottleneck = std::max(plan.bottleneck, merged.fwd + merged.bwd);
    path.push_back(std::move(merged));
    balancedPath.push_back(std::move(balanced));
    at = end;
  }
  for (std::vector<StagePlan> &stages : perModule)
    plan.stages.insert(plan.stages.end(), stages.begin(), stages.end());
  plan.paths = {path};
  // The real estimate is priced for the chosen plan only (planChain).
  plan.balanceIterationTime =
      estimateIterationTime({balancedPath}, res.microbatches, bound);
  plan.gpus = k * gpus;
  return plan;
}

} // namespace

std::optional<PipelinePlan>
mllm::plan::planChain(const std::vector<PipelineModule> &modules,
                      Objective objective, const PipelineResources &resources) {
  if (modules.empty() || resources.microbatches < 1 ||
      objective == Objective::Explicit)
    return std::nullopt;
  int64_t gpus = modules.front().gpusPerStage;
  for (const PipelineModule &m : modules)
    if (m.gpusPerStage != gpus || gpus < 1 || m.stages || m.layers.empty() ||
        (!m.memory.empty() && m.memory.size() != m.layers.size()) ||
        (!m.balanceLayers.empty() && m.balanceLayers.size() != m.layers.size()))
      return std::nullopt;
  ChainLayers c = chainOf(modules);
  auto n = static_cast<int64_t>(c.balance.size());
  int64_t most = std::min(n, resources.gpuBudget / gpus);
  if (most < 1)
    return std::nullopt;
  // The cuts by memory (StageCuts): the chain stage's memory, each layer's
  // bytes, and the LLM's tied head's copy on the last stage.
  std::optional<StageCuts> cuts;
  if (objective == Objective::MinMax) {
    auto memory = [&](int64_t first, int64_t end) {
      return chainStageMemory(modules, c, first, end);
    };
    bool check = llvm::any_of(
        modules, [](const PipelineModule &m) { return !m.memory.empty(); });
    std::vector<double> bytes;
    for (size_t l = 0; l < c.module.size(); ++l) {
      const PipelineModule &m = modules[c.module[l]];
      const LayerMemory *mem =
          m.memory.empty() ? nullptr : &m.memory[c.local[l]];
      bytes.push_back(mem ? mem->total() : 0.0);
    }
    const LayerMemory &extra = modules.back().lastStageExtra;
    cuts.emplace(c.balance, most,
                 check ? StageCuts::MemoryOf(memory) : StageCuts::MemoryOf(),
                 resources.memoryCapacity, resources.microbatches,
                 std::move(bytes), extra.total());
  }
  std::optional<PipelinePlan> best;
  std::optional<std::tuple<bool, double, double, int64_t>> bestKey;
  std::vector<int64_t> bestSizes;
  auto consider = [&](const std::vector<int64_t> &sizes, bool searched) {
    // Past a fitting best's estimate a candidate cannot win.
    double bound =
        resources.microbatches > 1 && bestKey && !std::get<0>(*bestKey)
            ? std::get<2>(*bestKey)
            : std::numeric_limits<double>::infinity();
    PipelinePlan plan = buildChain(modules, c, sizes, gpus, resources,
                                   /*balanceTimes=*/true, bound);
    // Fitting first (among those that do not, the smallest largest
    // stage), then the estimate (a tie with one microbatch), then fewer
    // GPUs. A searched cut wins a tie only with fewer stages, not by
    // rounding (as the allocator's, Allocator::beatBy).
    double estimate =
        resources.microbatches > 1 ? plan.balanceIterationTime : 0.0;
    double miss =
        plan.fits ? 0.0 : worstMemoryRatio(plan, resources.memoryCapacity);
    std::tuple<bool, double, double, int64_t> key{
        !plan.fits, miss, estimate, static_cast<int64_t>(sizes.size())};
    if (searched && bestKey && plan.fits && !std::get<0>(*bestKey) &&
        estimate >= std::get<2>(*bestKey) *
                        (std::get<3>(key) < std::get<3>(*bestKey) ? 1 + 1e-9
                                                                  : 1 - 1e-9))
      return;
    if (!bestKey || key < *bestKey) {
      bestKey = key;
      best = std::move(plan);
      bestSizes = sizes;
    }
  };
  // Most stages first: they are usually fastest, so the bound below prunes
  // the pricing of the slower candidates with fewer stages (the choice is
  // the smallest key whatever the order).
  for (int64_t k = most; k >= 1; --k) {
    std::vector<int64_t> first;
    for (int64_t level = 0; level < (cuts ? cuts->levels() : 1); ++level) {
      std::vector<int64_t> sizes;
      if (cuts) {
        sizes = cuts->cut(k, level);
      } else {
        sizes.assign(k, n / k);
        for (int64_t i = 0; i < n % k; ++i)
          ++sizes[i];
      }
      if (level == 0)
        first = sizes;
      else if (sizes == first)
        continue; // Priced.
      consider(sizes, /*searched=*/false);
    }
  }
  // Every cut that could beat a fitting best (CutSearch; the allocator's
  // search, docs/plan-format.md "Every cut"), each stage count in turn,
  // within the same budget; and how far it went (PipelinePlan::search).
  std::optional<SearchCoverage> search;
  int64_t priced = 0;
  bool choice =
      cuts && best && best->fits && resources.microbatches > 1 && most > 1;
  if (choice && !CutSearch::affordable(most, n))
    search = SearchCoverage::TooLarge;
  if (choice && CutSearch::affordable(most, n)) {
    auto fits = [&](int64_t first, int64_t end) {
      return fitsOneInFlight(chainStageMemory(modules, c, first, end),
                             resources.memoryCapacity);
    };
    CutSearch every(c.balance, most,
                    cuts->checked() ? SegmentFits(fits) : SegmentFits());
    double floor = 0;
    for (const PipelineModule &m : modules)
      for (const LayerTime &t :
           m.balanceLayers.empty() ? m.layers : m.balanceLayers)
        floor += t.fwd + t.bwd - t.bwdWeight;
    auto limit = [&] {
      return CutSearch::limitFor(std::get<2>(*bestKey), floor,
                                 resources.microbatches);
    };
    // A plan of many layers counts as several, as the allocator's.
    int64_t budget = resources.searchBudget / (1 + n / kCutSearchLayersPerPlan),
            workStart = estimateWork();
    bool spent = false;
    for (int64_t k = most; k >= 1 && !spent; --k)
      spent |= !every.search(k, limit(), -kInf, nullptr, budget,
                             [&](llvm::ArrayRef<int64_t> sizes) {
                               if (estimateWork() - workStart >
                                   cutSearchWork(resources.searchBudget)) {
                                 spent = true;
                                 return -kInf; // Ends the search.
                               }
                               ++priced;
                               consider({sizes.begin(), sizes.end()},
                                        /*searched=*/true);
                               return limit();
                             });
    search = spent ? SearchCoverage::Budget : SearchCoverage::Every;
  }
  // Said by --explain: memory moved the chosen cut off the fastest, which
  // holds only where the fastest does not fit or is capped (a taper or a
  // searched cut may also win on the bottleneck's weight gradient).
  bool moved = false;
  if (best && cuts && cuts->checked()) {
    std::vector<int64_t> fastest =
        cuts->fastest(static_cast<int64_t>(bestSizes.size()));
    if (bestSizes != fastest) {
      PipelinePlan plan = buildChain(modules, c, fastest, gpus, resources,
                                     /*balanceTimes=*/true, kInf);
      moved = !plan.fits || anyCapped(plan.paths);
    }
  }
  if (moved) {
    for (StagePlan &s : best->stages)
      s.cutToFit = true;
    for (std::vector<StagePlan> &path : best->paths)
      for (StagePlan &s : path)
        s.cutToFit = true;
  }
  if (best) {
    best->iterationTime =
        estimateIterationTime(best->paths, resources.microbatches);
    best->search = search;
    best->searchPriced = priced;
  }
  return best;
}
