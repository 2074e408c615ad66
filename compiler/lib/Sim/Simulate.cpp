//===- Simulate.cpp - discrete-event simulation of one iteration ----------===//
//
// Every stage runs its program in order on its own clock. A compute action
// takes the stage's time; an all-reduce and the optimizer step are local to
// the stage (its DP x CP replicas run the same program in lockstep).
//
// Sends are asynchronous (isend): a send posts its message at the sender's
// clock and the sender goes on (its clock does not advance). The transfer
// occupies the link from the post for bytes / bandwidth. A receive blocks
// until the matching send (the next one on the link: sender, receiver,
// activation or gradient, FIFO) has been posted and its transfer has
// ended: it ends at max(receiver's clock, transfer end).
//
// The runtime waits for a send at the end of the action that
// sched::sendReleases names (the same function, so the two agree; by link,
// sendReleasesByLink, unless the caller passes them in
// SimOptions::sendReleases), else at the end of the iteration. Such a wait
// ends when the send is complete: its transfer has ended and the receiver
// has posted the receive (reached it in its program). A wait where the
// release proves the arrival never delays; a window's wait (a frozen
// encoder's sends) holds the sender back until the receiver has caught up.
// The next action starts after every wait at the end of the previous one.
//
// Links are not contended, so the time of every action is fixed by its
// predecessors in the dependency order alone: the simulation runs each stage
// as far as it can, parks it at a receive whose message has not been
// posted or at a wait for a receive not yet posted, and wakes it when the
// sender posts the message or the receiver reaches the receive (a ready
// list). Each action is visited once. A run that ends with a parked stage
// is a deadlock (a cycle of blocked receives and waits, or a receive nobody
// sends to).
//
//===----------------------------------------------------------------------===//
#include "mllm/Sim/Simulate.h"

#include "mllm/runtime/SendRelease.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/JSON.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <queue>
#include <tuple>

using namespace mllm::sched;

namespace {

/// The k-th message of a link: its send, once posted (what it carries and
/// when its transfer ends), and when the receiver reached its receive, once
/// it has. What the receiver checks is kept here, not read from the
/// sender's action: at a receive the sender's program is often far away in
/// memory.
struct Message {
  uint32_t pc;        ///< The send's action in the sender's program.
  int32_t microbatch; ///< The send's.
  int64_t bytes;      ///< The send's.
  double end;         ///< When its transfer ends.
  double posted;      ///< When the receiver reached its receive.
};
/// The messages of one link (sender, receiver, gradient?), FIFO.
struct Link {
  std::vector<Message> messages;
  size_t sent = 0;     ///< Messages posted by the sender.
  size_t received = 0; ///< Messages taken by the receiver.
  /// Receives the receiver has reached: `received`, or one more while it
  /// waits for the message.
  size_t posted = 0;
  size_t sends = 0, receives = 0; ///< Of the programs.
  /// release[k]: the action at whose end the sender waits for message k
  /// (sched::sendReleases), -1: the end of the iteration.
  std::vector<int64_t> release;

