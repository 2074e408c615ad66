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
#include "PartitionImpl.h"

#include "llvm/ADT/STLExtras.h"

#include <optional>
#include <tuple>

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

std::vector<int64_t> uniformSizes(int64_t n, int64_t k) {
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
    markCutsToFit();
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
  std::optional<PipelinePlan> best;
  std::optional<Key> bestKey;
  int64_t bestLevel = 0;
  std::vector<bool> bestColocatedToFit;

  bool pipelined() const { return res.microbatches > 1; }
  bool colocated() const {
    return layout == Layout::Colocated && !encoders.empty();
  }
  bool readModules();
  void fillBottlenecks(size_t i);
  int64_t fewestFitting(size_t i) const;
  void chooseParallel();
  void considerMisses();
  void markCutsToFit();
  /// Whether `c` (level > 0) cuts every module as level 0 does: priced.
  bool sameAsLevelZero(const Candidate &c) const;
  bool chooseColocated();
  void consider(const Candidate &c);
  /// The plan of `c`; its estimates may be lower bounds where they exceed
  /// `bound` (estimateIterationTime's atMost).
  PipelinePlan build(const Candidate &c, double bound) const;
  std::vector<std::vector<StagePlan>>
  makePaths(const std::vector<std::vector<StagePlan>> &per,
            const Candidate &c) const;
  void placeStages(std::vector<std::vector<StagePlan>> &per,
                   const Candidate &c) const;
};

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
    for (const LayerTime &t : bal)
      mi.balance.push_back(t.total());
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
      if (c.stages.size() == modules.size() && gpus <= res.gpuBudget &&
          !sameAsLevelZero(c))
        consider(c);
    }
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
/// LLM stage count that fits.
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
          if (!sameAsLevelZero(c))
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
    bool moved = mi.cuts && mi.cuts->checked() &&
                 mi.sizes(m, k, bestLevel) != mi.cuts->fastest(k);
    if (colocated() && !m.isLLM)
      moved = bestColocatedToFit[llvm::find(encoders, i) - encoders.begin()];
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

/// Prices a candidate and keeps it if it is the best so far.
void Allocator::consider(const Candidate &c) {
  // A fitting best bounds what a candidate needs to be priced exactly:
  // one estimated slower cannot win (a non-fitting best loses to any
  // fitting candidate, whatever its estimate).
  double bound = pipelined() && bestKey && !std::get<0>(*bestKey)
                     ? std::get<2>(*bestKey)
                     : std::numeric_limits<double>::infinity();
  PipelinePlan plan = build(c, bound);
  std::vector<int64_t> encoderStages;
  for (size_t e : encoders)
    encoderStages.push_back(c.stages[e]);
  int64_t llmStages = llm >= 0 ? c.stages[llm] : 0;
  // With one microbatch every choice ties on the path's total work: the
  // fewest GPUs win.
  double estimate = pipelined() ? plan.balanceIterationTime : 0.0;
  double miss = plan.fits ? 0.0 : worstMemoryRatio(plan, res.memoryCapacity);
  Key key{!plan.fits, miss, estimate, plan.gpus, -llmStages, encoderStages};
  if (!bestKey || key < *bestKey) {
    bestKey = std::move(key);
    best = std::move(plan);
    bestLevel = c.level;
    bestColocatedToFit = c.colocatedToFit;
    // A winner's balanced estimate is exact (at most the bound).
    best->iterationTime = estimateIterationTime(best->paths, res.microbatches);
  }
}

