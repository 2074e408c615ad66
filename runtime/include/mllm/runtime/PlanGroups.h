//===- PlanGroups.h - the layer groups of a plan agree ----------*- C++ -*-===//
//
// What must hold between the layer groups of a plan's parts for any
// backend to run them, checked by the plan reader so that a hand-edited
// plan is an error at the group it is about rather than a failure inside a
// layer: the widths a projector hands on, the gradients the frozen analysis
// gives each group, and the layers that exist once per part.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_PLANGROUPS_H
#define MLLM_RUNTIME_PLANGROUPS_H

#include "mllm/runtime/Plan.h"

#include <optional>
#include <string>

namespace mllm::runtime {

/// A layer group of a plan: `parts[part].groups[group]`, or with
/// `projector` set `parts[part].projector->groups[group]`.
struct PlanGroupRef {
  size_t part = 0;
  bool projector = false;
  size_t group = 0;
};

/// The first disagreement found, and the group it is about.
struct PlanGroupIssue {
  PlanGroupRef where;
  std::string message;
};

/// Checks, in this order, every part's groups:
///  - an input layer (token/patch embedding, audio front end) and an LM head
///    are one layer each;
///  - a frozen part's or projector's groups compute no weight gradient;
///  - a projector takes its encoder's width and gives the LLM's, each group
///    taking what the one below gives;
///  - every layer that computes a weight gradient gets one: every layer
///    above it, up to the loss, passes the gradient down (input_grad). An
///    encoder's gradient comes through its projector and the LLM's layers
///    after the token embedding (where the encoders' tokens join).
std::optional<PlanGroupIssue> checkPlanGroups(const Plan &plan);

} // namespace mllm::runtime

#endif // MLLM_RUNTIME_PLANGROUPS_H
