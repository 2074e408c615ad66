//===- Simulate.cpp - discrete-event simulation of one iteration ----------===//
//
// Every stage runs its program in order on its own clock. A compute action
// takes the stage's time; an all-reduce and the optimizer step are local to
// the stage (its DP x CP replicas run the same program in lockstep).
//
// Sends are asynchronous (isend): a send posts its message at the sender's
// clock and the sender goes on at once (its clock does not advance; the
// runtime waits for its sends at the end of the iteration). The transfer
// occupies the link from the post for bytes / bandwidth. A receive blocks
// until the matching send (the next one on the link: sender, receiver,
// activation or gradient, FIFO) has been posted and its transfer has
// ended: it ends at max(receiver's clock, transfer end).
//
// Links are not contended, so the time of every action is fixed by its
// predecessors in the dependency order alone: the simulation runs each stage
// as far as it can, parks it at a receive whose message has not been
// posted, and wakes it when the sender posts it (a ready list). Each action
// is visited once. A run that ends with a parked stage is a deadlock (a
// cycle of blocked receives, or a receive nobody sends to).
//
//===----------------------------------------------------------------------===//
#include "mllm/Sched/Simulate.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/JSON.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>

using namespace mllm::sched;

namespace {

bool isCompute(ActionKind kind) {
  return kind == ActionKind::Forward || kind == ActionKind::BackwardInput ||
         kind == ActionKind::BackwardWeight ||
         kind == ActionKind::OptimizerStep;
}
bool isSend(ActionKind kind) {
  return kind == ActionKind::SendActivation || kind == ActionKind::SendGrad;
}
bool isRecv(ActionKind kind) {
  return kind == ActionKind::RecvActivation || kind == ActionKind::RecvGrad;
}
bool isBackward(ActionKind kind) {
  return kind == ActionKind::BackwardInput ||
         kind == ActionKind::BackwardWeight;
}
bool isGrad(ActionKind kind) {
  return kind == ActionKind::SendGrad || kind == ActionKind::RecvGrad;
}

/// A posted send: what it carries and when its transfer ends.
struct Posted {
  const Action *send;
  size_t pc;
  double end;
};
/// The messages of one link (sender, receiver, gradient?), FIFO.
struct Link {
  std::vector<Posted> queue;
  size_t received = 0;
};

std::string stageName(const PipelineGraph &graph, int s) {
  if (s >= 0 && s < static_cast<int>(graph.stages.size()) &&
      !graph.stages[s].name.empty())
    return "stage " + std::to_string(s) + " (" + graph.stages[s].name + ")";
  return "stage " + std::to_string(s);
}

std::string describe(const PipelineGraph &graph, const Action &a, size_t pc) {
  std::string out = "action " + std::to_string(pc) + " " + toString(a.kind);
  if (a.microbatch >= 0)
    out += " microbatch " + std::to_string(a.microbatch);
  if (isSend(a.kind))
    out += " to " + stageName(graph, a.peer);
  else if (isRecv(a.kind))
    out += " from " + stageName(graph, a.peer);
  return out;
}

int64_t nodeOf(const PipelineGraph &graph, int64_t rank) {
  return rank / std::max<int64_t>(graph.gpusPerNode, 1);
}

double transfer(double bytes, double bandwidth) {
  return bandwidth > 0 ? bytes / bandwidth : 0.0;
}

struct StageState {
  size_t pc = 0;
  double clock = 0;
  bool parked = false;
  size_t waitLink = 0; ///< The link a parked stage waits for.
  int64_t inFlight = 0;
  /// Per microbatch: index of its last backward action, -1 if none.
  std::vector<int64_t> lastBackward;
  /// Whether the program has input-gradient actions (else the recompute
  /// goes to the weight-gradient action).
  bool hasBackwardInput = false;
  std::vector<Event> events;
  double computeSum[4] = {0, 0, 0, 0}; // F, Bd, Bw, optimizer
  int64_t computeCount[4] = {0, 0, 0, 0};
};

int computeSlot(ActionKind kind) {
  switch (kind) {
  case ActionKind::Forward:
    return 0;
  case ActionKind::BackwardInput:
    return 1;
  case ActionKind::BackwardWeight:
    return 2;
  default:
    return 3;
  }
}

} // namespace