/// The paths from each encoder through the LLM (one path of merged stages
/// when the encoders are colocated).
std::vector<std::vector<StagePlan>>
Allocator::makePaths(const std::vector<std::vector<StagePlan>> &per,
                     const Candidate &c) const {
  std::vector<std::vector<StagePlan>> paths;
  std::vector<StagePlan> tail;
  if (llm >= 0)
    tail = per[llm];
  if (encoders.empty()) {
    paths.push_back(tail);
  } else if (!colocated()) {
    for (size_t e : encoders) {
      std::vector<StagePlan> path = per[e];
      path.insert(path.end(), tail.begin(), tail.end());
      paths.push_back(std::move(path));
    }
  } else {
    std::vector<StagePlan> path;
    PredecessorsInFlight before; // Stage s - 1, with a backward.
    for (int64_t s = 0; s < c.stages[encoders[0]]; ++s) {
      StagePlan merged;
      double received = 0, sent = 0, back = 0;
      for (size_t e : encoders) {
        const StagePlan &sp = per[e][s];
        merged.module += (merged.module.empty() ? "" : "+") + sp.module;
        // The merged stages' layers count on in stage order (as a chain
        // stage's do): estimateIterationTime tells stages apart by module
        // and first layer.
        merged.firstLayer += sp.firstLayer;
        merged.numLayers += sp.numLayers;
        merged.fwd += sp.fwd;
        merged.bwd += sp.bwd;
        merged.bwdWeight += sp.bwdWeight;
        merged.sendTime += sp.sendTime;
        merged.memory.add(sp.memory.recorded());
        const PipelineModule &m = modules[e];
        received += m.receivedBytes(s == 0);
        sent += m.sentBytes(s + 1 == c.stages[e]);
        // Gradients go back only to an encoder's stage with a backward.
        if (s > 0 && per[e][s - 1].memory.activations > 0)
          back += m.receivedBytes(false);
      }
      setMessageTerms(merged.memory, received, sent, back);
      capInFlightAfter(merged.memory, res.memoryCapacity, before);
      before = {};
      if (merged.memory.activations > 0)
        before.add(merged.memory.inFlight);
      path.push_back(std::move(merged));
    }
    path.insert(path.end(), tail.begin(), tail.end());
    paths.push_back(std::move(path));
  }
  return paths;
}

/// In-flight wishes and transfer times of every stage: ranks go stage by
/// stage in pipeline order (colocated encoders share stage s), a stage's
/// dp replicas consecutive; a stage sends to the next stage of its path
/// over the intra-node link when their first ranks share a node.
void Allocator::placeStages(std::vector<std::vector<StagePlan>> &per,
                            const Candidate &c) const {
  int64_t llmStages = llm >= 0 ? c.stages[llm] : 0;
  int64_t next = 0;
  std::vector<std::vector<int64_t>> first(modules.size());
  std::vector<int64_t> colocatedFirst;
  for (size_t i = 0; i < modules.size(); ++i) {
    const PipelineModule &m = modules[i];
    int64_t count = res.dp * info[i].gpus;
    for (size_t s = 0; s < per[i].size(); ++s) {
      StagePlan &sp = per[i][s];
      sp.memory.wanted = inFlightDepth(m.isLLM, static_cast<int64_t>(s),
                                       static_cast<int64_t>(per[i].size()),
                                       llmStages, res.microbatches);
      if (!colocated() || m.isLLM) {
        first[i].push_back(next);
        next += count;
      } else {
        if (s >= colocatedFirst.size()) {
          colocatedFirst.push_back(next);
          next += count;
        }
        first[i].push_back(colocatedFirst[s]);
      }
    }
  }
  auto link = [&](int64_t a, int64_t b, double bytes) {
    bool same =
        res.gpusPerNode <= 0 || a / res.gpusPerNode == b / res.gpusPerNode;
    double bw = same ? res.intraNodeBandwidth : res.interNodeBandwidth;
    return bw > 0 ? bytes / bw : 0.0;
  };
  int64_t llmFirst = llm >= 0 && !first[llm].empty() ? first[llm][0] : 0;
  for (size_t i = 0; i < modules.size(); ++i)
    for (size_t s = 0; s < per[i].size(); ++s) {
      bool last = s + 1 == per[i].size();
      if (last && modules[i].isLLM)
        continue;
      int64_t to = last ? llmFirst : first[i][s + 1];
      per[i][s].sendTime = link(first[i][s], to, modules[i].sentBytes(last));
    }
}

