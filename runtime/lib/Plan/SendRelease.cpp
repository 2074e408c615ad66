//===- SendRelease.cpp - when a posted send's buffer is free --------------===//
#include "mllm/runtime/SendRelease.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/STLExtras.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <tuple>

using namespace mllm;
using namespace mllm::sched;

namespace {

/// The compute action that waits for receive `k` of `p`: its microbatch's
/// next forward (activations) or next backward (gradients); -1: none.
int64_t waitPoint(const Program &p, size_t k) {
  const Action &r = p.actions[k];
  for (size_t i = k + 1; i < p.actions.size(); ++i) {
    const Action &a = p.actions[i];
    if (a.microbatch != r.microbatch)
      continue;
    if (r.kind == ActionKind::RecvActivation ? a.kind == ActionKind::Forward
                                             : isBackward(a.kind))
      return static_cast<int64_t>(i);
  }
  return -1;
}

/// Indices of `p`'s actions of kind send (`send`) or receive with peer
/// `peer`, carrying gradients or not, in program order: the k-th send of a
/// link matches its k-th receive (the schedule verifier checks it).
std::vector<size_t> linkActions(const Program &p, int peer, bool send,
                                bool grad) {
  std::vector<size_t> out;
  for (size_t i = 0; i < p.actions.size(); ++i) {
    const Action &a = p.actions[i];
    if (a.peer == peer && (send ? isSend(a.kind) : isRecv(a.kind)) &&
        isGradMessage(a.kind) == grad)
      out.push_back(i);
  }
  return out;
}

} // namespace

std::vector<int64_t>
sched::provenSendReleases(const PipelineGraph &graph,
                          const std::vector<Program> &programs, size_t index) {
  const Program &mine = programs[index];
  std::vector<int64_t> release(mine.actions.size(), -1);
  std::map<int, size_t> programOf;
  for (size_t i = 0; i < programs.size(); ++i)
    programOf[programs[i].stage] = i;
  auto validStage = [&](int s) {
    return s >= 0 && static_cast<size_t>(s) < graph.stages.size();
  };
  if (!validStage(mine.stage))
    return release;
  const StageInfo &self = graph.stages[mine.stage];
  std::map<int, bool> peers;
  for (const Action &a : mine.actions)
    if (isComm(a.kind) && a.peer >= 0)
      peers[a.peer] = true;
  for (auto [peer, unused] : peers) {
    (void)unused;
    auto q = programOf.find(peer);
    if (q == programOf.end() || !validStage(peer))
      continue;
    const StageInfo &other = graph.stages[peer];
    // Every rank a send of this stage reaches sends back to it only when
    // the peer has no more TP ranks and the same replicas.
    if (other.tp > self.tp || other.dp != self.dp)
      continue;
    const Program &theirs = programs[q->second];
    // This program's receives from the peer: (wait point, the peer's index
    // of the matching send), by wait point.
    std::vector<std::pair<int64_t, size_t>> receives;
    for (bool grad : {false, true}) {
      std::vector<size_t> ours = linkActions(mine, peer, false, grad);
      std::vector<size_t> sent = linkActions(theirs, mine.stage, true, grad);
      for (size_t k = 0; k < ours.size() && k < sent.size(); ++k) {
        int64_t w = waitPoint(mine, ours[k]);
        if (w >= 0)
          receives.emplace_back(w, sent[k]);
      }
    }
    llvm::sort(receives);
    for (bool grad : {false, true}) {
      std::vector<size_t> ours = linkActions(mine, peer, true, grad);
      std::vector<size_t> got = linkActions(theirs, mine.stage, false, grad);
      for (size_t k = 0; k < ours.size() && k < got.size(); ++k) {
        auto i = static_cast<int64_t>(ours[k]);
        // The peer has this message once its compute action that waits for
        // the receive has run.
        int64_t taken = waitPoint(theirs, got[k]);
        if (taken < 0)
          continue;
        // The first receive waited for after the send was posted whose
        // message the peer sent after taking this one.
        auto it = std::upper_bound(
            receives.begin(), receives.end(), i,
            [](int64_t v, const std::pair<int64_t, size_t> &r) {
              return v < r.first;
            });
        for (; it != receives.end(); ++it)
          if (static_cast<int64_t>(it->second) > taken) {
            release[ours[k]] = it->first;
            break;
          }
      }
    }
  }
  return release;
}

namespace {

/// The sends that stay to the end under proven arrival, released instead at
/// the end of the action that posts the kWindow-th later send of the same
/// link: at most kWindow + 1 of a link's messages in flight.
constexpr size_t kWindow = 2;
void addWindowReleases(const std::vector<Program> &programs,
                       std::vector<std::vector<int64_t>> &release) {
  for (size_t p = 0; p < programs.size(); ++p) {
    std::map<std::pair<int, bool>, std::vector<size_t>> links;
    const Program &prog = programs[p];
    for (size_t i = 0; i < prog.actions.size(); ++i)
      if (isSend(prog.actions[i].kind))
        links[{prog.actions[i].peer, isGradMessage(prog.actions[i].kind)}]
            .push_back(i);
    for (auto &[link, sends] : links)
      for (size_t k = 0; k + kWindow < sends.size(); ++k)
        if (release[p][sends[k]] < 0)
          release[p][sends[k]] = static_cast<int64_t>(sends[k + kWindow]);
  }
}

/// Program `program` has gone past its action `index`.
struct Gate {
  size_t program, index;
};

/// The gates of each action of one program, in one array: a vector per
/// action costs 24 bytes even when empty, and a schedule may hold millions
/// of actions. Filled in two passes over the same gates: count() each, then
/// allocate(), then add() each.
class GateTable {
public:
  explicit GateTable(size_t actions) : bounds(actions + 1, 0) {}

