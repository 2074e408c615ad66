//===- Optimizer.cpp - the plan's optimizer over a set of parameters ------===//
#include "mllm/runtime/exec/Optimizer.h"

#include "mllm/kernels/cpu/Optimizer.h"

#include "llvm/ADT/STLExtras.h"

#include <algorithm>

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::exec;

void Optimizer::add(cpu::Param<float> *param, llvm::StringRef name) {
  if (!param->trainable || param->grad.data.empty())
    return;
  if (llvm::any_of(all, [&](const Slot &s) { return s.param == param; }))
    return;
  size_t n = hasMoments() ? param->value.data.size() : 0;
  all.push_back({param, name.str(), std::vector<float>(n, 0.0f),
                 std::vector<float>(n, 0.0f)});
}

void Optimizer::zeroGrads() {
  for (Slot &s : all)
    std::fill(s.param->grad.data.begin(), s.param->grad.data.end(), 0.0f);
}

void Optimizer::step(int64_t stepNumber) {
  kernels::cpu::AdamConfig config;
  config.lr = settings.lr;
  config.weightDecay = settings.weightDecay;
  for (Slot &s : all) {
    cpu::Param<float> &p = *s.param;
    int64_t n = static_cast<int64_t>(p.value.data.size());
    if (settings.optimizer == "adamw")
      kernels::cpu::adamwStep(p.value.ptr(), p.grad.ptr(), s.m.data(),
                              s.v.data(), n, stepNumber, config);
    else if (settings.optimizer == "adam")
      kernels::cpu::adamStep(p.value.ptr(), p.grad.ptr(), s.m.data(),
                             s.v.data(), n, stepNumber, config);
    else
      kernels::cpu::sgdStep(p.value.ptr(), p.grad.ptr(), n, settings.lr,
                            settings.weightDecay);
  }
}
