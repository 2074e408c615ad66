//===- Measure.h - measured per-layer times of a plan's model ---*- C++ -*-===//
//
// What `mllm-run --profile` writes: every layer group's forward, input-
// gradient and weight-gradient time per layer and microbatch, measured on
// this machine with the plan's microbatch geometry. The measurement builds
// the model with every group trainable (a frozen layer's weight gradient
// still has a price when another plan trains it) and times each layer's
// three calls on microbatch 0, after a warm-up, taking the median of the
// repetitions. The compiler's profile format (docs/cost-model.md) turns them
// into the cost model's times: mllmc --profile plans with what was measured.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_EXEC_MEASURE_H
#define MLLM_RUNTIME_EXEC_MEASURE_H

#include "mllm/runtime/Plan.h"

#include "llvm/Support/Error.h"

#include <string>
#include <vector>

namespace mllm::runtime::exec {

struct LayerTiming {
  std::string part;  ///< "vision", "llm"; a projector's group: its encoder.
  std::string group; ///< "blocks", "vision_projector.mlp".
  std::string kind;
  LayerConfig config;
  /// The workload as the compiler's cost model counts it (profile keys).
  int64_t tokens = 0, attentionSpan = 0;
  double forwardMs = 0, weightGradMs = 0, inputGradMs = 0;
};

/// Times every layer group of `plan` (`repeats` >= 1 timed calls each).
llvm::Expected<std::vector<LayerTiming>>
measureLayers(const Plan &plan, uint64_t seed, int repeats);

} // namespace mllm::runtime::exec

#endif // MLLM_RUNTIME_EXEC_MEASURE_H
