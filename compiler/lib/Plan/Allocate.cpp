//===- Allocate.cpp - stage counts for every part -------------------------===//
//
// The allocation of a GPU budget between the encoders and the LLM
// (planPipeline): enumerate candidate stage counts (encoders in parallel:
// for every bottleneck target, each module's fewest stages meeting it,
// raised to the fewest whose stages fit in memory; colocated encoders:
// every shared encoder stage count, cut jointly for speed and for memory,
// with every LLM stage count), partition each with the min-max tables,
// price it with the estimate on its memory caps and transfers
// (Estimate.cpp), and keep the best that fits.
//
//===----------------------------------------------------------------------===//
#include "Allocator.h"

#include "llvm/ADT/STLExtras.h"

using namespace mllm::plan;
using namespace mllm::plan::detail;

namespace {

/// Each layer's bytes with one microbatch in flight (none without a memory
/// model).
std::vector<double> layerBytes(const PipelineModule &m) {
  std::vector<double> bytes;
  for (const LayerMemory &l : m.memory)
    bytes.push_back(l.total());
  return bytes;
}

} // namespace

/// Per-module facts: balance weights, allowed stage counts.
bool Allocator::readModules() {
  for (size_t i = 0; i < modules.size(); ++i) {
    if (modules[i].isLLM) {
      if (llm >= 0)
        return false; // At most one LLM.
      llm = static_cast<int64_t>(i);
    } else {
      encoders.push_back(i);
    }
  }
  for (size_t i = 0; i < modules.size(); ++i) {
    const PipelineModule &m = modules[i];
    ModuleInfo &mi = info[i];
    mi.n = static_cast<int64_t>(m.layers.size());
    mi.gpus = m.gpusPerStage;
    if (mi.n == 0 || mi.gpus < 1)
      return false;
    const std::vector<LayerTime> &bal =
        m.balanceLayers.empty() ? m.layers : m.balanceLayers;
    if (bal.size() != m.layers.size() ||
        (!m.memory.empty() && m.memory.size() != m.layers.size()))
      return false;
    mi.tripSums.assign(1, 0.0);
    mi.weightSums.assign(1, 0.0);
    for (const LayerTime &t : bal) {
      mi.balance.push_back(t.total());
      mi.tripSums.push_back(mi.tripSums.back() + t.fwd + t.bwd - t.bwdWeight);
      mi.weightSums.push_back(mi.weightSums.back() + t.bwdWeight);
      if (t.bwd <= 0)
        mi.lastWithoutBackward = static_cast<int64_t>(mi.balance.size()) - 1;
    }
    mi.lo = 1;
    mi.hi = mi.n;
    if (m.stages) {
      if (*m.stages < 1 || *m.stages > mi.n)
        return false;
      mi.lo = mi.hi = *m.stages;
    }
    if (objective == Objective::Explicit && !m.explicitStages.empty()) {
      int64_t k = static_cast<int64_t>(m.explicitStages.size()), sum = 0;
      for (int64_t s : m.explicitStages) {
        if (s < 1)
          return false;
        sum += s;
      }
      if (sum != mi.n || (m.stages && *m.stages != k))
        return false;
      mi.lo = mi.hi = k;
      mi.useExplicit = true;
    }
    mi.useUniform = objective == Objective::Uniform;
  }
  for (size_t e : encoders)
    encoderBalance.push_back(info[e].balance);
  return true;
}

/// Bottlenecks of one module (not colocated) for every allowed k.
void Allocator::fillBottlenecks(size_t i) {
  ModuleInfo &mi = info[i];
  const PipelineModule &m = modules[i];
  mi.bottleneck.clear();
  if (!mi.useExplicit && !mi.useUniform) {
    auto memory = [&](int64_t first, int64_t end) {
      return stageMemory(m, first, end - first, end == mi.n);
    };
    mi.cuts.emplace(mi.balance, mi.hi,
                    m.memory.empty() ? StageCuts::MemoryOf()
                                     : StageCuts::MemoryOf(memory),
                    res.memoryCapacity, res.microbatches, layerBytes(m),
                    m.lastStageExtra.total());
    for (int64_t k = mi.lo; k <= mi.hi; ++k)
      mi.bottleneck.push_back(mi.cuts->bottleneck(k));
    return;
  }
  for (int64_t k = mi.lo; k <= mi.hi; ++k)
    mi.bottleneck.push_back(maxOf(stageLoads(mi.balance, mi.sizes(m, k))));
}

