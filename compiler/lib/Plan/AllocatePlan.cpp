//===- AllocatePlan.cpp - the plan of one candidate -----------------------===//
//
// Allocator::build (Allocator.h): a candidate's stages with their real and
// balance times, memory caps in pipeline order, transfers by placement,
// paths, and the estimate that compares candidates.
//
//===----------------------------------------------------------------------===//
#include "Allocator.h"

#include "llvm/ADT/STLExtras.h"

using namespace mllm::plan;
using namespace mllm::plan::detail;

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
PipelinePlan
Allocator::build(const Candidate &c, double bound,
                 std::vector<std::vector<StagePlan>> *balancedOut) const {
  PipelinePlan plan;
  std::vector<std::vector<StagePlan>> real(modules.size()),
      balanced(modules.size());
  for (size_t i = 0; i < modules.size(); ++i) {
    const PipelineModule &m = modules[i];
    std::vector<int64_t> sizes = sizesOf(c, i);
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
  if (balancedOut)
    *balancedOut = std::move(balancedPaths);
  plan.gpus = gpusOf(c);
  return plan;
}

int64_t Allocator::gpusOf(const Candidate &c) const {
  int64_t gpus = 0;
  if (colocated()) {
    gpus = c.stages[encoders[0]] * info[encoders[0]].gpus;
    if (llm >= 0)
      gpus += c.stages[llm] * info[llm].gpus;
  } else {
    for (size_t i = 0; i < modules.size(); ++i)
      gpus += c.stages[i] * info[i].gpus;
  }
  return gpus;
}