  void count(size_t action) { ++bounds[action]; }
  /// Each action's count becomes the end of its gates; add() fills them
  /// backwards, leaving bounds[action] at their start.
  void allocate() {
    std::partial_sum(bounds.begin(), bounds.end(), bounds.begin());
    gates.resize(bounds.back());
  }
  void add(size_t action, Gate gate) { gates[--bounds[action]] = gate; }

  llvm::ArrayRef<Gate> operator[](size_t action) const {
    return llvm::ArrayRef<Gate>(gates).slice(
        bounds[action], bounds[action + 1] - bounds[action]);
  }

private:
  std::vector<size_t> bounds;
  std::vector<Gate> gates;
};

} // namespace

bool sched::runsToCompletion(const std::vector<Program> &programs,
                             const std::vector<std::vector<int64_t>> &release) {
  std::map<int, size_t> programOf;
  for (size_t i = 0; i < programs.size(); ++i)
    programOf[programs[i].stage] = i;
  // Matching: the k-th send of a link is its k-th receive.
  using Link = std::tuple<int, int, bool>;
  std::map<Link, std::pair<std::vector<size_t>, std::vector<size_t>>> links;
  for (size_t p = 0; p < programs.size(); ++p)
    for (size_t i = 0; i < programs[p].actions.size(); ++i) {
      const Action &a = programs[p].actions[i];
      int self = programs[p].stage;
      if (isSend(a.kind))
        links[{self, a.peer, isGradMessage(a.kind)}].first.push_back(i);
      else if (isRecv(a.kind))
        links[{a.peer, self, isGradMessage(a.kind)}].second.push_back(i);
    }
  // A message to or from a stage that no program runs never arrives.
  for (const auto &[link, lists] : links)
    if (!programOf.count(std::get<0>(link)) ||
        !programOf.count(std::get<1>(link)))
      return false;
  // Gates: before a compute action, the messages it waits for were sent;
  // after an action, the sends released there were posted as receives.
  std::vector<GateTable> before, after;
  for (const Program &p : programs) {
    before.emplace_back(p.actions.size());
    after.emplace_back(p.actions.size());
  }
  // Calls visit(table, action, gate) for every gate; run once to count
  // them, once to fill the tables.
  auto forEachGate = [&](auto &&visit) {
    for (const auto &[link, lists] : links) {
      size_t from = programOf[std::get<0>(link)],
             to = programOf[std::get<1>(link)];
      size_t common = std::min(lists.first.size(), lists.second.size());
      for (size_t k = 0; k < common; ++k) {
        size_t send = lists.first[k], recv = lists.second[k];
        int64_t wait = waitPoint(programs[to], recv);
        if (wait >= 0)
          visit(before[to], static_cast<size_t>(wait), Gate{from, send});
        int64_t at = release[from][send];
        if (at >= 0)
          visit(after[from], static_cast<size_t>(at), Gate{to, recv});
      }
    }
  };
  forEachGate([](GateTable &t, size_t action, Gate) { t.count(action); });
  for (size_t p = 0; p < programs.size(); ++p) {
    before[p].allocate();
    after[p].allocate();
  }
  forEachGate(
      [](GateTable &t, size_t action, Gate gate) { t.add(action, gate); });

  std::vector<size_t> pc(programs.size(), 0);
  auto passed = [&](llvm::ArrayRef<Gate> gates) {
    for (const Gate &g : gates)
      if (pc[g.program] <= g.index)
        return false;
    return true;
  };
  bool progress = true;
  while (progress) {
    progress = false;
    for (size_t p = 0; p < programs.size(); ++p) {
      size_t n = programs[p].actions.size();
      while (pc[p] < n && (pc[p] == 0 || passed(after[p][pc[p] - 1])) &&
             passed(before[p][pc[p]])) {
        ++pc[p];
        progress = true;
      }
    }
  }
  for (size_t p = 0; p < programs.size(); ++p) {
    size_t n = programs[p].actions.size();
    if (pc[p] < n || (n > 0 && !passed(after[p][n - 1])))
      return false;
  }
  return true;
}

std::vector<std::vector<int64_t>>
sched::sendReleases(const PipelineGraph &graph,
                    const std::vector<Program> &programs) {
  std::vector<std::vector<int64_t>> release;
  for (size_t p = 0; p < programs.size(); ++p)
    release.push_back(provenSendReleases(graph, programs, p));
  // The window where every program still runs to the end with its sends
  // waited there: a wait blocks until the receiver has posted its receive.
  std::vector<std::vector<int64_t>> windowed = release;
  addWindowReleases(programs, windowed);
  if (windowed != release && runsToCompletion(programs, windowed))
    return windowed;
  return release;
}

std::vector<int64_t> sched::sendReleases(const PipelineGraph &graph,
                                         const std::vector<Program> &programs,
                                         size_t index) {
  return sendReleases(graph, programs)[index];
}