double mllm::sched::p2pTime(const PipelineGraph &graph, int from, int to,
                            int64_t bytes) {
  const StageInfo &a = graph.stages[from], &b = graph.stages[to];
  bool sameNode = nodeOf(graph, a.firstRank) == nodeOf(graph, b.firstRank);
  return transfer(static_cast<double>(bytes), sameNode
                                                  ? graph.intraNodeBandwidth
                                                  : graph.interNodeBandwidth);
}

double mllm::sched::allReduceTime(const PipelineGraph &graph,
                                  const StageInfo &stage, int64_t bytes) {
  int64_t n = std::max<int64_t>(stage.dp, 1) * std::max<int64_t>(stage.cp, 1);
  if (n <= 1 || bytes <= 0)
    return 0;
  // The group of one GPU: its DP replicas and CP ranks (tp innermost, so
  // the CP stride is tp). Ranks grow monotonically, so the group spans
  // nodes iff its first and last ranks do.
  int64_t last =
      stage.firstRank + (std::max<int64_t>(stage.dp, 1) - 1) * stage.dpStride +
      (std::max<int64_t>(stage.cp, 1) - 1) * std::max<int64_t>(stage.tp, 1);
  bool spans = nodeOf(graph, stage.firstRank) != nodeOf(graph, last);
  double bandwidth =
      spans ? graph.interNodeBandwidth : graph.intraNodeBandwidth;
  return transfer(2.0 * static_cast<double>(n - 1) / static_cast<double>(n) *
                      static_cast<double>(bytes),
                  bandwidth);
}

llvm::Expected<SimResult>
mllm::sched::simulate(const PipelineGraph &graph,
                      const std::vector<Program> &programs) {
  return simulate(graph, programs, SimOptions());
}

