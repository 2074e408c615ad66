//===- Allocate.cpp - stage counts for every part, and the estimate -------===//
//
// The allocation of a GPU budget between the encoders and the LLM
// (planPipeline): choose every part's stage count, for encoders in
// parallel by sweeping bottleneck targets, for colocated encoders by trying
// every shared encoder stage count; partition with the min-max tables; and
// estimate the multimodal 1F1B iteration (estimateIterationTime).
//
//===----------------------------------------------------------------------===//
#include "PartitionImpl.h"

#include "llvm/ADT/STLExtras.h"

#include <optional>
#include <tuple>

using namespace mllm::plan;
using namespace mllm::plan::detail;

namespace {

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
  std::optional<MinMaxTable> table;

  std::vector<int64_t> sizes(const PipelineModule &m, int64_t k) const {
    if (useExplicit)
      return m.explicitStages;
    if (useUniform)
      return uniformSizes(n, k);
    if (table)
      return table->reconstruct(k);
    return MinMaxTable(balance, k).reconstruct(k);
  }
};

std::vector<StagePlan> stagePlans(const PipelineModule &m,
                                  llvm::ArrayRef<LayerTime> times,
                                  llvm::ArrayRef<int64_t> sizes) {
  std::vector<StagePlan> out;
  int64_t at = 0;
  for (int64_t s : sizes) {
    StagePlan sp;
    sp.module = m.name;
    sp.firstLayer = at;
    sp.numLayers = s;
    for (int64_t l = at; l < at + s; ++l) {
      sp.fwd += times[l].fwd;
      sp.bwd += times[l].bwd;
    }
    out.push_back(std::move(sp));
    at += s;
  }
  return out;
}

/// One run of planPipeline.
class Allocator {
public:
  Allocator(const std::vector<PipelineModule> &modules, Layout layout,
            Objective objective, int64_t gpuBudget, int64_t microbatches)
      : modules(modules), layout(layout), objective(objective),
        gpuBudget(gpuBudget), microbatches(microbatches), info(modules.size()),
        chosen(modules.size(), 0) {}

  std::optional<PipelinePlan> run() {
    if (modules.empty() || microbatches < 1 || !readModules())
      return std::nullopt;
    bool ok = layout == Layout::Parallel || encoders.empty()
                  ? chooseParallel()
                  : chooseColocated();
    if (!ok)
      return std::nullopt;
    return build();
  }

private:
  const std::vector<PipelineModule> &modules;
  Layout layout;
  Objective objective;
  int64_t gpuBudget, microbatches;
  int64_t llm = -1;
  std::vector<size_t> encoders;
  std::vector<ModuleInfo> info;
  /// The choice: stage count per module (colocated encoders share one).
  std::vector<int64_t> chosen;
  std::vector<std::vector<int64_t>> colocatedSizes; ///< Per encoder, if any.

  bool pipelined() const { return microbatches > 1; }
  bool readModules();
  void fillBottlenecks(size_t i);
  bool chooseParallel();
  bool chooseColocated();
  PipelinePlan build();
  std::vector<std::vector<StagePlan>>
  makePaths(const std::vector<std::vector<StagePlan>> &per) const;
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
    if (bal.size() != m.layers.size())
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
    mi.table.emplace(mi.balance, mi.hi);
    for (int64_t k = mi.lo; k <= mi.hi; ++k)
      mi.bottleneck.push_back(mi.table->bottleneck(k));
    return;
  }
  for (int64_t k = mi.lo; k <= mi.hi; ++k)
    mi.bottleneck.push_back(maxOf(stageLoads(mi.balance, mi.sizes(m, k))));
}

/// Encoders in parallel: for a bottleneck target the fewest GPUs come from
/// each module's smallest stage count meeting it; that assignment is
/// unique, so the other tie-breaks never fire. Sweep targets upwards.
bool Allocator::chooseParallel() {
  for (size_t i = 0; i < modules.size(); ++i)
    fillBottlenecks(i);
  auto minK = [&](size_t i, double target) -> int64_t {
    const ModuleInfo &mi = info[i];
    for (int64_t k = mi.lo; k <= mi.hi; ++k)
      if (mi.bottleneck[k - mi.lo] <= target)
        return k;
    return -1;
  };
  std::vector<double> targets;
  if (pipelined()) {
    for (const ModuleInfo &mi : info)
      targets.insert(targets.end(), mi.bottleneck.begin(), mi.bottleneck.end());
    llvm::sort(targets);
    targets.erase(std::unique(targets.begin(), targets.end()), targets.end());
  } else {
    targets.push_back(kInf); // Everything ties: fewest GPUs.
  }
  for (double target : targets) {
    int64_t gpus = 0;
    bool ok = true;
    for (size_t i = 0; i < modules.size() && ok; ++i) {
      int64_t k = minK(i, target);
      if (k < 0) {
        ok = false;
      } else {
        gpus += k * info[i].gpus;
        chosen[i] = k;
      }
    }
    if (ok && gpus <= gpuBudget)
      return true;
  }
  return false;
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
  // explicit encoders' loads.
  std::vector<std::vector<double>> jointWeights, allWeights;
  for (size_t e : encoders) {
    if (!info[e].useExplicit && !info[e].useUniform)
      jointWeights.push_back(info[e].balance);
    allWeights.push_back(info[e].balance);
  }

  using Key = std::tuple<double, int64_t, int64_t, int64_t>;
  std::optional<Key> bestKey;
  for (int64_t kEnc = loEnc; kEnc <= hiEnc; ++kEnc) {
    int64_t encGpus = kEnc * gEnc;
    if (encGpus + llmLo * gLlm > gpuBudget)
      break;
    std::vector<double> bg(kEnc, 0.0);
    std::vector<std::vector<int64_t>> sizes(encoders.size());
    for (size_t a = 0; a < encoders.size(); ++a) {
      size_t e = encoders[a];
      if (!info[e].useExplicit && !info[e].useUniform)
        continue;
      sizes[a] = info[e].sizes(modules[e], kEnc);
      std::vector<double> l = stageLoads(info[e].balance, sizes[a]);
      for (int64_t i = 0; i < kEnc; ++i)
        bg[i] += l[i];
    }
    std::vector<std::vector<int64_t>> js =
        colocatedImpl(jointWeights, kEnc, bg, kColocatedExactWork);
    for (size_t a = 0, j = 0; a < encoders.size(); ++a)
      if (sizes[a].empty())
        sizes[a] = js[j++];
    double encB = maxOf(colocatedLoads(allWeights, sizes, kEnc, {}));
    auto consider = [&](int64_t kLlm, double llmB) {
      int64_t gpus = encGpus + kLlm * gLlm;
      if (gpus > gpuBudget)
        return;
      double b = pipelined() ? std::max(encB, llmB) : 0.0;
      Key key{b, gpus, -kLlm, kEnc};
      if (!bestKey || key < *bestKey) {
        bestKey = key;
        colocatedSizes = sizes;
        for (size_t e : encoders)
          chosen[e] = kEnc;
        if (llm >= 0)
          chosen[llm] = kLlm;
      }
    };
    if (llm < 0)
      consider(0, 0.0);
    for (int64_t k = llmLo; llm >= 0 && k <= llmHi; ++k)
      consider(k, info[llm].bottleneck[k - llmLo]);
  }
  return bestKey.has_value();
}

