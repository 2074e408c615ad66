//===- PlanGroups.cpp - the layer groups of a plan agree ------------------===//
#include "mllm/runtime/PlanGroups.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"

#include <vector>

using namespace mllm;
using namespace mllm::runtime;

namespace {

/// One group on the way from a part's input to the loss.
struct OnTheWay {
  PlanGroupRef ref;
  const PlanLayerGroup *group;
  std::string owner; ///< The part or projector name, for messages.
};

std::string layerName(const OnTheWay &g, int64_t layer) {
  std::string name = g.owner + "." + g.group->name;
  if (g.group->count > 1)
    name += "." + std::to_string(layer);
  return name;
}

/// The first layer on `way` (bottom to top) that trains but that a layer
/// above it cuts off from the loss's gradient.
std::optional<PlanGroupIssue> checkGradientReaches(llvm::ArrayRef<OnTheWay> way,
                                                   size_t trainersBelow) {
  // Walking down from the loss, `cut` is the nearest layer above that
  // passes no gradient down.
  std::optional<std::pair<const OnTheWay *, int64_t>> cut;
  for (size_t i = way.size(); i-- > 0;) {
    const OnTheWay &g = way[i];
    for (int64_t layer = g.group->count; layer-- > 0;) {
      if (i < trainersBelow && g.group->weightGrad && cut)
        return PlanGroupIssue{
            g.ref, "'" + layerName(g, layer) +
                       "' trains (weight_grad: true) but no gradient reaches "
                       "it: '" +
                       layerName(*cut->first, cut->second) +
                       "' above it passes none down (input_grad: " +
                       cut->first->group->inputGrad +
                       "); give the layers above a trained one input_grad: "
                       "all, or compile the spec again (mllmc's frozen "
                       "analysis sets both)"};
      if (!g.group->inputGradAt(layer))
        cut = {{&g, layer}};
    }
  }
  return std::nullopt;
}

bool isOneLayerKind(llvm::StringRef kind) {
  return kind == "token_embedding" || kind == "patch_embedding" ||
         kind == "audio_frontend" || kind == "lm_head";
}

} // namespace

