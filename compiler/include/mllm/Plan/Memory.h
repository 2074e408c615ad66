//===- Memory.h - what one GPU of a pipeline stage holds --------*- C++ -*-===//
//
// One model of memory for every figure: the partitioner's choice of stage
// counts, the iteration estimate, mllm-rank-map's check and record, and the
// schedules (whose generator caps in-flight microbatches with the same
// arithmetic on the same MiB-rounded terms). docs/plan-format.md, "Ranks and
// memory".
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_PLAN_MEMORY_H
#define MLLM_PLAN_MEMORY_H

#include <cstdint>

namespace mllm::plan {

constexpr double kMiB = 1024.0 * 1024.0;
constexpr double kGiB = 1024.0 * kMiB;

/// Bytes rounded up to whole MiB, as mllm.stage records every term.
int64_t toMiB(double bytes);

/// Microbatches a stage holds at the peak of multimodal 1F1B: its warm-up
/// depth (every stage downstream of it to the loss) plus one. LLM stage s of
/// P_llm: P_llm - s; stage s of an encoder of P_e stages: P_e - s + P_llm;
/// at most the microbatch count.
int64_t inFlightDepth(bool isLLM, int64_t index, int64_t partStages,
                      int64_t llmStages, int64_t microbatches);

/// Bytes of one GPU of a stage. `activations` is one microbatch's.
struct StageMemory {
  double weights = 0, grads = 0, optimizer = 0, activations = 0;
  /// What 1F1B's warm-up wants in flight, and what the memory allows
  /// (capInFlight); equal unless the stage is capped.
  int64_t wanted = 0, inFlight = 0;

  /// The MiB-rounded terms, as recorded and as the schedule reads them.
  int64_t staticMiB() const;
  int64_t activationMiB() const { return toMiB(activations); }
  /// staticMiB + activationMiB x inFlight, in bytes.
  double total() const;
  bool capped() const { return inFlight < wanted; }
  /// Whether the stage fits `capacity` bytes with `inFlight` microbatches.
  bool fits(double capacity) const;
  /// Another part's stage on the same GPUs (colocated encoders, a chain
  /// stage): terms add, and the larger warm-up wins.
  void add(const StageMemory &other);
};

/// Memory-aware 1F1B: `memory.wanted` microbatches, or as many as fit in
/// `capacity` bytes (floor((capacity - static) / activations) on the
/// MiB-rounded terms, the schedule generator's arithmetic), at least one.
/// Without activations or capacity nothing is capped.
void capInFlight(StageMemory &memory, double capacity);

} // namespace mllm::plan

#endif // MLLM_PLAN_MEMORY_H