/// The paths from each encoder through the LLM (one path of merged stages
/// when the encoders are colocated).
std::vector<std::vector<StagePlan>>
Allocator::makePaths(const std::vector<std::vector<StagePlan>> &per) const {
  std::vector<std::vector<StagePlan>> paths;
  std::vector<StagePlan> tail;
  if (llm >= 0)
    tail = per[llm];
  if (encoders.empty()) {
    paths.push_back(tail);
  } else if (layout == Layout::Parallel) {
    for (size_t e : encoders) {
      std::vector<StagePlan> path = per[e];
      path.insert(path.end(), tail.begin(), tail.end());
      paths.push_back(std::move(path));
    }
  } else {
    std::vector<StagePlan> path;
    for (int64_t s = 0; s < chosen[encoders[0]]; ++s) {
      StagePlan merged;
      for (size_t e : encoders) {
        const StagePlan &sp = per[e][s];
        merged.module += (merged.module.empty() ? "" : "+") + sp.module;
        merged.numLayers += sp.numLayers;
        merged.fwd += sp.fwd;
        merged.bwd += sp.bwd;
      }
      path.push_back(std::move(merged));
    }
    path.insert(path.end(), tail.begin(), tail.end());
    paths.push_back(std::move(path));
  }
  return paths;
}

/// The plan of the chosen stage counts: per-module stages (real and balance
/// times), paths, bottleneck, estimate and GPUs.
PipelinePlan Allocator::build() {
  PipelinePlan plan;
  std::vector<std::vector<StagePlan>> real(modules.size()),
      balanced(modules.size());
  for (size_t i = 0; i < modules.size(); ++i) {
    const PipelineModule &m = modules[i];
    std::vector<int64_t> sizes;
    if (layout == Layout::Colocated && !m.isLLM) {
      size_t a = llvm::find(encoders, i) - encoders.begin();
      sizes = colocatedSizes[a];
    } else {
      sizes = info[i].sizes(m, chosen[i]);
    }
    real[i] = stagePlans(m, m.layers, sizes);
    balanced[i] = stagePlans(
        m, m.balanceLayers.empty() ? m.layers : m.balanceLayers, sizes);
    plan.stages.insert(plan.stages.end(), real[i].begin(), real[i].end());
    plan.stagesPerModule.push_back(chosen[i]);
  }
  plan.paths = makePaths(real);
  for (const std::vector<StagePlan> &path : plan.paths)
    for (const StagePlan &s : path)
      plan.bottleneck = std::max(plan.bottleneck, s.fwd + s.bwd);
  plan.iterationTime = estimateIterationTime(plan.paths, microbatches);
  plan.balanceIterationTime =
      estimateIterationTime(makePaths(balanced), microbatches);
  if (layout == Layout::Colocated && !encoders.empty()) {
    plan.gpus = chosen[encoders[0]] * info[encoders[0]].gpus;
    if (llm >= 0)
      plan.gpus += chosen[llm] * info[llm].gpus;
  } else {
    for (size_t i = 0; i < modules.size(); ++i)
      plan.gpus += chosen[i] * info[i].gpus;
  }
  return plan;
}

} // namespace

double mllm::plan::estimateIterationTime(
    const std::vector<std::vector<StagePlan>> &paths, int64_t microbatches) {
  double bottleneck = 0, longest = 0;
  bool any = false;
  for (const std::vector<StagePlan> &path : paths) {
    double sum = 0;
    for (const StagePlan &s : path) {
      double t = s.fwd + s.bwd;
      sum += t;
      bottleneck = std::max(bottleneck, t);
      any = true;
    }
    longest = std::max(longest, sum);
  }
  if (!any)
    return 0;
  return longest - bottleneck + static_cast<double>(microbatches) * bottleneck;
}

std::optional<PipelinePlan>
mllm::plan::planPipeline(const std::vector<PipelineModule> &modules,
                         Layout layout, Objective objective, int64_t gpuBudget,
                         int64_t microbatches) {
  return Allocator(modules, layout, objective, gpuBudget, microbatches).run();
}
