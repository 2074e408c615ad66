//===- Frozen.h - which layers need which gradients -------------*- C++ -*-===//
//
// Frozen-aware backward (cornstarch-brief §B.4): a layer computes weight
// gradients iff it trains, and input gradients iff some trainable parameter
// lies strictly upstream of it on any path (the first trainable layer of a
// path needs none). Recompute happens only where some backward runs.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_PLAN_FROZEN_H
#define MLLM_PLAN_FROZEN_H

#include <cstdint>
#include <string>
#include <vector>

namespace mllm::plan {

/// One node of the module DAG (an encoder, a projector or the LLM) as a
/// chain of layers in execution order.
struct ModuleChain {
  std::string name;
  std::vector<bool> trainable; ///< Per layer.
  std::vector<bool> recompute; ///< Per layer: recompute requested.
  /// Indices of modules feeding this one (encoder -> projector -> LLM).
  std::vector<int> predecessors;
};

struct GradFlags {
  std::vector<bool> needsWeightGrad;
  std::vector<bool> needsInputGrad;
  std::vector<bool> recomputes; ///< Recompute requested and a backward runs.
};

/// Flags for every module, in the same order. `modules` must be listed in
/// topological order (predecessors first).
std::vector<GradFlags> analyzeFrozen(const std::vector<ModuleChain> &modules);

} // namespace mllm::plan

#endif // MLLM_PLAN_FROZEN_H
