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

/// Bytes of one GPU of a stage. `activations` and `sends` are one
/// microbatch's: what its backward saves, and the activation the stage sent
/// on, whose buffer waits until the gradient coming back proves it arrived
/// (docs/runtime.md, "When a send's buffer is free"); both are held once per
/// microbatch in flight. `transit`: the other message buffers live at once
/// (stageMessages).
struct StageMemory {
  double weights = 0, grads = 0, optimizer = 0, activations = 0;
  /// What 1F1B's warm-up wants in flight, and what the memory allows
  /// (capInFlight); equal unless the stage is capped.
  int64_t wanted = 0, inFlight = 0;
  double sends = 0, transit = 0;
  /// Per microbatch, with a backward: the gradients the stage sends back to
  /// predecessors that run a backward (setMessageTerms), of which `transit`
  /// holds two; 0 without. capInFlightAfter holds more where a predecessor
  /// holds more microbatches.
  double gradientBack = 0;

  /// The MiB-rounded terms, as recorded and as the schedule reads them.
  /// Each is rounded up on its own: the static memory plan sizes the
  /// weights and saved activations by them, and its messages exactly.
  int64_t staticMiB() const;
  int64_t activationMiB() const { return toMiB(activations); }
  int64_t sendMiB() const { return toMiB(sends); }
  int64_t transitMiB() const { return toMiB(transit); }
  /// What each microbatch in flight adds.
  int64_t perMicrobatchMiB() const { return activationMiB() + sendMiB(); }
  /// staticMiB + perMicrobatchMiB x inFlight, in bytes.
  double total() const;
  bool capped() const { return inFlight < wanted; }
  /// Whether the stage fits `capacity` bytes with `inFlight` microbatches.
  bool fits(double capacity) const;
  /// Another part's stage on the same GPUs (colocated encoders, a chain
  /// stage): terms add, and the larger warm-up wins.
  void add(const StageMemory &other);
  /// The stage as mllm.stage records it: each byte term rounded up to whole
  /// MiB. A GPU that several stages share holds the sum of their records
  /// (the schedule generator adds them up), so the planner adds these.
  StageMemory recorded() const;
};

/// StageMemory's message terms.
struct StageMessages {
  double sends = 0, transit = 0;
};
/// The messages one GPU of a stage holds when `received` bytes come in and
/// `sent` bytes go out per microbatch (0: no predecessor, no successor);
/// `backward`: the stage runs one. A stage with a backward holds each
/// activation it sends until the gradient comes back (`sends`), and at its
/// peak besides the gradient it received and two gradients it sent, or (the
/// last stage) the activation it received and two gradients it sent (more
/// behind a predecessor holding more microbatches: capInFlightAfter). A
/// stage without one holds the activation it received and, as nothing comes
/// back, three of its sends (the runtime's window). The generator's
/// schedules under the runtime's release rules hold no more at their peaks,
/// but for the links docs/plan-format.md ("Ranks and memory") names.
StageMessages stageMessages(bool backward, double received, double sent);

/// Sets `memory`'s message terms to stageMessages' for a GPU that runs one
/// program, with a backward if it saves activations. Colocated encoders'
/// stage s and a chain stage are one program each (FromIR's layouts): with
/// one backward (if any of their parts trains) and one message out,
/// holding every encoder's output, freed when the gradient comes back.
/// So their terms are one stage's, receiving and sending the sums.
/// `gradientsBack`: of `received`, the bytes whose senders run a backward
/// and so get a gradient back (`gradientBack`, if this stage has one).
void setMessageTerms(StageMemory &memory, double received, double sent,
                     double gradientsBack);

/// Memory-aware 1F1B: `memory.wanted` microbatches, or as many as fit in
/// `capacity` bytes (floor((capacity - static) / per microbatch) on the
/// MiB-rounded terms, the schedule generator's arithmetic), at least one.
/// Without activations or capacity nothing is capped.
void capInFlight(StageMemory &memory, double capacity);

/// The gradients a stage with a backward holds sent at its peak when the
/// predecessors it sends them to hold up to `predecessorInFlight`
/// microbatches and it holds `inFlight`: a predecessor takes gradient m in
/// its backward of m and only then sends the activation that proves it
/// arrived, m + its in-flight count later, which this stage takes after
/// sending predecessorInFlight - inFlight + 1 gradients from m on. At least
/// the two stageMessages counts (1F1B: in flight one more upstream).
int64_t sentGradientsHeld(int64_t inFlight, int64_t predecessorInFlight);

/// The microbatches in flight of the predecessors a stage sends gradients
/// to (those with a backward); 0 and 0: none.
struct PredecessorsInFlight {
  int64_t fewest = 0, most = 0;
  void add(int64_t inFlight);
};

/// capInFlight for a stage whose message terms setMessageTerms set (and
/// whose `gradientBack` counts only what goes to `predecessors`): the fewer
/// microbatches it holds, the more sent gradients (sentGradientsHeld behind
/// the one holding most), which leaves room for fewer, so its transit and
/// cap are found together. It runs with no more than the fewest a
/// predecessor holds (the generator carries a smaller warm-up downstream),
/// or fewer, its share of a capped stage's (WarmupShare, Warmup.h): then it
/// holds one more gradient sent per microbatch fewer, which this does not count
/// (a microbatch fewer frees its saved activations, which for a transformer
/// stage outweigh one gradient message); the static memory plan of every
/// program is checked against its GPU (ArenaFit) either way.
/// Call once per setMessageTerms.
void capInFlightAfter(StageMemory &memory, double capacity,
                      PredecessorsInFlight predecessors);

} // namespace mllm::plan

#endif // MLLM_PLAN_MEMORY_H