std::optional<PlanGroupIssue> mllm::runtime::checkPlanGroups(const Plan &plan) {
  auto each = [&](auto &&fn) -> std::optional<PlanGroupIssue> {
    for (size_t p = 0; p < plan.parts.size(); ++p) {
      const PlanPart &part = plan.parts[p];
      for (size_t g = 0; g < part.groups.size(); ++g)
        if (auto issue = fn(PlanGroupRef{p, false, g}, part.groups[g],
                            part.name, part.frozen))
          return issue;
      if (part.projector)
        for (size_t g = 0; g < part.projector->groups.size(); ++g)
          if (auto issue =
                  fn(PlanGroupRef{p, true, g}, part.projector->groups[g],
                     part.projector->name, part.projector->frozen))
            return issue;
    }
    return std::nullopt;
  };
  if (auto issue = each([](PlanGroupRef ref, const PlanLayerGroup &g,
                           const std::string &owner,
                           bool frozen) -> std::optional<PlanGroupIssue> {
        if (isOneLayerKind(g.kind) && g.count != 1)
          return PlanGroupIssue{
              ref, "group '" + owner + "." + g.name + "': a '" + g.kind +
                       "' group has one layer, not " + std::to_string(g.count)};
        if (frozen && g.weightGrad)
          return PlanGroupIssue{
              ref, "group '" + owner + "." + g.name + "' of the frozen '" +
                       owner + "' has weight_grad: true; a frozen part " +
                       "computes no weight gradients"};
        return std::nullopt;
      }))
    return issue;

  // A part that is not frozen trains: a frozen analysis that computes no
  // weight gradient for it contradicts its 'frozen' (an edited copy).
  auto untrained = [](PlanGroupRef ref, const std::string &owner, bool frozen,
                      const std::vector<PlanLayerGroup> &groups)
      -> std::optional<PlanGroupIssue> {
    if (frozen || groups.empty() ||
        llvm::any_of(groups,
                     [](const PlanLayerGroup &g) { return g.weightGrad; }))
      return std::nullopt;
    return PlanGroupIssue{
        ref, "'" + owner +
                 "' is not frozen, but none of its groups computes weight "
                 "gradients (weight_grad): its 'frozen' and its groups' flags "
                 "come from one frozen analysis; compile the spec again"};
  };
  for (size_t p = 0; p < plan.parts.size(); ++p) {
    const PlanPart &part = plan.parts[p];
    if (auto issue =
            untrained({p, false, 0}, part.name, part.frozen, part.groups))
      return issue;
    if (part.projector)
      if (auto issue =
              untrained({p, true, 0}, part.projector->name,
                        part.projector->frozen, part.projector->groups))
        return issue;
  }

  const PlanPart *llm = nullptr;
  for (const PlanPart &p : plan.parts)
    if (p.isLLM)
      llm = &p;
  // The LLM's layers after its token embedding: where the encoders' tokens
  // join, and their gradient leaves.
  std::vector<OnTheWay> llmWay, afterEmbedding;
  if (llm) {
    size_t index = llm - plan.parts.data();
    bool joined = false;
    for (size_t g = 0; g < llm->groups.size(); ++g) {
      OnTheWay w{{index, false, g}, &llm->groups[g], llm->name};
      llmWay.push_back(w);
      if (joined)
        afterEmbedding.push_back(w);
      joined |= llm->groups[g].kind == "token_embedding";
    }
  }

  for (size_t p = 0; p < plan.parts.size(); ++p) {
    const PlanPart &part = plan.parts[p];
    if (part.isLLM) {
      if (auto issue = checkGradientReaches(llmWay, llmWay.size()))
        return issue;
      continue;
    }
    std::vector<OnTheWay> way;
    for (size_t g = 0; g < part.groups.size(); ++g)
      if (part.groups[g].kind != "attention_pool") // Not on the way.
        way.push_back({{p, false, g}, &part.groups[g], part.name});
    if (part.projector) {
      // Each projector layer takes what the one below gives; the first
      // the encoder's tokens, `merge` of them concatenated.
      int64_t width = 0;
      if (__builtin_mul_overflow(part.width, part.projector->merge, &width))
        width = INT64_MAX;
      for (size_t g = 0; g < part.projector->groups.size(); ++g) {
        const PlanLayerGroup &group = part.projector->groups[g];
        const LayerConfig &c = group.config;
        // Past its first layer a group takes what its own layers give.
        if (group.count > 1 && c.in > 0 && c.out > 0 && c.in != c.out)
          return PlanGroupIssue{
              {p, true, g},
              "projector group '" + part.projector->name + "." + group.name +
                  "' has " + std::to_string(group.count) +
                  " layers taking tokens " + std::to_string(c.in) +
                  " wide and giving " + std::to_string(c.out) +
                  ": layers after the first would take " +
                  std::to_string(c.out) + "; give it one layer, or in = out"};
        if (c.in > 0 && c.in != width)
          return PlanGroupIssue{
              {p, true, g},
              "projector group '" + part.projector->name + "." + group.name +
                  "' takes tokens " + std::to_string(c.in) + " wide, but " +
                  (g > 0 ? "the group below gives " + std::to_string(width)
                   : part.projector->merge == 1
                       ? "the encoder '" + part.name + "' gives " +
                             std::to_string(width)
                       : "the encoder '" + part.name + "' gives " +
                             std::to_string(part.width) + ", " +
                             std::to_string(part.projector->merge) +
                             " tokens merged: " + std::to_string(width))};
        if (c.out > 0)
          width = c.out;
        way.push_back({{p, true, g}, &group, part.projector->name});
      }
      if (llm && width != llm->width && !part.projector->groups.empty())
        return PlanGroupIssue{{p, true, part.projector->groups.size() - 1},
                              "projector '" + part.projector->name +
                                  "' gives tokens " + std::to_string(width) +
                                  " wide, but the LLM '" + llm->name + "' is " +
                                  std::to_string(llm->width) + " wide"};
    }
    size_t own = way.size();
    way.insert(way.end(), afterEmbedding.begin(), afterEmbedding.end());
    if (auto issue = checkGradientReaches(way, own))
      return issue;
  }
  return std::nullopt;
}