/// The fewest stages of module i whose stages each hold one microbatch's
/// memory (the least any schedule keeps), or its largest count.
int64_t Allocator::fewestFitting(size_t i) const {
  const PipelineModule &m = modules[i];
  const ModuleInfo &mi = info[i];
  if (m.memory.empty() || res.memoryCapacity <= 0)
    return mi.lo;
  for (int64_t k = mi.lo; k <= mi.hi; ++k) {
    std::vector<int64_t> sizes = mi.sizes(m, k);
    bool ok = true;
    int64_t at = 0;
    for (size_t s = 0; s < sizes.size() && ok; ++s) {
      ok = fitsOneInFlight(stageMemory(m, at, sizes[s], s + 1 == sizes.size()),
                           res.memoryCapacity);
      at += sizes[s];
    }
    if (ok)
      return k;
  }
  return mi.hi;
}

/// Encoders in parallel: for every bottleneck target, each module's fewest
/// stages meeting it (and fitting); every such candidate within the budget
/// is priced.
void Allocator::chooseParallel() {
  for (size_t i = 0; i < modules.size(); ++i)
    fillBottlenecks(i);
  std::vector<int64_t> fitK(modules.size());
  for (size_t i = 0; i < modules.size(); ++i)
    fitK[i] = fewestFitting(i);
  auto minK = [&](size_t i, double target) -> int64_t {
    const ModuleInfo &mi = info[i];
    for (int64_t k = std::max(mi.lo, fitK[i]); k <= mi.hi; ++k)
      if (mi.bottleneck[k - mi.lo] <= target)
        return k;
    return -1;
  };
  std::vector<double> targets;
  for (const ModuleInfo &mi : info)
    targets.insert(targets.end(), mi.bottleneck.begin(), mi.bottleneck.end());
  targets.push_back(kInf); // Every module at its fewest fitting stages.
  llvm::sort(targets);
  targets.erase(std::unique(targets.begin(), targets.end()), targets.end());
  // One level index for every module: a module with fewer levels takes
  // its level 0 (StageCuts::cut). The index means different cuts in
  // different modules (a roomier table in one, a taper in another), so
  // modules' levels are paired index by index, not in every combination.
  int64_t levels = 1;
  for (const ModuleInfo &mi : info)
    levels = std::max(levels, mi.levels());
  std::vector<std::vector<int64_t>> proposed;
  std::set<std::vector<int64_t>> proposedSet;
  for (int64_t level = 0; level < levels; ++level)
    for (double target : targets) {
      Candidate c;
      c.level = level;
      int64_t gpus = 0;
      for (size_t i = 0; i < modules.size(); ++i) {
        int64_t k = minK(i, target);
        if (k < 0)
          break;
        gpus += k * info[i].gpus;
        c.stages.push_back(k);
      }
      if (c.stages.size() != modules.size() || gpus > res.gpuBudget)
        continue;
      if (level == 0 && proposedSet.insert(c.stages).second)
        proposed.push_back(c.stages);
      if (!sameAsLevelZero(c))
        consider(c);
    }
  considerMoreStages(proposed);
  if (!best || !best->fits)
    considerMisses();
  if (!best) {
    Candidate c;
    int64_t gpus = 0;
    for (size_t i = 0; i < modules.size(); ++i) {
      c.stages.push_back(info[i].lo);
      gpus += info[i].lo * info[i].gpus;
    }
    if (gpus <= res.gpuBudget)
      consider(c);
  }
}

/// Without a fitting candidate within the budget, the closest miss (the
/// memory check reports what does not fit): the fewest stages of each
/// module for every bottleneck target of the fastest cuts, as if nothing
/// were checked, each cut where nothing fits for the least memory.
void Allocator::considerMisses() {
  std::vector<std::vector<double>> loose(modules.size());
  std::vector<double> targets;
  for (size_t i = 0; i < modules.size(); ++i) {
    const ModuleInfo &mi = info[i];
    if (mi.cuts) {
      std::vector<double> all = minMaxBottlenecks(mi.balance, mi.hi);
      loose[i].assign(all.begin() + (mi.lo - 1), all.end());
    } else {
      loose[i] = mi.bottleneck;
    }
    targets.insert(targets.end(), loose[i].begin(), loose[i].end());
  }
  llvm::sort(targets);
  targets.erase(std::unique(targets.begin(), targets.end()), targets.end());
  for (double target : targets) {
    Candidate c;
    int64_t gpus = 0;
    for (size_t i = 0; i < modules.size(); ++i) {
      const ModuleInfo &mi = info[i];
      int64_t k = mi.lo;
      while (k < mi.hi && loose[i][k - mi.lo] > target)
        ++k;
      gpus += k * mi.gpus;
      c.stages.push_back(k);
    }
    if (gpus <= res.gpuBudget)
      consider(c);
  }
}