llvm::Expected<SimResult>
mllm::sched::simulate(const PipelineGraph &graph,
                      const std::vector<Program> &programs,
                      const SimOptions &options) {
  const int numStages = static_cast<int>(graph.stages.size());
  if (static_cast<int>(programs.size()) != numStages)
    return llvm::createStringError("simulate: %zu programs for %d stages",
                                   programs.size(), numStages);

  // Check the programs once, and find each microbatch's last backward.
  std::vector<StageState> state(numStages);
  for (int s = 0; s < numStages; ++s) {
    const auto &actions = programs[s].actions;
    StageState &st = state[s];
    for (size_t i = 0; i < actions.size(); ++i) {
      const Action &a = actions[i];
      if (isSend(a.kind) || isRecv(a.kind)) {
        if (a.peer < 0 || a.peer >= numStages || a.peer == s)
          return llvm::createStringError(
              "simulate: %s, %s: no such peer stage %d",
              stageName(graph, s).c_str(), describe(graph, a, i).c_str(),
              a.peer);
      }
      if ((a.kind == ActionKind::Forward || isBackward(a.kind)) &&
          a.microbatch < 0)
        return llvm::createStringError("simulate: %s, %s: no microbatch",
                                       stageName(graph, s).c_str(),
                                       describe(graph, a, i).c_str());
      if (a.kind == ActionKind::BackwardInput)
        st.hasBackwardInput = true;
      if (isBackward(a.kind)) {
        if (static_cast<size_t>(a.microbatch) >= st.lastBackward.size())
          st.lastBackward.resize(a.microbatch + 1, -1);
        st.lastBackward[a.microbatch] = static_cast<int64_t>(i);
      }
    }
    if (options.recordEvents)
      st.events.reserve(actions.size());
  }

  SimResult result;
  auto record = [&](int s, const Action &a, double start, double end) {
    if (!options.recordEvents)
      return;
    Event e;
    e.stage = s;
    e.kind = a.kind;
    e.microbatch = a.microbatch;
    e.start = start;
    e.end = end;
    e.peer = a.peer;
    state[s].events.push_back(e);
  };

  std::vector<double> commTime(numStages, 0.0), busyTime(numStages, 0.0);
  std::vector<int64_t> maxInFlight(numStages, 0);
  // Links (from, to, gradient?), indexed densely.
  std::vector<Link> links(static_cast<size_t>(numStages) * numStages * 2);
  auto linkIndex = [&](int from, int to, bool grad) -> size_t {
    return (static_cast<size_t>(from) * numStages + to) * 2 + (grad ? 1 : 0);
  };
  double lastTransferEnd = 0;
  std::vector<int> ready;
  ready.reserve(numStages);
  for (int s = numStages - 1; s >= 0; --s)
    ready.push_back(s);

  int64_t executed = 0;
  while (!ready.empty()) {
    int s = ready.back();
    ready.pop_back();
    StageState &st = state[s];
    const StageInfo &info = graph.stages[s];
    const auto &actions = programs[s].actions;
    st.parked = false;
    while (st.pc < actions.size()) {
      const Action &a = actions[st.pc];
      if (isCompute(a.kind) || a.kind == ActionKind::AllReduceGrads) {
        double d = 0;
        switch (a.kind) {
        case ActionKind::Forward:
          d = info.fwd;
          if (static_cast<size_t>(a.microbatch) < st.lastBackward.size() &&
              st.lastBackward[a.microbatch] >= 0) {
            ++st.inFlight;
            maxInFlight[s] = std::max(maxInFlight[s], st.inFlight);
          }
          break;
        case ActionKind::BackwardInput:
          d = info.bwdInput + info.recompute;
          break;
        case ActionKind::BackwardWeight:
          d = info.bwdWeight + (st.hasBackwardInput ? 0.0 : info.recompute);
          break;
        case ActionKind::OptimizerStep:
          d = options.memoryBandwidth > 0
                  ? static_cast<double>(info.trainableParams) *
                        options.optimizerBytesPerParam / options.memoryBandwidth
                  : 0.0;
          break;
        default: // AllReduceGrads
          d = allReduceTime(graph, info, a.bytes);
          break;
        }
        double start = st.clock;
        st.clock += d;
        record(s, a, start, st.clock);
        if (a.kind == ActionKind::AllReduceGrads) {
          commTime[s] += d;
        } else {
          busyTime[s] += d;
          int slot = computeSlot(a.kind);
          st.computeSum[slot] += d;
          ++st.computeCount[slot];
        }
        if (isBackward(a.kind) &&
            st.lastBackward[a.microbatch] == static_cast<int64_t>(st.pc))
          --st.inFlight;
        ++st.pc;
        ++executed;
        continue;
      }

      // A send posts its message and never waits.
      bool grad = isGrad(a.kind);
      if (isSend(a.kind)) {
        int t = a.peer;
        double d = p2pTime(graph, s, t, a.bytes);
        double start = st.clock;
        Link &link = links[linkIndex(s, t, grad)];
        link.queue.push_back({&a, st.pc, start + d});
        lastTransferEnd = std::max(lastTransferEnd, start + d);
        record(s, a, start, start + d);
        commTime[s] += d;
        ++st.pc;
        ++executed;
        // Wake the receiver if it waits for this link.
        StageState &pt = state[t];
        if (pt.parked && pt.waitLink == linkIndex(s, t, grad)) {
          pt.parked = false;
          ready.push_back(t);
        }
        continue;
      }

      // A receive: take the next message of the link, or park until the
      // sender posts it.
      int from = a.peer;
      size_t li = linkIndex(from, s, grad);
      Link &link = links[li];
      if (link.received >= link.queue.size()) {
        st.parked = true;
        st.waitLink = li;
        break;
      }
      const Posted &msg = link.queue[link.received];
      const Action &b = *msg.send;
      if (a.microbatch != b.microbatch || a.bytes != b.bytes)
        return llvm::createStringError(
            "simulate: mismatched transfer: %s, %s meets %s, %s (bytes %lld "
            "vs %lld)",
            stageName(graph, s).c_str(), describe(graph, a, st.pc).c_str(),
            stageName(graph, from).c_str(), describe(graph, b, msg.pc).c_str(),
            static_cast<long long>(a.bytes), static_cast<long long>(b.bytes));
      ++link.received;
      double d = p2pTime(graph, from, s, a.bytes);
      double end = std::max(st.clock, msg.end);
      // The part of the transfer the receiver sees (waiting before the
      // transfer starts is idle time).
      record(s, a, std::max(st.clock, msg.end - d), end);
      st.clock = end;
      commTime[s] += d;
      ++st.pc;
      ++executed;
    }
  }

  // Deadlock: a stage parked (or not finished) with nobody left to wake it.
  std::string stuck;
  for (int s = 0; s < numStages; ++s) {
    const auto &actions = programs[s].actions;
    if (state[s].pc >= actions.size())
      continue;
    if (!stuck.empty())
      stuck += "; ";
    stuck += stageName(graph, s) + " waits at " +
             describe(graph, actions[state[s].pc], state[s].pc);
  }
  if (!stuck.empty())
    return llvm::createStringError("simulate: deadlock: %s", stuck.c_str());
  // A send nobody receives.
  for (size_t li = 0; li < links.size(); ++li) {
    const Link &link = links[li];
    if (link.received >= link.queue.size())
      continue;
    int from = static_cast<int>(li / 2 / numStages);
    const Posted &msg = link.queue[link.received];
    return llvm::createStringError("simulate: %s, %s: nobody receives it",
                                   stageName(graph, from).c_str(),
                                   describe(graph, *msg.send, msg.pc).c_str());
  }

  result.eventsSimulated = executed;
  result.stages.resize(numStages);
  // The iteration ends when every stage has finished and every transfer
  // has arrived (the sends are waited for at the end).
  double iteration = lastTransferEnd;
  for (int s = 0; s < numStages; ++s)
    iteration = std::max(iteration, state[s].clock);
  result.iterationTime = iteration;
  for (int s = 0; s < numStages; ++s) {
    const StageInfo &info = graph.stages[s];
    StageState &st = state[s];
    StageReport &r = result.stages[s];
    r.busy = busyTime[s];
    r.comm = commTime[s];
    r.bubble = iteration > 0 ? 1.0 - r.busy / iteration : 0.0;
    auto mean = [&](int slot) {
      return st.computeCount[slot] ? st.computeSum[slot] / st.computeCount[slot]
                                   : 0.0;
    };
    r.fwd = mean(0);
    r.bwdInput = mean(1);
    r.bwdWeight = mean(2);
    r.maxInFlight = maxInFlight[s];
    r.peakMemory =
        info.staticBytes + info.activationBytesPerMicrobatch * r.maxInFlight;
    result.worldSize += std::max<int64_t>(info.tp, 1) *
                        std::max<int64_t>(info.cp, 1) *
                        std::max<int64_t>(info.dp, 1);
  }
  if (options.recordEvents) {
    size_t total = 0;
    for (auto &st : state)
      total += st.events.size();
    result.events.reserve(total);
    for (auto &st : state)
      llvm::append_range(result.events, st.events);
  }
  if (iteration > 0) {
    result.tokensPerSecond =
        static_cast<double>(graph.tokensPerIteration) / iteration;
    if (graph.peakFlops > 0 && result.worldSize > 0)
      result.mfu =
          graph.flopsPerIteration /
          (iteration * graph.peakFlops * static_cast<double>(result.worldSize));
  }
  return result;
}

