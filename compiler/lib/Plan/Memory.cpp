//===- Memory.cpp - what one GPU of a pipeline stage holds ----------------===//
#include "mllm/Plan/Memory.h"

#include <algorithm>
#include <cmath>

using namespace mllm::plan;

int64_t mllm::plan::toMiB(double bytes) {
  return static_cast<int64_t>(std::ceil(bytes / kMiB - 1e-9));
}

int64_t mllm::plan::inFlightDepth(bool isLLM, int64_t index, int64_t partStages,
                                  int64_t llmStages, int64_t microbatches) {
  int64_t depth = partStages - index;
  if (!isLLM)
    depth += llmStages;
  return std::max<int64_t>(1, std::min(depth, microbatches));
}

int64_t StageMemory::staticMiB() const {
  return toMiB(weights) + toMiB(grads) + toMiB(optimizer) + transitMiB();
}

double StageMemory::total() const {
  return static_cast<double>(staticMiB() + perMicrobatchMiB() * inFlight) *
         kMiB;
}

bool StageMemory::fits(double capacity) const {
  return capacity <= 0 || total() <= capacity;
}

void StageMemory::add(const StageMemory &other) {
  weights += other.weights;
  grads += other.grads;
  optimizer += other.optimizer;
  activations += other.activations;
  sends += other.sends;
  transit += other.transit;
  gradientBack += other.gradientBack;
  wanted = std::max(wanted, other.wanted);
  inFlight = std::max(inFlight, other.inFlight);
}

StageMemory StageMemory::recorded() const {
  StageMemory r = *this;
  for (double *term : {&r.weights, &r.grads, &r.optimizer, &r.activations,
                       &r.sends, &r.transit})
    *term = static_cast<double>(toMiB(*term)) * kMiB;
  return r;
}

StageMessages mllm::plan::stageMessages(bool backward, double received,
                                        double sent) {
  if (!backward)
    return {0, received + 3 * sent};
  if (sent <= 0) // The last stage.
    return {0, 3 * received};
  return {sent, sent + 2 * received};
}

void mllm::plan::setMessageTerms(StageMemory &memory, double received,
                                 double sent, double gradientsBack) {
  bool backward = memory.activations > 0;
  StageMessages m = stageMessages(backward, received, sent);
  memory.sends = m.sends;
  memory.transit = m.transit;
  memory.gradientBack = backward ? gradientsBack : 0;
}

void mllm::plan::capInFlight(StageMemory &memory, double capacity) {
  memory.inFlight = memory.wanted;
  int64_t act = memory.perMicrobatchMiB();
  if (capacity <= 0 || act <= 0)
    return;
  // The generator's integer arithmetic on the recorded MiB (FromIR.cpp,
  // Generate.cpp): room / activations, at least one.
  auto room =
      static_cast<int64_t>(capacity) -
      static_cast<int64_t>(static_cast<double>(memory.staticMiB()) * kMiB);
  auto actBytes = static_cast<int64_t>(static_cast<double>(act) * kMiB);
  int64_t fit = room > 0 ? room / actBytes : 0;
  memory.inFlight = std::max<int64_t>(1, std::min(memory.wanted, fit));
}

int64_t mllm::plan::sentGradientsHeld(int64_t inFlight,
                                      int64_t predecessorInFlight) {
  return std::max<int64_t>(2, predecessorInFlight - inFlight + 1);
}

void PredecessorsInFlight::add(int64_t inFlight) {
  fewest = fewest == 0 ? inFlight : std::min(fewest, inFlight);
  most = std::max(most, inFlight);
}

void mllm::plan::capInFlightAfter(StageMemory &memory, double capacity,
                                  PredecessorsInFlight predecessors) {
  capInFlight(memory, capacity);
  if (memory.gradientBack <= 0 || predecessors.most <= 0)
    return;
  // Each round holds more gradients and so no more microbatches: it ends
  // within predecessors.most rounds.
  double twoHeld = memory.transit;
  for (int64_t held = 2;;) {
    int64_t runs = std::min(memory.inFlight, predecessors.fewest);
    int64_t next = sentGradientsHeld(runs, predecessors.most);
    if (next <= held)
      return;
    held = next;
    memory.transit =
        twoHeld + static_cast<double>(held - 2) * memory.gradientBack;
    capInFlight(memory, capacity);
  }
}
