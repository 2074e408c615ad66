//===- Modules.h - pipeline modules and resources for plan tests -*- C++
//-*-===//
//
// Shared by the partitioner tests that plan small made-up modules.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_TEST_UNIT_PLAN_MODULES_H
#define MLLM_TEST_UNIT_PLAN_MODULES_H

#include "mllm/Plan/Memory.h"
#include "mllm/Plan/Partition.h"

#include <cstdint>
#include <string>
#include <vector>

namespace mllm::plan::test {

/// A module whose layer i takes `times[i]`, split evenly into forward and
/// backward, and holds `gib[i]` GiB of weights.
inline PipelineModule module(std::string name, const std::vector<double> &times,
                             const std::vector<double> &gib, bool llm) {
  PipelineModule m;
  m.name = std::move(name);
  m.isLLM = llm;
  for (size_t i = 0; i < times.size(); ++i) {
    m.layers.push_back({times[i] / 2, times[i] / 2, 0});
    m.memory.push_back({gib[i] * kGiB, 0, 0, 0});
  }
  return m;
}

/// An LLM of `n` layers of one time unit forward and one backward, each
/// holding `weightsGiB` GiB of weights and saving `activationsGiB` GiB per
/// microbatch.
inline PipelineModule llmOf(int n, double weightsGiB, double activationsGiB) {
  PipelineModule m;
  m.name = "llm";
  m.isLLM = true;
  for (int l = 0; l < n; ++l) {
    m.layers.push_back({1, 1, 0});
    m.memory.push_back({weightsGiB * kGiB, 0, 0, activationsGiB * kGiB});
  }
  return m;
}

/// `gpus` GPUs of `capacity` bytes each, running `microbatches`.
inline PipelineResources resources(int64_t gpus, int64_t microbatches,
                                   double capacity) {
  PipelineResources res;
  res.gpuBudget = gpus;
  res.microbatches = microbatches;
  res.memoryCapacity = capacity;
  return res;
}

/// Layers per stage of `plan`, modules in input order.
inline std::vector<int64_t> layersPerStage(const PipelinePlan &plan) {
  std::vector<int64_t> out;
  for (const StagePlan &s : plan.stages)
    out.push_back(s.numLayers);
  return out;
}

} // namespace mllm::plan::test

#endif // MLLM_TEST_UNIT_PLAN_MODULES_H
