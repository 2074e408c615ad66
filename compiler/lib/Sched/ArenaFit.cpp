//===- ArenaFit.cpp - the memory check on static memory plans -------------===//
#include "mllm/Sched/ArenaFit.h"

#include "mllm/runtime/PlanMemory.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <map>

using namespace mllm::sched;

namespace {

/// GiB, or MiB below one GiB (a small GPU's figures would all read 0.00).
std::string bytesText(double bytes) {
  std::string s;
  if (bytes >= (1 << 30))
    llvm::raw_string_ostream(s) << llvm::format("%.2f GiB", bytes / (1 << 30));
  else
    llvm::raw_string_ostream(s) << llvm::format("%.1f MiB", bytes / (1 << 20));
  return s;
}

/// What a plan holds at the first action where the most bytes are live.
struct Peak {
  int64_t action = 0;
  double persistent = 0, saved = 0, messages = 0, workspace = 0;
  int64_t savedCount = 0;
};

Peak peakOf(const MemoryPlan &plan) {
  std::map<int64_t, int64_t> delta;
  for (const Buffer &b : plan.buffers) {
    delta[b.first] += b.bytes;
    delta[b.last + 1] -= b.bytes;
  }
  int64_t live = 0, best = -1;
  Peak peak;
  for (auto [at, d] : delta) {
    live += d;
    if (live > best) {
      best = live;
      peak.action = at;
    }
  }
  for (const Buffer &b : plan.buffers) {
    if (b.first > peak.action || b.last < peak.action)
      continue;
    auto bytes = static_cast<double>(b.bytes);
    switch (b.kind) {
    case BufferKind::Weights:
    case BufferKind::Grads:
    case BufferKind::OptimizerState:
      peak.persistent += bytes;
      break;
    case BufferKind::Saved:
      peak.saved += bytes;
      ++peak.savedCount;
      break;
    case BufferKind::Workspace:
      peak.workspace += bytes;
      break;
    case BufferKind::RecvAct:
    case BufferKind::RecvGrad:
    case BufferKind::SendAct:
    case BufferKind::SendGrad:
      peak.messages += bytes;
      break;
    }
  }
  return peak;
}

} // namespace