  Message &at(size_t k) {
    if (k >= messages.size())
      messages.resize(k + 1);
    return messages[k];
  }
};
/// A send the runtime waits for at the end of action `after` of its stage
/// (sched::sendReleases): message `message` of link `link`.
struct SendWait {
  size_t after, link, message;
  bool operator>(const SendWait &o) const {
    return std::tie(after, link, message) >
           std::tie(o.after, o.link, o.message);
  }
};
constexpr size_t kNone = static_cast<size_t>(-1);

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
  /// What a parked stage waits for: a message of link `waitLink`, or the
  /// receive of message `postMessage` of link `postLink` (the other link is
  /// kNone).
  size_t waitLink = kNone, postLink = kNone, postMessage = 0;
  /// Its posted sends that it waits for before the end of the iteration,
  /// first `after` first.
  std::priority_queue<SendWait, std::vector<SendWait>, std::greater<SendWait>>
      sendWaits;
  int64_t inFlight = 0;
  /// Per microbatch: index of its last backward action, -1 if none.
  std::vector<int64_t> lastBackward;
  /// Whether the program has input-gradient actions (else the recompute
  /// goes to the weight-gradient action).
  bool hasBackwardInput = false;
  std::vector<Event> events;
  double computeSum[4] = {0, 0, 0, 0}; // F, Bd, Bw, optimizer
  int64_t computeCount[4] = {0, 0, 0, 0};
  double recomputeSum = 0; ///< Of the backward actions that recompute.
  int64_t recomputeCount = 0;
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

/// sched::sendReleases for the simulator's programs, where program s is
/// stage s, by link. sendReleases finds a peer's program by its stage
/// field, which a hand-made program may leave unset.
std::vector<std::vector<LinkSendReleases>>
releasesOf(const PipelineGraph &graph, const std::vector<Program> &programs) {
  bool byStage = true;
  for (size_t s = 0; s < programs.size(); ++s)
    byStage = byStage && programs[s].stage == static_cast<int>(s);
  if (byStage)
    return sendReleasesByLink(graph, programs);
  std::vector<Program> numbered = programs;
  for (size_t s = 0; s < numbered.size(); ++s)
    numbered[s].stage = static_cast<int>(s);
  return sendReleasesByLink(graph, numbered);
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

  // Links (from, to, gradient?), indexed densely.
  std::vector<Link> links(static_cast<size_t>(numStages) * numStages * 2);
  auto linkIndex = [&](int from, int to, bool grad) -> size_t {
    return (static_cast<size_t>(from) * numStages + to) * 2 + (grad ? 1 : 0);
  };

  // The caller's send releases, if given: one per action of each program,
  // each an action of the program or -1.
  const std::vector<std::vector<int64_t>> *given = options.sendReleases;
  if (given) {
    bool fits = given->size() == programs.size();
    for (size_t s = 0; fits && s < programs.size(); ++s)
      fits = (*given)[s].size() == programs[s].actions.size();
    if (!fits)
      return llvm::createStringError(
          "simulate: the send releases given do not have one entry per "
          "action of each program");
  }

  // Check the programs once, find each microbatch's last backward, count
  // each link's receives and take the given releases by link.
  std::vector<StageState> state(numStages);
  for (int s = 0; s < numStages; ++s) {
    const auto &actions = programs[s].actions;
    StageState &st = state[s];
    if (actions.size() > std::numeric_limits<uint32_t>::max())
      return llvm::createStringError("simulate: %s has %zu actions",
                                     stageName(graph, s).c_str(),
                                     actions.size());
    for (size_t i = 0; i < actions.size(); ++i) {
      const Action &a = actions[i];
      if (isSend(a.kind) || isRecv(a.kind)) {
        if (a.peer < 0 || a.peer >= numStages || a.peer == s)
          return llvm::createStringError(
              "simulate: %s, %s: no such peer stage %d",
              stageName(graph, s).c_str(), describe(graph, a, i).c_str(),
              a.peer);
        if (isRecv(a.kind))
          ++links[linkIndex(a.peer, s, isGradMessage(a.kind))].receives;
        else
          ++links[linkIndex(s, a.peer, isGradMessage(a.kind))].sends;
        if (isSend(a.kind) && given) {
          int64_t r = (*given)[s][i];
          if (r < -1 || r >= static_cast<int64_t>(actions.size()))
            return llvm::createStringError(
                "simulate: %s, %s: the send release given, %lld, is not an "
                "action of the program",
                stageName(graph, s).c_str(), describe(graph, a, i).c_str(),
                static_cast<long long>(r));
          links[linkIndex(s, a.peer, isGradMessage(a.kind))].release.push_back(
              r);
        }
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
  for (Link &link : links)
    link.messages.reserve(std::max(link.sends, link.receives));

  // The actions at whose end the runtime waits for its sends (peers are
  // checked above).
  if (!given)
    for (auto [s, byLink] : llvm::enumerate(releasesOf(graph, programs)))
      for (LinkSendReleases &l : byLink)
        links[linkIndex(static_cast<int>(s), l.peer, l.grad)].release =
            std::move(l.release);
  // Whether stage s goes past the waits at the end of its last action; else
  // it parks at the first whose receive has not been posted. A wait ends
  // when the message has left and its receive is posted.
  auto passWaits = [&](int s) {
    StageState &st = state[s];
    while (!st.sendWaits.empty() && st.sendWaits.top().after < st.pc) {
      const SendWait &w = st.sendWaits.top();
      const Link &link = links[w.link];
      if (w.message >= link.posted) {
        st.parked = true;
        st.postLink = w.link;
        st.postMessage = w.message;
        return false;
      }
      const Message &m = link.messages[w.message];
      st.clock = std::max({st.clock, m.posted, m.end});
      st.sendWaits.pop();
    }
    return true;
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
    st.waitLink = st.postLink = kNone;
    while (passWaits(s) && st.pc < actions.size()) {
      const Action &a = actions[st.pc];
      if (isCompute(a.kind) || a.kind == ActionKind::AllReduceGrads) {
        double d = 0, recompute = 0; // Recompute: the part of d.
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
          recompute = info.recompute;
          d = info.bwdInput + recompute;
          break;
        case ActionKind::BackwardWeight:
          recompute = st.hasBackwardInput ? 0.0 : info.recompute;
          d = info.bwdWeight + recompute;
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
          st.computeSum[slot] += d - recompute;
          ++st.computeCount[slot];
          // The action that runs the microbatch's recompute.
          if (a.kind == ActionKind::BackwardInput ||
              (a.kind == ActionKind::BackwardWeight && !st.hasBackwardInput)) {
            st.recomputeSum += recompute;
            ++st.recomputeCount;
          }
        }
        if (isBackward(a.kind) &&
            st.lastBackward[a.microbatch] == static_cast<int64_t>(st.pc))
          --st.inFlight;
        ++st.pc;
        ++executed;
        continue;
      }

      // A send posts its message and goes on; it is waited for at the end
      // of the action sendReleases names (if anybody receives it).
      bool grad = isGradMessage(a.kind);
      if (isSend(a.kind)) {
        int t = a.peer;
        double d = p2pTime(graph, s, t, a.bytes);
        double start = st.clock;
        size_t li = linkIndex(s, t, grad);
        Link &link = links[li];
        size_t k = link.sent++;
        Message &m = link.at(k);
        m.pc = static_cast<uint32_t>(st.pc);
        m.microbatch = a.microbatch;
        m.bytes = a.bytes;
        m.end = start + d;
        if (k < link.release.size() && link.release[k] >= 0 &&
            k < link.receives)
          st.sendWaits.push({static_cast<size_t>(link.release[k]), li, k});
        lastTransferEnd = std::max(lastTransferEnd, start + d);
        record(s, a, start, start + d);
        commTime[s] += d;
        ++st.pc;
        ++executed;
        // Wake the receiver if it waits for this link.
        StageState &pt = state[t];
        if (pt.parked && pt.waitLink == li) {
          pt.parked = false;
          ready.push_back(t);
        }
        continue;
      }

      // A receive: posted when the stage first gets here (wake the sender
      // if it waits for that); take the next message of the link, or park
      // until the sender posts it.
      int from = a.peer;
      size_t li = linkIndex(from, s, grad);
      Link &link = links[li];
      if (link.posted == link.received) {
        link.at(link.posted++).posted = st.clock;
        StageState &sender = state[from];
        if (sender.parked && sender.postLink == li &&
            sender.postMessage == link.received) {
          sender.parked = false;
          ready.push_back(from);
        }
      }
      if (link.received >= link.sent) {
        st.parked = true;
        st.waitLink = li;
        break;
      }
      const Message &msg = link.messages[link.received];
      if (a.microbatch != msg.microbatch || a.bytes != msg.bytes)
        return llvm::createStringError(
            "simulate: mismatched transfer: %s, %s meets %s, %s (bytes %lld "
            "vs %lld)",
            stageName(graph, s).c_str(), describe(graph, a, st.pc).c_str(),
            stageName(graph, from).c_str(),
            describe(graph, programs[from].actions[msg.pc], msg.pc).c_str(),
            static_cast<long long>(a.bytes), static_cast<long long>(msg.bytes));
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
    const StageState &st = state[s];
    if (st.pc >= actions.size() && st.sendWaits.empty())
      continue;
    if (!stuck.empty())
      stuck += "; ";
    if (st.postLink != kNone) {
      const SendWait &w = st.sendWaits.top();
      size_t pc = links[w.link].messages[w.message].pc;
      stuck += stageName(graph, s) + " waits after " +
               describe(graph, actions[w.after], w.after) +
               " for the receive of its " + describe(graph, actions[pc], pc);
      continue;
    }
    stuck += stageName(graph, s) + " waits at " +
             describe(graph, actions[st.pc], st.pc);
  }
  if (!stuck.empty())
    return llvm::createStringError("simulate: deadlock: %s", stuck.c_str());
  // A send nobody receives.
  for (size_t li = 0; li < links.size(); ++li) {
    const Link &link = links[li];
    if (link.received >= link.sent)
      continue;
    int from = static_cast<int>(li / 2 / numStages);
    size_t pc = link.messages[link.received].pc;
    return llvm::createStringError(
        "simulate: %s, %s: nobody receives it", stageName(graph, from).c_str(),
        describe(graph, programs[from].actions[pc], pc).c_str());
  }

  result.eventsSimulated = executed;
  result.stages.resize(numStages);
  // The iteration ends when every stage has finished and every transfer
  // has arrived (every send is waited for by then).
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
    r.recompute = st.recomputeCount ? st.recomputeSum / st.recomputeCount : 0.0;
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
