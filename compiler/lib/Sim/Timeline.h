//===- Timeline.h - what the trace and the SVG timeline share ---*- C++ -*-===//
#ifndef MLLM_SIM_TIMELINE_H
#define MLLM_SIM_TIMELINE_H

#include "mllm/Sim/Trace.h"

#include <string>
#include <vector>

namespace mllm::sched::detail {

/// The short label of an event: F3, Bd3, Bw3, send, recv, allreduce, ...
std::string eventName(const Event &e);
/// The trace category of an action kind.
const char *category(ActionKind kind);
/// The stage's name, or "stage N".
std::string displayName(const PipelineGraph &graph, int s);
/// The ranks of every stage and their number over all stages.
std::vector<std::vector<int64_t>> ranksOfStages(const PipelineGraph &graph,
                                                int numStages, int64_t &total);

} // namespace mllm::sched::detail

#endif // MLLM_SIM_TIMELINE_H