/// Encoders colocated: one stage count shared by every encoder (and equal
/// GPUs per stage); each count is partitioned jointly and paired with every
/// LLM stage count that fits, except where its bottleneck alone rules the
/// pairing out (outclassed).
bool Allocator::chooseColocated() {
  int64_t gEnc = info[encoders[0]].gpus, loEnc = 1,
          hiEnc = std::numeric_limits<int64_t>::max();
  for (size_t e : encoders) {
    if (info[e].gpus != gEnc)
      return false;
    loEnc = std::max(loEnc, info[e].lo);
    hiEnc = std::min(hiEnc, info[e].hi);
  }
  if (loEnc > hiEnc)
    return false;
  int64_t llmLo = 0, llmHi = 0, gLlm = 0;
  if (llm >= 0) {
    fillBottlenecks(llm);
    llmLo = info[llm].lo;
    llmHi = info[llm].hi;
    gLlm = info[llm].gpus;
  }
  // Encoders partitioned jointly (MinMax) or individually (Uniform,
  // Explicit); under Explicit the MinMax fallbacks balance against the
  // explicit encoders' loads. With a memory model the joint cut is priced
  // twice: the fastest, and the one whose largest stage needs the least
  // memory, which fits where any cut of that stage count does (memory adds
  // up by layer; below kColocatedExactWork, where the joint search is
  // exact) and holds more microbatches in flight.
  std::vector<std::vector<double>> jointWeights, jointBytes;
  bool checkMemory = res.memoryCapacity > 0;
  for (size_t e : encoders)
    if (!info[e].useExplicit && !info[e].useUniform) {
      jointWeights.push_back(info[e].balance);
      jointBytes.push_back(layerBytes(modules[e]));
      checkMemory &= !modules[e].memory.empty();
    }
  checkMemory &= !jointWeights.empty();
  for (int64_t kEnc = loEnc; kEnc <= hiEnc; ++kEnc) {
    int64_t encGpus = kEnc * gEnc;
    if (encGpus + llmLo * gLlm > res.gpuBudget)
      break;
    // The other encoders' per-stage loads and bytes; a last stage after
    // the first holds each encoder's extra.
    std::vector<double> bg(kEnc, 0.0), bgBytes(kEnc, 0.0);
    Candidate base;
    base.colocated.resize(encoders.size());
    base.colocatedToFit.assign(encoders.size(), false);
    for (size_t a = 0; a < encoders.size(); ++a) {
      const PipelineModule &m = modules[encoders[a]];
      if (kEnc > 1)
        bgBytes[kEnc - 1] += m.lastStageExtra.total();
      const ModuleInfo &mi = info[encoders[a]];
      if (!mi.useExplicit && !mi.useUniform)
        continue;
      base.colocated[a] = mi.sizes(m, kEnc);
      std::vector<double> l = stageLoads(mi.balance, base.colocated[a]);
      std::vector<double> b =
          m.memory.empty() ? std::vector<double>(kEnc, 0.0)
                           : stageLoads(layerBytes(m), base.colocated[a]);
      for (int64_t i = 0; i < kEnc; ++i) {
        bg[i] += l[i];
        bgBytes[i] += b[i];
      }
    }
    std::vector<std::vector<std::vector<int64_t>>> joint = {
        colocatedImpl(jointWeights, kEnc, bg, kColocatedExactWork)};
    if (checkMemory) {
      std::vector<std::vector<int64_t>> least =
          colocatedImpl(jointBytes, kEnc, bgBytes, kColocatedExactWork);
      if (least != joint[0])
        joint.push_back(std::move(least));
    }
    for (const std::vector<std::vector<int64_t>> &js : joint) {
      Candidate c = base;
      for (size_t a = 0, j = 0; a < encoders.size(); ++a)
        if (c.colocated[a].empty()) {
          c.colocated[a] = js[j];
          c.colocatedToFit[a] = js[j] != joint[0][j];
          ++j;
        }
      c.stages.assign(modules.size(), kEnc);
      if (llm < 0) {
        consider(c);
        continue;
      }
      for (int64_t level = 0; level < info[llm].levels(); ++level)
        for (int64_t k = llmLo; k <= llmHi; ++k) {
          if (encGpus + k * gLlm > res.gpuBudget)
            break;
          c.stages[llm] = k;
          c.level = level;
          if (!sameAsLevelZero(c) && !outclassed(c))
            consider(c);
        }
    }
  }
  return best.has_value();
}

