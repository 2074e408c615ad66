//===- Trainer.cpp - training a plan's model in one process ---------------===//
#include "mllm/runtime/exec/Trainer.h"

#include "mllm/runtime/exec/Checkpoint.h"

#include <algorithm>
#include <chrono>

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::exec;

Trainer::Trainer(Model &model, DataSource &data, uint64_t seed)
    : model(model), data(data), seed(seed), optimizer(model.plan().train) {
  for (const NamedParam &p : model.params)
    optimizer.add(p.param, p.name);
}

llvm::Error Trainer::runMicrobatch(int64_t replica, int64_t mb) {
  const Plan &plan = model.plan();
  int64_t id = replica * plan.data.microbatches + mb;
  auto got = data.get(done, replica, mb);
  if (!got)
    return got.takeError();
  MicrobatchData batch = std::move(*got);
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
  return llvm::Error::success();
}

llvm::Expected<StepStats> Trainer::step() {
  auto start = std::chrono::steady_clock::now();
  optimizer.zeroGrads();
  stepLoss = 0;
  const Plan &plan = model.plan();
  for (int64_t d = 0; d < plan.job.dp; ++d)
    for (int64_t mb = 0; mb < plan.data.microbatches; ++mb)
      if (llvm::Error e = runMicrobatch(d, mb))
        return std::move(e);
  optimizer.step(done + 1);
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

llvm::Error Trainer::save(llvm::StringRef path) const {
  return writeCheckpoint(path, model.plan(), model.params, optimizer,
                         {done, seed, modelSignature(model), data.identity()});
}

llvm::Error Trainer::load(llvm::StringRef path) {
  auto restored = readCheckpoint(path, model.plan(), model.params, optimizer,
                                 modelSignature(model));
  if (!restored)
    return restored.takeError();
  if (llvm::Error e = checkSameData(*restored, data.identity(), path))
    return e;
  done = restored->step;
  resharded = restored->otherPlan;
  return llvm::Error::success();
}