//===----------------------------------------------------------------------===//
// Outputs
//===----------------------------------------------------------------------===//

namespace {

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

} // namespace

std::vector<int64_t> mllm::sched::stageRanks(const StageInfo &stage) {
  std::vector<int64_t> ranks;
  int64_t tp = std::max<int64_t>(stage.tp, 1);
  for (int64_t d = 0; d < std::max<int64_t>(stage.dp, 1); ++d)
    for (int64_t c = 0; c < std::max<int64_t>(stage.cp, 1); ++c)
      for (int64_t t = 0; t < tp; ++t)
        ranks.push_back(stage.firstRank + d * stage.dpStride + c * tp + t);
  return ranks;
}

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

namespace {

/// The ranks of every stage and their number over all stages.
std::vector<std::vector<int64_t>> ranksOfStages(const PipelineGraph &graph,
                                                int numStages, int64_t &total) {
  std::vector<std::vector<int64_t>> ranks(numStages);
  total = 0;
  for (int s = 0; s < numStages; ++s) {
    if (s < static_cast<int>(graph.stages.size()))
      ranks[s] = stageRanks(graph.stages[s]);
    total += static_cast<int64_t>(ranks[s].size());
  }
  return ranks;
}

} // namespace

void mllm::sched::writeChromeTrace(const PipelineGraph &graph,
                                   const SimResult &result,
                                   llvm::raw_ostream &os, int64_t maxRanks) {
  int numStages = static_cast<int>(result.stages.size());
  int64_t totalRanks = 0;
  std::vector<std::vector<int64_t>> ranks =
      ranksOfStages(graph, numStages, totalRanks);
  bool perRank = maxRanks <= 0 || totalRanks <= maxRanks;
  // Per stage, its threads: (tid, name).
  std::vector<std::vector<std::pair<int64_t, std::string>>> threads(numStages);
  for (int s = 0; s < numStages; ++s) {
    if (ranks[s].empty()) {
      threads[s].push_back({s, displayName(graph, s)});
    } else if (perRank) {
      for (int64_t rank : ranks[s])
        threads[s].push_back({rank, "rank " + std::to_string(rank)});
    } else {
      threads[s].push_back({*std::min_element(ranks[s].begin(), ranks[s].end()),
                            rankRange(ranks[s])});
    }
  }

  llvm::json::OStream j(os);
  j.objectBegin();
  j.attribute("displayTimeUnit", "ms");
  j.attributeBegin("traceEvents");
  j.arrayBegin();
  auto meta = [&](llvm::StringRef name, int pid, std::optional<int64_t> tid,
                  llvm::StringRef key, llvm::json::Value value) {
    j.object([&] {
      j.attribute("name", name);
      j.attribute("ph", "M");
      j.attribute("pid", pid);
      if (tid)
        j.attribute("tid", *tid);
      j.attributeObject("args", [&] { j.attribute(key, std::move(value)); });
    });
  };
  for (int s = 0; s < numStages; ++s) {
    meta("process_name", s, std::nullopt, "name", displayName(graph, s));
    meta("process_sort_index", s, std::nullopt, "sort_index", s);
    for (const auto &[tid, name] : threads[s]) {
      meta("thread_name", s, tid, "name", name);
      meta("thread_sort_index", s, tid, "sort_index", tid);
    }
  }
  for (const Event &e : result.events) {
    // Zero-length transfers (no bytes, infinite bandwidth) are noise.
    if (e.end <= e.start && !isCompute(e.kind))
      continue;
    if (e.stage < 0 || e.stage >= numStages)
      continue;
    for (const auto &thread : threads[e.stage])
      j.object([&] {
        j.attribute("name", eventName(e));
        j.attribute("cat", category(e.kind));
        j.attribute("ph", "X");
        j.attribute("pid", e.stage);
        j.attribute("tid", thread.first);
        j.attribute("ts", e.start * 1e6);
        j.attribute("dur", (e.end - e.start) * 1e6);
        j.attributeObject("args", [&] {
          j.attribute("kind", toString(e.kind));
          if (e.microbatch >= 0)
            j.attribute("microbatch", e.microbatch);
          if (e.peer >= 0)
            j.attribute("peer", displayName(graph, e.peer));
        });
      });
  }
  j.arrayEnd();
  j.attributeEnd();
  j.objectEnd();
  os << "\n";
}