llvm::Error mllm::sched::checkArenas(const PipelineGraph &graph,
                                     const std::vector<Program> &programs,
                                     const std::vector<MemoryPlan> &plans,
                                     ScheduleKind kind) {
  std::string first;
  int firstStage = -1;
  size_t over = 0;
  for (size_t i = 0; i < programs.size() && i < plans.size(); ++i) {
    int stage = programs[i].stage;
    if (stage < 0 || static_cast<size_t>(stage) >= graph.stages.size())
      continue;
    const StageInfo &s = graph.stages[stage];
    if (s.memoryCapacity <= 0 || plans[i].arenaBytes <= s.memoryCapacity)
      continue;
    if (over++ > 0)
      continue;
    firstStage = stage;
    Peak peak = peakOf(plans[i]);
    int64_t held = s.hasBackward() ? programs[i].maxInFlight : 0;
    double estimate =
        static_cast<double>(s.staticBytes) +
        static_cast<double>(s.activationBytesPerMicrobatch) * held;
    llvm::raw_string_ostream os(first);
    os << "stage '" << s.name << "' needs "
       << bytesText(static_cast<double>(plans[i].arenaBytes))
       << " per GPU by its static memory plan under the "
       << stringifyScheduleKind(kind) << " schedule but a GPU has "
       << bytesText(static_cast<double>(s.memoryCapacity))
       << ": at its peak (action " << peak.action
       << ") it holds weights, gradients and optimizer state "
       << bytesText(peak.persistent) << " + saved activations "
       << bytesText(peak.saved) << " (" << peak.savedCount
       << (peak.savedCount == 1 ? " microbatch" : " microbatches")
       << ") + messages " << bytesText(peak.messages) << " + workspace "
       << bytesText(peak.workspace) << "; the cost model's estimate, "
       << bytesText(estimate)
       << ", bounds the messages by the rules of docs/plan-format.md "
          "(\"Ranks and memory\") and leaves out the workspace";
    if (peak.messages > peak.saved)
      os << "; messages wait in GPU memory to leave or to be used "
            "(docs/runtime.md, \"When a send's buffer is free\"): lower "
            "'microbatch_size' or the tokens per sample (or 'microbatches', "
            "where sends wait to the end of the iteration), or use GPUs "
            "with more memory";
    else
      // A colocated or chain stage ("vision+audio") names each part.
      os << "; raise pp or tp of '"
         << llvm::join(llvm::split(s.part, '+'), "' and '") << "'";
    // Recomputation frees saved activations only (RankMap.cpp's rule).
    if (peak.messages <= peak.saved && peak.saved > 0 &&
        peak.persistent + peak.workspace <
            static_cast<double>(s.memoryCapacity))
      os << ", or set recompute = full";
    // Only the default schedule lowers a warm-up to what fits, where one
    // microbatch does.
    double perMicrobatch = peak.savedCount > 0
                               ? (peak.saved + peak.messages) /
                                     static_cast<double>(peak.savedCount)
                               : 0.0;
    bool oneFits = peak.persistent + peak.workspace + perMicrobatch <=
                   static_cast<double>(s.memoryCapacity);
    if (oneFits && peak.savedCount > 1) {
      if (kind == ScheduleKind::GPipe)
        os << ", or lower 'microbatches' (GPipe holds every one's "
              "activations), or use the default schedule, multimodal_1f1b, "
              "which holds what fits";
      else if (kind == ScheduleKind::LinearOneFOneB)
        os << ", or use the default schedule, multimodal_1f1b, which lowers "
              "its warm-up to what fits";
    }
  }
  if (over == 0)
    return llvm::Error::success();
  if (over > 1)
    first += "; " + std::to_string(over) + " of " +
             std::to_string(programs.size()) + " stages do not fit";
  return llvm::make_error<ScheduleError>(first, firstStage);
}

llvm::Error mllm::sched::checkPlanMemory(const runtime::Plan &plan) {
  if (!plan.schedule)
    return llvm::Error::success();
  const runtime::PlanSchedule &schedule = *plan.schedule;
  std::optional<ScheduleKind> kind = symbolizeScheduleKind(schedule.kind);
  if (!kind)
    return llvm::Error::success();
  if (schedule.arenaBytes.size() != schedule.programs.size()) {
    // No arenas (a plan beyond the bound of packing them, or a plan file
    // without them): the estimate's rule, in ScheduleError's form.
    llvm::Error e = checkMemory(schedule.graph, schedule.programs, *kind);
    if (!e)
      return e;
    std::string message = llvm::toString(std::move(e));
    int stage = -1;
    for (size_t s = 0; s < schedule.graph.stages.size() && stage < 0; ++s)
      if (llvm::StringRef(message).starts_with(
              "stage '" + schedule.graph.stages[s].name + "'"))
        stage = static_cast<int>(s);
    return llvm::make_error<ScheduleError>(message, stage);
  }
  // The recorded arenas decide; the plans are rebuilt only to say what an
  // arena that does not fit holds.
  bool fits = true;
  for (size_t i = 0; i < schedule.programs.size(); ++i) {
    int stage = schedule.programs[i].stage;
    if (stage >= 0 && static_cast<size_t>(stage) < schedule.graph.stages.size())
      fits &=
          schedule.graph.stages[stage].memoryCapacity <= 0 ||
          schedule.arenaBytes[i] <= schedule.graph.stages[stage].memoryCapacity;
  }
  if (fits)
    return llvm::Error::success();
  std::vector<MemoryPlan> plans = runtime::programMemoryPlans(plan);
  return checkArenas(schedule.graph, schedule.programs, plans, *kind);
}
