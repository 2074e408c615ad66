//===- Timeline.cpp - what the trace and the SVG timeline share -----------===//
#include "Timeline.h"

#include <algorithm>

using namespace mllm::sched;

std::string mllm::sched::rankRange(llvm::ArrayRef<int64_t> ranks) {
  if (ranks.empty())
    return "no ranks";
  int64_t lo = *std::min_element(ranks.begin(), ranks.end());
  int64_t hi = *std::max_element(ranks.begin(), ranks.end());
  if (ranks.size() == 1)
    return "rank " + std::to_string(lo);
  std::string range = std::to_string(lo) + "-" + std::to_string(hi);
  if (hi - lo + 1 == static_cast<int64_t>(ranks.size()))
    return "ranks " + range;
  return std::to_string(ranks.size()) + " ranks in " + range;
}

namespace mllm::sched::detail {

/// The short label of an event: F3, Bd3, Bw3, send, recv, allreduce, ...
std::string eventName(const Event &e) {
  std::string mb = e.microbatch >= 0 ? std::to_string(e.microbatch) : "";
  switch (e.kind) {
  case ActionKind::Forward:
    return "F" + mb;
  case ActionKind::BackwardInput:
    return "Bd" + mb;
  case ActionKind::BackwardWeight:
    return "Bw" + mb;
  case ActionKind::SendActivation:
  case ActionKind::SendGrad:
    return "send";
  case ActionKind::RecvActivation:
  case ActionKind::RecvGrad:
    return "recv";
  case ActionKind::AllReduceGrads:
    return "allreduce";
  case ActionKind::OptimizerStep:
    return "optimizer";
  }
  return "?";
}

const char *category(ActionKind kind) {
  switch (kind) {
  case ActionKind::Forward:
    return "forward";
  case ActionKind::BackwardInput:
    return "backward-input";
  case ActionKind::BackwardWeight:
    return "backward-weight";
  case ActionKind::OptimizerStep:
    return "optimizer";
  case ActionKind::AllReduceGrads:
    return "collective";
  default:
    return "p2p";
  }
}

std::string displayName(const PipelineGraph &graph, int s) {
  if (s < static_cast<int>(graph.stages.size()) &&
      !graph.stages[s].name.empty())
    return graph.stages[s].name;
  return "stage " + std::to_string(s);
}

/// The ranks of every stage and their number over all stages.
std::vector<std::vector<int64_t>> ranksOfStages(const PipelineGraph &graph,
                                                int numStages, int64_t &total) {
  std::vector<std::vector<int64_t>> ranks(numStages);
  total = 0;
  for (int s = 0; s < numStages; ++s) {
    if (s < static_cast<int>(graph.stages.size()))
      ranks[s] = graph.stages[s].rankLayout().ranks();
    total += static_cast<int64_t>(ranks[s].size());
  }
  return ranks;
}

} // namespace mllm::sched::detail