namespace {

struct Colour {
  const char *fill;
  const char *label;
};

Colour colourOf(ActionKind kind) {
  switch (kind) {
  case ActionKind::Forward:
    return {"#4e79a7", "forward"};
  case ActionKind::BackwardInput:
    return {"#e15759", "backward (input grad + recompute)"};
  case ActionKind::BackwardWeight:
    return {"#59a14f", "backward (weight grad)"};
  case ActionKind::AllReduceGrads:
    return {"#b07aa1", "gradient all-reduce"};
  case ActionKind::OptimizerStep:
    return {"#9c755f", "optimizer step"};
  default:
    return {"#f2b447", "send / receive"};
  }
}

/// A round tick step: 1, 2 or 5 x 10^k seconds, about `target` ticks.
double tickStep(double span, int target) {
  if (span <= 0)
    return 1;
  double raw = span / target;
  double p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * p >= raw)
      return m * p;
  return 10 * p;
}

std::string formatTime(double seconds, double step) {
  std::string out;
  llvm::raw_string_ostream os(out);
  if (step >= 1)
    os << llvm::format("%g s", seconds);
  else if (step >= 1e-3)
    os << llvm::format("%g ms", std::round(seconds * 1e6) / 1e3);
  else
    os << llvm::format("%g us", std::round(seconds * 1e9) / 1e3);
  return out;
}

} // namespace

