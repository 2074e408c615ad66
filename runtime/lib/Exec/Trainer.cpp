//===- Trainer.cpp - training a plan's model in one process ---------------===//
#include "mllm/runtime/exec/Trainer.h"

#include "mllm/kernels/cpu/Optimizer.h"

#include <algorithm>
#include <chrono>

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::exec;

Trainer::Trainer(Model &model, DataSource &data, uint64_t seed)
    : model(model), data(data), seed(seed) {
  for (const NamedParam &p : model.params)
    if (p.param->trainable && !p.param->grad.data.empty()) {
      size_t n = p.param->value.data.size();
      moments.push_back({p.param, p.name, std::vector<float>(n, 0.0f),
                         std::vector<float>(n, 0.0f)});
    }
}

void Trainer::runMicrobatch(int64_t replica, int64_t mb) {
  const Plan &plan = model.plan();
  int64_t id = replica * plan.data.microbatches + mb;
  MicrobatchData batch = data.get(done, replica, mb);
  MicrobatchContext ctx;
  ctx.data = &batch;
  size_t encoders = model.encoders.size();
  // Forward in pipeline order: the encoders, then the LLM (its fan-in
  // reads their tokens).
  Activation none, out;
  for (size_t e = 0; e < encoders; ++e) {
    Chain &chain = *model.chains[e];
    chain.forward(id, ctx, 0, chain.size(), none, out);
    ctx.encoderOut[chain.part()] = std::move(out);
    out = Activation();
  }
  Chain &llm = model.llm();
  llm.forward(id, ctx, 0, llm.size(), none, out);
  stepLoss += ctx.loss;
  // Backward in reverse: the LLM's input backward hands the encoders their
  // gradients at the fan-in.
  Activation dIn;
  for (size_t c = encoders + 1; c-- > 0;) {
    Chain &chain = *model.chains[c];
    if (!chain.hasBackward(0, chain.size()))
      continue;
    const Activation *dOut = &none;
    if (c < encoders) {
      auto it = ctx.encoderGrad.find(chain.part());
      if (it == ctx.encoderGrad.end())
        continue;
      dOut = &it->second;
    }
    chain.backwardInput(id, ctx, 0, chain.size(), *dOut, dIn);
    chain.backwardWeight(id, ctx, 0, chain.size(), *dOut);
  }
}

void Trainer::optimizerStep() {
  const PlanTrain &t = model.plan().train;
  kernels::cpu::AdamConfig config;
  config.lr = t.lr;
  config.weightDecay = t.weightDecay;
  int64_t stepNumber = done + 1;
  for (Moments &m : moments) {
    cpu::Param<float> &p = *m.param;
    int64_t n = static_cast<int64_t>(p.value.data.size());
    if (t.optimizer == "adamw")
      kernels::cpu::adamwStep(p.value.ptr(), p.grad.ptr(), m.m.data(),
                              m.v.data(), n, stepNumber, config);
    else if (t.optimizer == "adam")
      kernels::cpu::adamStep(p.value.ptr(), p.grad.ptr(), m.m.data(),
                             m.v.data(), n, stepNumber, config);
    else
      kernels::cpu::sgdStep(p.value.ptr(), p.grad.ptr(), n, t.lr,
                            t.weightDecay);
  }
}

StepStats Trainer::step() {
  auto start = std::chrono::steady_clock::now();
  for (Moments &m : moments)
    std::fill(m.param->grad.data.begin(), m.param->grad.data.end(), 0.0f);
  stepLoss = 0;
  const Plan &plan = model.plan();
  for (int64_t d = 0; d < plan.job.dp; ++d)
    for (int64_t mb = 0; mb < plan.data.microbatches; ++mb)
      runMicrobatch(d, mb);
  optimizerStep();
  ++done;
  StepStats stats;
  stats.step = done;
  stats.loss = stepLoss;
  stats.tokens =
      plan.job.dp * plan.data.microbatches * model.sequences * model.seqLen;
  stats.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  return stats;
}
