//===- Measure.cpp - measured per-layer times of a plan's model -----------===//
#include "mllm/runtime/exec/Measure.h"

#include "mllm/runtime/exec/Data.h"
#include "mllm/runtime/exec/Model.h"
#include "mllm/runtime/exec/Steps.h"

#include "llvm/ADT/STLExtras.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <random>

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::exec;

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

/// The plan with every group trainable and no recomputation.
Plan allTrainable(const Plan &plan) {
  Plan copy = plan;
  auto train = [](std::vector<PlanLayerGroup> &groups) {
    for (PlanLayerGroup &g : groups) {
      g.weightGrad = true;
      g.inputGrad = "all";
      g.recompute = false;
    }
  };
  for (PlanPart &p : copy.parts) {
    train(p.groups);
    if (p.projector)
      train(p.projector->groups);
  }
  return copy;
}

} // namespace

llvm::Expected<std::vector<LayerTiming>>
exec::measureLayers(const Plan &plan, uint64_t seed, int repeats) {
  Plan trainable = allTrainable(plan);
  auto built = Model::build(trainable, seed);
  if (!built)
    return built.takeError();
  Model &model = **built;
  SyntheticData data(model, seed);
  auto got = data.get(0, 0, 0);
  if (!got)
    return got.takeError();
  MicrobatchData batch = std::move(*got);
  MicrobatchContext ctx;
  ctx.data = &batch;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);

  // Per (part, group): the times of its layers.
  struct Sum {
    LayerTiming timing;
    std::vector<double> fwd, wgrad, igrad;
  };
  std::vector<Sum> sums;
  std::map<std::pair<std::string, std::string>, size_t> index;

  for (size_t c = 0; c < model.chains.size(); ++c) {
    Chain &chain = *model.chains[c];
    const PlanPart &part = trainable.parts[c];
    Activation in;
    for (size_t i = 0; i < chain.size(); ++i) {
      Step &step = chain.step(i);
      Activation out;
      if (!step.layer()) {
        // Glue (the hand-over to a projector, the fan-in): not a layer of
        // the cost model.
        step.forward(ctx, in, out);
        in = std::move(out);
        continue;
      }
      // The group of this layer: the step's name is PART.GROUP[.I].
      std::string stepName = step.name();
      llvm::StringRef rest = stepName;
      std::string owner = part.name;
      const std::vector<PlanLayerGroup> *groups = &part.groups;
      if (part.projector && rest.consume_front(part.projector->name + ".")) {
        owner = part.projector->name;
        groups = &part.projector->groups;
      } else {
        rest.consume_front(part.name + ".");
      }
      llvm::StringRef groupName = rest.split('.').first;
      const PlanLayerGroup *g = nullptr;
      for (const PlanLayerGroup &x : *groups)
        if (x.name == groupName)
          g = &x;
      // Each repetition: a fresh forward state, then the input backward,
      // then the weight backward on it (as the schedule runs them; a layer
      // may reuse in the weight backward what its input backward kept).
      std::vector<double> fwdT, igradT, wgradT;
      Activation dOut, dIn;
      for (int r = 0; r <= repeats; ++r) {
        auto t0 = Clock::now();
        std::unique_ptr<cpu::LayerState> state = step.forward(ctx, in, out);
        auto t1 = Clock::now();
        if (dOut.shape != out.shape) {
          dOut = Activation(out.shape);
          for (float &v : dOut.data)
            v = 0.01f * normal(rng);
        }
        step.backwardInput(ctx, state.get(), dOut, dIn);
        auto t2 = Clock::now();
        step.backwardWeight(ctx, state.get(), dOut);
        auto t3 = Clock::now();
        if (r == 0)
          continue; // Warm-up.
        auto ms = [](Clock::time_point a, Clock::time_point b) {
          return std::chrono::duration<double, std::milli>(b - a).count();
        };
        fwdT.push_back(ms(t0, t1));
        igradT.push_back(ms(t1, t2));
        wgradT.push_back(ms(t2, t3));
      }
      double fwd = median(fwdT), igrad = median(igradT), wgrad = median(wgradT);
      if (g) {
        std::string group =
            owner == part.name ? g->name : owner + "." + g->name;
        auto [it, fresh] = index.try_emplace({part.name, group}, sums.size());
        if (fresh) {
          Sum s;
          s.timing.part = part.name;
          s.timing.group = group;
          s.timing.kind = g->kind;
          s.timing.config = g->config;
          // The compiler's workload of the group (JobParts.cpp): the
          // part's tokens; a projector sees its input's LLM tokens per
          // item (the merge pads the encoder's).
          s.timing.tokens = part.tokens;
          s.timing.attentionSpan = part.attentionSpan;
          if (owner != part.name) {
            int64_t merge = part.projector ? part.projector->merge : 1;
            const PlanInput *in = plan.data.findInput(part.name);
            int64_t own =
                in ? in->encoderTokensPerItem(merge) : part.attentionSpan;
            int64_t perItem = in ? in->tokens : part.attentionSpan / merge;
            s.timing.tokens = own > 0 ? part.tokens / own * perItem : 0;
            s.timing.attentionSpan = perItem;
          }
          sums.push_back(std::move(s));
        }
        Sum &s = sums[it->second];
        s.fwd.push_back(fwd);
        s.wgrad.push_back(wgrad);
        s.igrad.push_back(igrad);
      }
      if (step.layer()->kind() == "lm_head")
        break; // Its output is the loss.
      in = std::move(out);
    }
    if (c + 1 < model.chains.size())
      ctx.encoderOut[chain.part()] = std::move(in);
  }
  std::vector<LayerTiming> result;
  for (Sum &s : sums) {
    s.timing.forwardMs = median(s.fwd);
    s.timing.weightGradMs = median(s.wgrad);
    s.timing.inputGradMs = median(s.igrad);
    result.push_back(std::move(s.timing));
  }
  return std::move(result);
}
