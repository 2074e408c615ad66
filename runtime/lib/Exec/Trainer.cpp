//===- Trainer.cpp - training a plan's model in one process ---------------===//
#include "mllm/runtime/exec/Trainer.h"

#include "mllm/runtime/exec/Checkpoint.h"

#include <algorithm>
#include <chrono>

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::exec;

sched::Program exec::oneProcessProgram(int64_t count, bool trains) {
  sched::Program program;
  auto add = [&](sched::ActionKind kind, int64_t mb) {
    sched::Action a;
    a.kind = kind;
    a.microbatch = static_cast<int32_t>(mb);
    program.actions.push_back(a);
  };
  for (int64_t id = 0; id < count; ++id) {
    add(sched::ActionKind::Forward, id);
    if (trains) {
      add(sched::ActionKind::BackwardInput, id);
      add(sched::ActionKind::BackwardWeight, id);
    }
  }
  if (trains)
    add(sched::ActionKind::OptimizerStep, -1);
  program.maxInFlight = 1;
  return program;
}

sched::PipelineGraph exec::oneProcessGraph(int64_t count, bool trains) {
  sched::PipelineGraph graph;
  sched::StageInfo stage;
  stage.name = "one_process";
  stage.part = "model";
  stage.isLLM = true;
  stage.needsInputGrad = stage.needsWeightGrad = trains;
  graph.stages.push_back(stage);
  graph.microbatches = count;
  return graph;
}

Trainer::Trainer(Model &model, DataSource &data, uint64_t seed)
    : model(model), data(data), seed(seed), optimizer(model.plan().train) {
  for (const NamedParam &p : model.params)
    optimizer.add(p.param, p.name);
  const Plan &plan = model.plan();
  int64_t count = plan.job.dp * plan.data.microbatches;
  oneGraph = oneProcessGraph(count, trainableCount() > 0);
  onePrograms.push_back(oneProcessProgram(count, trainableCount() > 0));
}

Trainer::~Trainer() = default;

sched::MemoryPlan Trainer::memoryPlan() const {
  // What this process holds for the whole iteration, in its fp32: the
  // parameters, the trainable ones' gradients and the optimizer's moments.
  // Activations live in the layers and are not planned here.
  sched::StageSizes sizes;
  for (const NamedParam &p : model.params)
    sizes.weights +=
        p.param->value.numel() * static_cast<int64_t>(sizeof(float));
  for (const Optimizer::Slot &slot : optimizer.slots()) {
    int64_t bytes =
        slot.param->value.numel() * static_cast<int64_t>(sizeof(float));
    sizes.grads += bytes;
    if (optimizer.hasMoments())
      sizes.optimizer += 2 * bytes;
  }
  return sched::planMemory(onePrograms.front(), sizes);
}

llvm::Error Trainer::makeError(const llvm::Twine &message) const {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message.str());
}

llvm::Error Trainer::forward(int64_t id) {
  const Plan &plan = model.plan();
  auto got =
      data.get(done, id / plan.data.microbatches, id % plan.data.microbatches);
  if (!got)
    return got.takeError();
  auto m = std::make_unique<InFlight>();
  m->batch = std::move(*got);
  m->ctx.data = &m->batch;
  MicrobatchContext &ctx = m->ctx;
  // In pipeline order: the encoders, then the LLM (its fan-in reads their
  // tokens).
  Activation none, out;
  size_t encoders = model.encoders.size();
  for (size_t e = 0; e < encoders; ++e) {
    Chain &chain = *model.chains[e];
    chain.forward(id, ctx, 0, chain.size(), none, out);
    ctx.encoderOut[chain.part()] = std::move(out);
    out = Activation();
  }
  Chain &llm = model.llm();
  llm.forward(id, ctx, 0, llm.size(), none, out);
  stepLoss += ctx.loss;
  if (trainableCount() > 0)
    inFlight[id] = std::move(m);
  return llvm::Error::success();
}

void Trainer::eachBackward(
    InFlight &m, llvm::function_ref<void(Chain &, const Activation &)> f) {
  // In reverse: the LLM's input backward hands the encoders their gradients
  // at the fan-in. An encoder that got none has no backward.
  size_t encoders = model.encoders.size();
  Activation none;
  for (size_t c = encoders + 1; c-- > 0;) {
    Chain &chain = *model.chains[c];
    if (!chain.hasBackward(0, chain.size()))
      continue;
    const Activation *dOut = &none;
    if (c < encoders) {
      auto it = m.ctx.encoderGrad.find(chain.part());
      if (it == m.ctx.encoderGrad.end())
        continue;
      dOut = &it->second;
    }
    f(chain, *dOut);
  }
}

void Trainer::backwardInput(InFlight &m, int64_t id) {
  Activation dIn;
  eachBackward(m, [&](Chain &chain, const Activation &dOut) {
    chain.backwardInput(id, m.ctx, 0, chain.size(), dOut, dIn);
  });
}

void Trainer::backwardWeight(InFlight &m, int64_t id) {
  // Each chain's weight gradients from what its input backward kept; no
  // chain reads another's, so the order of the chains does not matter.
  eachBackward(m, [&](Chain &chain, const Activation &dOut) {
    chain.backwardWeight(id, m.ctx, 0, chain.size(), dOut);
  });
}

llvm::Error Trainer::runAction(size_t index) {
  const sched::Action &a = onePrograms.front().actions[index];
  switch (a.kind) {
  case sched::ActionKind::Forward:
    return forward(a.microbatch);
  case sched::ActionKind::BackwardInput:
  case sched::ActionKind::BackwardWeight: {
    auto it = inFlight.find(a.microbatch);
    if (it == inFlight.end())
      return makeError("action " + llvm::Twine(index) +
                       ": the backward of microbatch " +
                       llvm::Twine(a.microbatch) + " before its forward");
    if (a.kind == sched::ActionKind::BackwardInput) {
      backwardInput(*it->second, a.microbatch);
    } else {
      backwardWeight(*it->second, a.microbatch);
      inFlight.erase(it);
    }
    return llvm::Error::success();
  }
  case sched::ActionKind::OptimizerStep:
    optimizer.step(done + 1);
    return llvm::Error::success();
  default:
    return makeError("action " + llvm::Twine(index) + " (" +
                     sched::actionMnemonic(a.kind) +
                     ") has no meaning in the one-process run");
  }
}

llvm::Expected<StepStats> Trainer::step() {
  // Asked again after a failure, not interpreted instead.
  if (!driverMade) {
    auto made = makeStepDriver(*this);
    if (!made)
      return made.takeError();
    driver = std::move(*made);
    driverMade = true;
  }
  auto start = std::chrono::steady_clock::now();
  optimizer.zeroGrads();
  stepLoss = 0;
  inFlight.clear();
  if (driver) {
    if (llvm::Error e = driver->runActions(*this))
      return std::move(e);
  } else {
    for (size_t i = 0; i < program().actions.size(); ++i)
      if (llvm::Error e = runAction(i))
        return std::move(e);
  }
  if (trainableCount() == 0)
    optimizer.step(done + 1);
  ++done;
  const Plan &plan = model.plan();
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
  if (llvm::Error e = checkSameData(*restored, data.identity(), path, seed))
    return e;
  done = restored->step;
  resharded = restored->otherPlan;
  return llvm::Error::success();
}