/// Marks the stages of the chosen plan's modules whose cut memory moved
/// off their fastest, for --explain.
void Allocator::markCutsToFit() {
  if (!best)
    return;
  size_t at = 0;
  for (size_t i = 0; i < modules.size(); ++i) {
    const PipelineModule &m = modules[i];
    int64_t k = best->stagesPerModule[i];
    const ModuleInfo &mi = info[i];
    bool moved = false;
    // Moved for memory only where the fastest cut, the others held, does
    // not fit or caps one of the module's stages: a cut proposed for memory
    // (a taper) or found by the search may also win on the bottleneck's
    // weight gradient.
    if (mi.cuts && mi.cuts->checked() && !(colocated() && !m.isLLM)) {
      std::vector<int64_t> fastest = mi.cuts->fastest(k);
      if (sizesOf(bestCandidate, i) != fastest) {
        Candidate fastestCut = bestCandidate;
        fastestCut.searched.resize(modules.size());
        fastestCut.searched[i] = fastest;
        PipelinePlan plan = build(fastestCut, kInf);
        moved =
            !plan.fits || llvm::any_of(plan.stages, [&](const StagePlan &s) {
              return s.module == m.name && s.bwd > 0 && s.memory.wanted > 0 &&
                     s.memory.capped();
            });
      }
    }
    if (colocated() && !m.isLLM)
      moved = bestCandidate
                  .colocatedToFit[llvm::find(encoders, i) - encoders.begin()];
    for (int64_t s = 0; s < k; ++s)
      best->stages[at + s].cutToFit = moved;
    at += static_cast<size_t>(k);
  }
}

bool Allocator::sameAsLevelZero(const Candidate &c) const {
  if (c.level == 0)
    return false;
  for (size_t i = 0; i < modules.size(); ++i)
    if (!(colocated() && !modules[i].isLLM) &&
        info[i].sizes(modules[i], c.stages[i], c.level) !=
            info[i].sizes(modules[i], c.stages[i]))
      return false;
  return true;
}

std::vector<int64_t> Allocator::sizesOf(const Candidate &c, size_t i) const {
  if (colocated() && !modules[i].isLLM)
    return c.colocated[llvm::find(encoders, i) - encoders.begin()];
  if (i < c.searched.size() && !c.searched[i].empty())
    return c.searched[i];
  return info[i].sizes(modules[i], c.stages[i], c.level);
}

/// Prices a candidate and keeps it if it is the best so far.
void Allocator::consider(const Candidate &c) {
  // A fitting best bounds what a candidate needs to be priced exactly:
  // one estimated slower cannot win (a non-fitting best loses to any
  // fitting candidate, whatever its estimate).
  double bound = pipelined() && bestKey && !std::get<0>(*bestKey)
                     ? std::get<2>(*bestKey)
                     : std::numeric_limits<double>::infinity();
  PipelinePlan plan = build(c, bound);
  if (c.searched.empty() &&
      pricedKeys.insert({c.stages, c.colocated, c.level}).second)
    priced.push_back({plan.balanceIterationTime, anyCapped(plan.paths), c});
  std::vector<int64_t> encoderStages;
  for (size_t e : encoders)
    encoderStages.push_back(c.stages[e]);
  int64_t llmStages = llm >= 0 ? c.stages[llm] : 0;
  // With one microbatch every choice ties on the path's total work: the
  // fewest GPUs win.
  double estimate = pipelined() ? plan.balanceIterationTime : 0.0;
  double miss = plan.fits ? 0.0 : worstMemoryRatio(plan, res.memoryCapacity);
  Key key{!plan.fits, miss, estimate, plan.gpus, -llmStages, encoderStages};
  // A cut the search found, or a raised stage count, wins a tie only on
  // the key's later terms (beatBy), not by rounding.
  bool searchedTie = (!c.searched.empty() || c.raised) && bestKey &&
                     plan.fits && !std::get<0>(*bestKey) &&
                     estimate >= beatBy(c);
  if (!bestKey || (key < *bestKey && !searchedTie)) {
    bestKey = std::move(key);
    best = std::move(plan);
    bestCandidate = c;
    // A winner's balanced estimate is exact (at most the bound).
    best->iterationTime = estimateIterationTime(best->paths, res.microbatches);
  }
}

std::optional<PipelinePlan>
mllm::plan::planPipeline(const std::vector<PipelineModule> &modules,
                         Layout layout, Objective objective,
                         const PipelineResources &resources) {
  if (layout == Layout::Chain)
    return planChain(modules, objective, resources);
  return Allocator(modules, layout, objective, resources).run();
}

std::optional<PipelinePlan>
mllm::plan::planPipeline(const std::vector<PipelineModule> &modules,
                         Layout layout, Objective objective, int64_t gpuBudget,
                         int64_t microbatches) {
  PipelineResources res;
  res.gpuBudget = gpuBudget;
  res.microbatches = microbatches;
  return planPipeline(modules, layout, objective, res);
}