/// The plan of a candidate: per-module stages (real and balance times,
/// memory, transfers), paths, bottleneck, estimates and GPUs.
PipelinePlan Allocator::build(const Candidate &c, double bound) const {
  PipelinePlan plan;
  std::vector<std::vector<StagePlan>> real(modules.size()),
      balanced(modules.size());
  for (size_t i = 0; i < modules.size(); ++i) {
    const PipelineModule &m = modules[i];
    std::vector<int64_t> sizes;
    if (colocated() && !m.isLLM) {
      size_t a = llvm::find(encoders, i) - encoders.begin();
      sizes = c.colocated[a];
    } else {
      sizes = info[i].sizes(m, c.stages[i], c.level);
    }
    real[i] = stagePlans(m, m.layers, sizes);
    balanced[i] = stagePlans(
        m, m.balanceLayers.empty() ? m.layers : m.balanceLayers, sizes);
  }
  placeStages(real, c);
  // Caps in pipeline order: a stage holds more sent gradients where the
  // stage it sends them to holds more microbatches (capInFlightAfter).
  // Colocated encoders are capped on their shared GPUs (makePaths).
  auto capAfter = [&](std::vector<StagePlan> &stages,
                      PredecessorsInFlight before) {
    for (StagePlan &sp : stages) {
      capInFlightAfter(sp.memory, res.memoryCapacity, before);
      before = {};
      if (sp.memory.activations > 0)
        before.add(sp.memory.inFlight);
    }
  };
  if (!colocated())
    for (size_t e : encoders)
      capAfter(real[e], {});
  plan.paths = makePaths(real, c);
  if (llm >= 0) {
    // The LLM's first stage sends gradients to every encoder's last stage
    // with a backward.
    auto llmStages = static_cast<size_t>(c.stages[llm]);
    PredecessorsInFlight before;
    for (const std::vector<StagePlan> &path : plan.paths)
      if (path.size() > llmStages) {
        const StageMemory &last = path[path.size() - llmStages - 1].memory;
        if (last.activations > 0)
          before.add(last.inFlight);
      }
    double back = 0;
    for (size_t e : encoders)
      if (!real[e].empty() && real[e].back().memory.activations > 0)
        back += modules[e].outputBytes;
    const PipelineModule &lm = modules[llm];
    setMessageTerms(real[llm].front().memory, lm.receivedBytes(true),
                    lm.sentBytes(c.stages[llm] == 1), back);
    capAfter(real[llm], before);
    for (std::vector<StagePlan> &path : plan.paths)
      for (size_t s = 0; s < llmStages; ++s)
        path[path.size() - llmStages + s].memory = real[llm][s].memory;
  }
  for (size_t i = 0; i < modules.size(); ++i) {
    for (size_t s = 0; s < real[i].size(); ++s) {
      balanced[i][s].memory = real[i][s].memory;
      balanced[i][s].sendTime = real[i][s].sendTime;
    }
    plan.stagesPerModule.push_back(c.stages[i]);
  }
  // Colocated stages are capped (and checked) on their shared GPUs.
  std::vector<std::vector<StagePlan>> balancedPaths = makePaths(balanced, c);
  for (size_t p = 0; p < plan.paths.size(); ++p)
    for (size_t s = 0; s < plan.paths[p].size(); ++s)
      balancedPaths[p][s].memory = plan.paths[p][s].memory;
  for (size_t i = 0; i < modules.size(); ++i)
    plan.stages.insert(plan.stages.end(), real[i].begin(), real[i].end());
  for (const std::vector<StagePlan> &path : plan.paths)
    for (const StagePlan &s : path) {
      plan.bottleneck = std::max(plan.bottleneck, s.fwd + s.bwd);
      plan.fits &= s.memory.wanted == 0 || s.memory.fits(res.memoryCapacity);
    }
  // The balanced estimate chooses; the real one is only reported, for the
  // chosen plan (consider() prices it exactly).
  plan.balanceIterationTime =
      estimateIterationTime(balancedPaths, res.microbatches, bound);
  if (colocated()) {
    plan.gpus = c.stages[encoders[0]] * info[encoders[0]].gpus;
    if (llm >= 0)
      plan.gpus += c.stages[llm] * info[llm].gpus;
  } else {
    for (size_t i = 0; i < modules.size(); ++i)
      plan.gpus += c.stages[i] * info[i].gpus;
  }
  return plan;
}

} // namespace

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
