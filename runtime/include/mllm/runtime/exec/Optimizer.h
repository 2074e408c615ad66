//===- Optimizer.h - the plan's optimizer over a set of parameters -*- C++
//-*-===//
//
// AdamW, Adam or SGD (the plan's train section) over the trainable
// parameters a process holds: the whole model in the one-process run, a
// stage's in a parallel one. It owns the moments (exp_avg, exp_avg_sq) that
// checkpoints save under `optim.NAME.*`.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_EXEC_OPTIMIZER_H
#define MLLM_RUNTIME_EXEC_OPTIMIZER_H

#include "mllm/runtime/Plan.h"
#include "mllm/runtime/cpu/Layer.h"

#include <string>
#include <vector>

namespace mllm::runtime::exec {

class Optimizer {
public:
  struct Slot {
    cpu::Param<float> *param;
    std::string name;
    std::vector<float> m, v; ///< Empty for SGD.
  };

  explicit Optimizer(const PlanTrain &settings) : settings(settings) {}
  /// Adds a parameter; ignored unless it trains (has a gradient buffer) or
  /// was added before (a tied weight reached twice).
  void add(cpu::Param<float> *param, llvm::StringRef name);
  /// Zeroes the gradients before an iteration's accumulation.
  void zeroGrads();
  /// Updates every parameter from its gradient; `stepNumber` is 1-based.
  void step(int64_t stepNumber);

  /// Whether the optimizer keeps moments (Adam and AdamW).
  bool hasMoments() const { return settings.optimizer != "sgd"; }
  std::vector<Slot> &slots() { return all; }
  const std::vector<Slot> &slots() const { return all; }

private:
  PlanTrain settings;
  std::vector<Slot> all;
};

} // namespace mllm::runtime::exec

#endif // MLLM_RUNTIME_EXEC_OPTIMIZER_H