void mllm::sched::writeSvg(const PipelineGraph &graph, const SimResult &result,
                           llvm::raw_ostream &os, int64_t maxRankRows) {
  const int numStages = static_cast<int>(result.stages.size());
  int64_t totalRanks = 0;
  std::vector<std::vector<int64_t>> ranks =
      ranksOfStages(graph, numStages, totalRanks);
  bool perRank = totalRanks <= maxRankRows;
  // The rows: (stage, label); each stage's rows are consecutive.
  std::vector<std::pair<int, std::string>> rows;
  std::vector<std::vector<int>> stageRows(numStages);
  for (int s = 0; s < numStages; ++s) {
    std::string name = displayName(graph, s);
    if (perRank && !ranks[s].empty()) {
      for (int64_t rank : ranks[s]) {
        stageRows[s].push_back(static_cast<int>(rows.size()));
        rows.push_back({s, name + " rank " + std::to_string(rank)});
      }
    } else {
      stageRows[s].push_back(static_cast<int>(rows.size()));
      rows.push_back({s, ranks[s].empty()
                             ? name
                             : name + " (" + rankRange(ranks[s]) + ")"});
    }
  }
  const int numRows = static_cast<int>(rows.size());
  size_t longest = 0;
  for (const auto &row : rows)
    longest = std::max(longest, row.second.size());
  const double labelW =
      std::max(140.0, 7.0 * static_cast<double>(longest) + 16);
  const double plotW = 1100, rowH = 28, barH = 20, top = 40;
  const double axisY = top + numRows * rowH + 6;
  const double legendY = axisY + 40;
  const double width = labelW + plotW + 30, height = legendY + 30;
  const double span = result.iterationTime > 0 ? result.iterationTime : 1;
  auto x = [&](double t) { return labelW + t / span * plotW; };

  os << llvm::format("<svg xmlns=\"http://www.w3.org/2000/svg\" "
                     "width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f "
                     "%.0f\" font-family=\"sans-serif\" font-size=\"12\">\n",
                     width, height, width, height);
  os << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  os << llvm::format("<text x=\"%.1f\" y=\"20\" font-size=\"14\">", labelW)
     << llvm::format("one iteration: %.3f ms, %d stages, %lld GPUs, %lld "
                     "microbatches",
                     result.iterationTime * 1e3, numStages,
                     static_cast<long long>(totalRanks),
                     static_cast<long long>(graph.microbatches))
     << "</text>\n";
  // Rows and their labels, shaded by stage.
  for (int r = 0; r < numRows; ++r) {
    double y = top + r * rowH;
    os << llvm::format("<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                       "height=\"%.1f\" fill=\"%s\"/>\n",
                       labelW, y, plotW, rowH,
                       rows[r].first % 2 ? "#f4f4f4" : "#fafafa");
    os << llvm::format("<text class=\"%s\" x=\"%.1f\" y=\"%.1f\" "
                       "text-anchor=\"end\">",
                       perRank ? "rank" : "stage", labelW - 8,
                       y + rowH / 2 + 4);
    llvm::printHTMLEscaped(rows[r].second, os);
    os << "</text>\n";
  }
  // The actions, on every row of their stage.
  for (const Event &e : result.events) {
    if (e.end <= e.start || e.stage < 0 || e.stage >= numStages)
      continue;
    bool comm = !isCompute(e.kind);
    for (int r : stageRows[e.stage]) {
      double y = top + r * rowH + (rowH - barH) / 2;
      double h = comm ? barH / 2 : barH;
      if (comm)
        y += barH / 4;
      os << llvm::format("<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" "
                         "height=\"%.1f\" fill=\"%s\"",
                         x(e.start), y, std::max(x(e.end) - x(e.start), 0.05),
                         h, colourOf(e.kind).fill);
      if (!comm)
        os << " stroke=\"white\" stroke-width=\"0.3\"";
      os << "><title>" << eventName(e)
         << llvm::format(" %.3f-%.3f ms", e.start * 1e3, e.end * 1e3)
         << "</title></rect>\n";
    }
  }
  // The time axis.
  os << llvm::format("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                     "stroke=\"black\"/>\n",
                     labelW, axisY, labelW + plotW, axisY);
  double step = tickStep(span, 10);
  for (double t = 0; t <= span * (1 + 1e-9); t += step) {
    os << llvm::format("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
                       "y2=\"%.1f\" stroke=\"black\"/>\n",
                       x(t), axisY, x(t), axisY + 5);
    os << llvm::format("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
                       x(t), axisY + 18)
       << formatTime(t, step) << "</text>\n";
  }
  // The legend.
  double lx = labelW;
  for (ActionKind kind :
       {ActionKind::Forward, ActionKind::BackwardInput,
        ActionKind::BackwardWeight, ActionKind::SendActivation,
        ActionKind::AllReduceGrads, ActionKind::OptimizerStep}) {
    Colour c = colourOf(kind);
    os << llvm::format("<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" "
                       "height=\"12\" fill=\"%s\"/>\n",
                       lx, legendY - 10, c.fill);
    os << llvm::format("<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", lx + 16,
                       legendY, c.label);
    lx += 16 + 7.0 * std::strlen(c.label) + 20;
  }
  os << "</svg>\n";
}
