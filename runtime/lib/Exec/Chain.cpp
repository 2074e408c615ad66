//===- Chain.cpp - the steps of one model part, run per microbatch --------===//
#include "mllm/runtime/exec/Chain.h"

#include "llvm/Support/ErrorHandling.h"

using namespace mllm::runtime;
using namespace mllm::runtime::exec;

bool Chain::hasBackward(size_t first, size_t last) const {
  for (size_t i = first; i < last; ++i)
    if (steps[i]->weightGrad() || steps[i]->inputGrad())
      return true;
  return false;
}

void Chain::forward(int64_t mb, MicrobatchContext &ctx, size_t first,
                    size_t last, const Activation &in, Activation &out) {
  std::vector<StepState> &st = states[mb];
  st.resize(steps.size());
  bool keep = hasBackward(first, last) && !ctx.forwardOnly();
  Activation cur, next;
  const Activation *input = &in;
  for (size_t i = first; i < last; ++i) {
    Step &step = *steps[i];
    std::unique_ptr<cpu::LayerState> state = step.forward(ctx, *input, next);
    if (keep) {
      if (step.recompute())
        st[i].input = *input; // The state is rebuilt before the backward.
      else
        st[i].state = std::move(state);
    }
    cur = std::move(next);
    next = Activation();
    input = &cur;
  }
  if (!keep) {
    release(mb);
  }
  out = std::move(cur);
}

void Chain::rebuild(int64_t mb, MicrobatchContext &ctx, size_t i) {
  StepState &s = states[mb][i];
  if (s.state || !steps[i]->recompute())
    return;
  Activation scratch;
  s.state = steps[i]->forward(ctx, s.input, scratch);
}

void Chain::propagate(int64_t mb, MicrobatchContext &ctx, size_t stopAt,
                      size_t last, const Activation &dOut, Activation *dIn) {
  std::vector<StepState> &st = states[mb];
  if (st.size() != steps.size())
    llvm::report_fatal_error("mllm runtime: a backward of microbatch " +
                             llvm::Twine(mb) + " of '" + partName +
                             "' without its forward");
  Activation grad = dOut, next;
  for (size_t i = last; i-- > stopAt;) {
    StepState &s = st[i];
    s.outGrad = grad;
    s.haveOutGrad = true;
    bool below = i > stopAt || dIn;
    if (!below || !steps[i]->inputGrad())
      return;
    rebuild(mb, ctx, i);
    steps[i]->backwardInput(ctx, s.state.get(), s.outGrad, next);
    grad = std::move(next);
    next = Activation();
  }
  if (dIn)
    *dIn = std::move(grad);
}

void Chain::backwardInput(int64_t mb, MicrobatchContext &ctx, size_t first,
                          size_t last, const Activation &dOut,
                          Activation &dIn) {
  dIn = Activation();
  propagate(mb, ctx, first, last, dOut, &dIn);
}

void Chain::backwardWeight(int64_t mb, MicrobatchContext &ctx, size_t first,
                           size_t last, const Activation &dOut) {
  size_t lowest = last;
  for (size_t i = first; i < last; ++i)
    if (steps[i]->weightGrad()) {
      lowest = i;
      break;
    }
  if (lowest < last) {
    std::vector<StepState> &st = states[mb];
    // Without a preceding input backward the output gradients are computed
    // here, down to the lowest step with weights.
    if (st.size() != steps.size() || !st[lowest].haveOutGrad)
      propagate(mb, ctx, lowest, last, dOut, nullptr);
    for (size_t i = lowest; i < last; ++i)
      if (steps[i]->weightGrad()) {
        if (!st[i].haveOutGrad)
          llvm::report_fatal_error(
              "mllm runtime: '" + llvm::Twine(steps[i]->name()) +
              "' trains but no gradient reaches it (the plan's frozen "
              "analysis gives a layer above it no input gradient)");
        rebuild(mb, ctx, i);
        steps[i]->backwardWeight(ctx, st[i].state.get(), st[i].outGrad);
      }
  }
  auto it = states.find(mb);
  if (it == states.end())
    return;
  for (size_t i = first; i < last && i < it->second.size(); ++i)
    it->second[i] = StepState();
  bool empty = true;
  for (const StepState &s : it->second)
    empty &= !s.state && s.input.data.empty() && !s.haveOutGrad;
  if (empty)
    states.erase(it);
}
