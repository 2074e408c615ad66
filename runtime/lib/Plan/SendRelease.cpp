//===- SendRelease.cpp - when a posted send's buffer is free --------------===//
//
// Both rules and runsToCompletion reason about links (sender stage,
// receiver stage, activations or gradients), whose k-th send matches their
// k-th receive, and about the compute action that waits for a receive.
// LinkIndex finds both once per call, in one backward pass over each
// program: its sends and receives by peer and kind, and the action that
// waits for each receive (the microbatch's next forward or backward, kept
// as the pass goes). The releases are computed per link, and
// runsToCompletion runs each program from gate to gate. Scanning a program
// once per peer and kind and from every receive to its wait, and stepping
// every program through every action in rounds, took most of a
// simulation's time.
//
//===----------------------------------------------------------------------===//
#include "mllm/runtime/SendRelease.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/STLExtras.h"

#include <algorithm>
#include <iterator>
#include <map>
#include <numeric>
#include <optional>
#include <unordered_map>

using namespace mllm;
using namespace mllm::sched;

namespace {

/// One program's sends to and receives from one peer stage, in program
/// order, per kind of message ([0] activations, [1] gradients): the k-th
/// send of a link matches its k-th receive (the schedule verifier checks
/// it).
struct PeerLinks {
  int peer = 0;
  std::vector<uint32_t> sends[2], recvs[2];
  /// waits[g][k]: the compute action that waits for receive recvs[g][k]:
  /// its microbatch's next forward (activations) or next backward
  /// (gradients); -1: none.
  std::vector<int64_t> waits[2];
  /// release[g][k]: where send sends[g][k] is waited for (sendReleases),
  /// -1: at the end of the iteration.
  std::vector<int64_t> release[2];
};

/// The links of every program, and each stage's program.
class LinkIndex {
public:
  explicit LinkIndex(const std::vector<Program> &programs);

  /// Program `p`'s links, by peer.
  llvm::ArrayRef<PeerLinks> links(size_t p) const { return byProgram[p]; }
  llvm::MutableArrayRef<PeerLinks> links(size_t p) { return byProgram[p]; }
  /// Program `p`'s links with stage `peer`, or null.
  const PeerLinks *find(size_t p, int peer) const {
    const std::vector<PeerLinks> &l = byProgram[p];
    auto it = llvm::partition_point(
        l, [&](const PeerLinks &x) { return x.peer < peer; });
    return it != l.end() && it->peer == peer ? &*it : nullptr;
  }
  /// The program of stage `stage` (the last one labelled so), or null.
  const size_t *programOf(int stage) const {
    auto it = program.find(stage);
    return it == program.end() ? nullptr : &it->second;
  }
  /// Whether no two programs have the same stage label.
  bool distinctStages() const { return program.size() == byProgram.size(); }

private:
  std::vector<std::vector<PeerLinks>> byProgram;
  std::map<int, size_t> program;
};

/// A map from small non-negative keys (peers, microbatches) to values,
/// `none` where unset: an array up to `limit`, a hash map beyond it and
/// for negative keys.
template <typename V>
class SmallKeyMap {
public:
  SmallKeyMap(size_t limit, V none) : limit(limit), none(none) {}
  V get(int32_t key) const {
    if (key >= 0 && static_cast<size_t>(key) < dense.size())
      return dense[static_cast<size_t>(key)];
    if (key >= 0 && static_cast<size_t>(key) < limit)
      return none;
    auto it = sparse.find(key);
    return it == sparse.end() ? none : it->second;
  }
  void set(int32_t key, V value) {
    if (key >= 0 && static_cast<size_t>(key) < limit) {
      auto k = static_cast<size_t>(key);
      if (k >= dense.size())
        dense.resize(std::min(limit, std::max(k + 1, 2 * dense.size())), none);
      dense[k] = value;
    } else {
      sparse[key] = value;
    }
  }

private:
  size_t limit;
  V none;
  std::vector<V> dense;
  std::unordered_map<int32_t, V> sparse;
};

/// One backward pass over the program: its links in reverse, and each
/// microbatch's next forward and next backward after the action, which
/// waits for a receive there.
std::vector<PeerLinks> linksOf(const Program &p) {
  const std::vector<Action> &actions = p.actions;
  std::vector<PeerLinks> links;
  SmallKeyMap<size_t> slotOf(4096, ~size_t(0));
  SmallKeyMap<int64_t> nextForward(4 * actions.size() + 64, -1),
      nextBackward(4 * actions.size() + 64, -1);
  for (size_t i = actions.size(); i-- > 0;) {
    const Action &a = actions[i];
    if (a.kind == ActionKind::Forward) {
      nextForward.set(a.microbatch, static_cast<int64_t>(i));
      continue;
    }
    if (isBackward(a.kind)) {
      nextBackward.set(a.microbatch, static_cast<int64_t>(i));
      continue;
    }
    if (!isComm(a.kind))
      continue;
    size_t slot = slotOf.get(a.peer);
    if (slot == ~size_t(0)) {
      slot = links.size();
      slotOf.set(a.peer, slot);
      links.emplace_back().peer = a.peer;
    }
    PeerLinks &l = links[slot];
    bool grad = isGradMessage(a.kind);
    if (isSend(a.kind)) {
      l.sends[grad].push_back(static_cast<uint32_t>(i));
      continue;
    }
    l.recvs[grad].push_back(static_cast<uint32_t>(i));
    l.waits[grad].push_back(a.kind == ActionKind::RecvActivation
                                ? nextForward.get(a.microbatch)
                                : nextBackward.get(a.microbatch));
  }
  for (PeerLinks &l : links)
    for (int g = 0; g < 2; ++g) {
      std::reverse(l.sends[g].begin(), l.sends[g].end());
      std::reverse(l.recvs[g].begin(), l.recvs[g].end());
      std::reverse(l.waits[g].begin(), l.waits[g].end());
      l.release[g].assign(l.sends[g].size(), -1);
    }
  llvm::sort(links, [](const PeerLinks &a, const PeerLinks &b) {
    return a.peer < b.peer;
  });
  return links;
}

LinkIndex::LinkIndex(const std::vector<Program> &programs) {
  byProgram.reserve(programs.size());
  for (size_t i = 0; i < programs.size(); ++i) {
    byProgram.push_back(linksOf(programs[i]));
    program[programs[i].stage] = i;
  }
}

/// Per program, the forwards that all-reduce over its TP group before each
/// of its actions: counts[i] before action i. Found once per program, the
/// first time a link across TP asks (every program's neighbours ask).
class TpSynced {
public:
  explicit TpSynced(size_t programs) : counts(programs) {}

  /// Program `p`'s counts; `stage` is the stage it runs.
  const std::vector<uint32_t> &of(size_t p, const StageInfo &stage,
                                  const Program &program) {
    std::optional<std::vector<uint32_t>> &c = counts[p];
    if (!c) {
      std::vector<ComputeCollectives> collectives =
          computeCollectives(stage, program);
      c.emplace(program.actions.size() + 1, 0);
      for (size_t i = 0; i < program.actions.size(); ++i)
        (*c)[i + 1] =
            (*c)[i] + (program.actions[i].kind == ActionKind::Forward &&
                       collectives[i].tpAllReduce);
    }
    return *c;
  }

private:
  std::vector<std::optional<std::vector<uint32_t>>> counts;
};

/// The releases of programs[which]'s sends by proven arrival (the first
/// rule), into its links.
void proven(const PipelineGraph &graph, const std::vector<Program> &programs,
            LinkIndex &index, TpSynced &tpSynced, size_t which) {
  const Program &mine = programs[which];
  auto validStage = [&](int s) {
    return s >= 0 && static_cast<size_t>(s) < graph.stages.size();
  };
  if (!validStage(mine.stage))
    return;
  const StageInfo &self = graph.stages[mine.stage];
  using Receive = std::pair<int64_t, size_t>;
  std::vector<Receive> receives, byKind[2];
  for (PeerLinks &ours : index.links(which)) {
    int peer = ours.peer;
    const size_t *q = index.programOf(peer);
    if (peer < 0 || !q || !validStage(peer))
      continue;
    const StageInfo &other = graph.stages[peer];
    // Every rank a send of this stage reaches sends back to it when the
    // peer has no more TP ranks and the same replicas. A peer of more TP
    // ranks sends back from one rank of each TP group the send reaches;
    // where that rank ran a forward (which all-reduces over the group)
    // between taking the message and sending back, it finished it only
    // after every rank of its group had taken theirs.
    if (other.dp != self.dp)
      continue;
    bool acrossTp = other.tp > self.tp;
    // The peer's links with this stage; none: it neither takes nor sends
    // any of this link's messages.
    const PeerLinks *theirs = index.find(*q, mine.stage);
    if (!theirs)
      continue;
    // synced[i]: the peer's TP-all-reducing forwards before its action i.
    const std::vector<uint32_t> *synced =
        acrossTp ? &tpSynced.of(*q, other, programs[*q]) : nullptr;
    // This program's receives from the peer: (wait point, the peer's index
    // of the matching send), by wait point.
    for (int g = 0; g < 2; ++g) {
      byKind[g].clear();
      size_t common = std::min(ours.recvs[g].size(), theirs->sends[g].size());
      for (size_t k = 0; k < common; ++k)
        if (ours.waits[g][k] >= 0)
          byKind[g].emplace_back(ours.waits[g][k], theirs->sends[g][k]);
    }
    receives.clear();
    if (llvm::is_sorted(byKind[0]) && llvm::is_sorted(byKind[1])) {
      receives.resize(byKind[0].size() + byKind[1].size());
      std::merge(byKind[0].begin(), byKind[0].end(), byKind[1].begin(),
                 byKind[1].end(), receives.begin());
    } else {
      llvm::append_range(receives, byKind[0]);
      llvm::append_range(receives, byKind[1]);
      llvm::sort(receives);
    }
    for (int g = 0; g < 2; ++g) {
      size_t common = std::min(ours.sends[g].size(), theirs->recvs[g].size());
      // The first receive waited for after the send was posted (the sends
      // come in program order).
      size_t after = 0;
      for (size_t k = 0; k < common; ++k) {
        auto i = static_cast<int64_t>(ours.sends[g][k]);
        while (after < receives.size() && receives[after].first <= i)
          ++after;
        // The peer has this message once its compute action that waits for
        // the receive has run.
        int64_t taken = theirs->waits[g][k];
        if (taken < 0)
          continue;
        // The first of those whose message the peer sent after taking this
        // one (across TP: with a forward in between).
        for (size_t r = after; r < receives.size(); ++r) {
          size_t sent = receives[r].second;
          if (static_cast<int64_t>(sent) > taken &&
              (!synced || (*synced)[sent] > (*synced)[taken])) {
            ours.release[g][k] = receives[r].first;
            break;
          }
        }
      }
    }
  }
}

/// Program `p`'s releases by action, as sendReleases gives them.
std::vector<int64_t> releasesByAction(const std::vector<Program> &programs,
                                      const LinkIndex &index, size_t p) {
  std::vector<int64_t> release(programs[p].actions.size(), -1);
  for (const PeerLinks &l : index.links(p))
    for (int g = 0; g < 2; ++g)
      for (size_t k = 0; k < l.sends[g].size(); ++k)
        release[l.sends[g][k]] = l.release[g][k];
  return release;
}

/// Program `program` has gone past its action `index`.
struct Gate {
  uint32_t program, index;
};
/// A gate at an action of the program that holds it.
struct GateAt {
  uint32_t action;
  Gate gate;
};

/// The gates of one program by action, from runs of gates each sorted
/// (starting at the indices in `runs`): merged, else sorted.
void sortGates(std::vector<GateAt> &gates, std::vector<size_t> &runs) {
  auto byAction = [](const GateAt &a, const GateAt &b) {
    return a.action < b.action;
  };
  runs.push_back(gates.size());
  bool sorted = true;
  for (size_t r = 0; r + 1 < runs.size() && sorted; ++r)
    sorted = std::is_sorted(gates.begin() + runs[r],
                            gates.begin() + runs[r + 1], byAction);
  if (!sorted) {
    llvm::sort(gates, byAction);
    return;
  }
  std::vector<GateAt> merged;
  for (size_t r = 1; r + 1 < runs.size(); ++r) {
    merged.clear();
    std::merge(gates.begin(), gates.begin() + runs[r], gates.begin() + runs[r],
               gates.begin() + runs[r + 1], std::back_inserter(merged),
               byAction);
    std::copy(merged.begin(), merged.end(), gates.begin());
  }
}

/// Gates by program, each list sorted by action once complete
/// (sortGates); `runs` holds where each sorted run of a list starts.
struct GateLists {
  explicit GateLists(size_t programs) : lists(programs), runs(programs) {}
  /// Starts a run of program `p`'s list.
  void startRun(size_t p) { runs[p].push_back(lists[p].size()); }
  void sort() {
    for (size_t p = 0; p < lists.size(); ++p)
      sortGates(lists[p], runs[p]);
  }
  std::vector<std::vector<GateAt>> lists;
  std::vector<std::vector<size_t>> runs;
};

/// Whether every stage a program sends to or receives from has a program:
/// a message to or from one that has none never arrives.
bool everyPeerRuns(const std::vector<Program> &programs,
                   const LinkIndex &index) {
  for (size_t p = 0; p < programs.size(); ++p)
    for (const PeerLinks &l : index.links(p))
      if (!index.programOf(l.peer))
        return false;
  return true;
}

/// Calls visit(from, out, to, in, g) for every link: `in` of receiver
/// program `to`, matched with `out`, the sends of the sender stage's
/// program `from` to it. Needs everyPeerRuns.
template <typename Visit>
void forEachLink(const std::vector<Program> &programs, const LinkIndex &index,
                 Visit &&visit) {
  for (size_t to = 0; to < programs.size(); ++to)
    for (const PeerLinks &in : index.links(to)) {
      size_t from = *index.programOf(in.peer);
      if (const PeerLinks *out = index.find(from, programs[to].stage))
        for (int g = 0; g < 2; ++g)
          visit(from, *out, to, in, g);
    }
}

/// The gates before one program's compute actions (the messages each
/// waits for were sent), in action order. Each incoming link gives a run:
/// its receives' waits, which grow along the link in a schedule, so the
/// gates are the runs merged as the program goes; where a link's do not
/// grow, all of them sorted instead.
class GatesBefore {
public:
  /// The receives of `in` matched with the sends of `out`, of program
  /// `from`.
  void addLink(size_t from, const PeerLinks &out, const PeerLinks &in, int g) {
    Run run{in.waits[g].data(), out.sends[g].data(), 0,
            std::min(out.sends[g].size(), in.recvs[g].size()),
            static_cast<uint32_t>(from)};
    int64_t last = -1;
    for (size_t k = 0; k < run.end && ordered; ++k)
      if (run.wait[k] >= 0) {
        ordered = run.wait[k] >= last;
        last = run.wait[k];
      }
    runs.push_back(run);
  }
  /// Call once every link is added.
  void start() {
    if (!ordered) {
      for (Run &run : runs)
        for (; run.k < run.end; ++run.k)
          if (run.wait[run.k] >= 0)
            sorted.push_back({static_cast<uint32_t>(run.wait[run.k]),
                              Gate{run.from, run.send[run.k]}});
      llvm::sort(sorted, [](const GateAt &a, const GateAt &b) {
        return a.action < b.action;
      });
      return;
    }
    for (Run &run : runs)
      skip(run);
    pick();
  }
  bool empty() const {
    return ordered ? first == runs.size() : next == sorted.size();
  }
  /// The first gate's action and gate (not empty()).
  size_t action() const {
    if (!ordered)
      return sorted[next].action;
    const Run &run = runs[first];
    return static_cast<size_t>(run.wait[run.k]);
  }
  Gate gate() const {
    if (!ordered)
      return sorted[next].gate;
    const Run &run = runs[first];
    return Gate{run.from, run.send[run.k]};
  }
  void pop() {
    if (!ordered) {
      ++next;
      return;
    }
    Run &run = runs[first];
    ++run.k;
    skip(run);
    pick();
  }

private:
  struct Run {
    const int64_t *wait;
    const uint32_t *send;
    size_t k, end;
    uint32_t from;
  };
  /// Past the receives no action waits for.
  static void skip(Run &run) {
    while (run.k < run.end && run.wait[run.k] < 0)
      ++run.k;
  }
  /// `first`: the run whose next gate comes first.
  void pick() {
    first = runs.size();
    for (size_t r = 0; r < runs.size(); ++r)
      if (runs[r].k < runs[r].end &&
          (first == runs.size() ||
           runs[r].wait[runs[r].k] < runs[first].wait[runs[first].k]))
        first = r;
  }

  std::vector<Run> runs;
  bool ordered = true;
  size_t first = 0;
  std::vector<GateAt> sorted;
  size_t next = 0;
};

std::vector<GatesBefore> gatesBefore(const std::vector<Program> &programs,
                                     const LinkIndex &index) {
  std::vector<GatesBefore> before(programs.size());
  forEachLink(programs, index,
              [&](size_t from, const PeerLinks &out, size_t to,
                  const PeerLinks &in,
                  int g) { before[to].addLink(from, out, in, g); });
  for (GatesBefore &b : before)
    b.start();
  return before;
}

/// The gates after actions: the sends released there were posted as
/// receives. releaseOf(from, out, g, k): the release of send k of
/// out.sends[g], a link of program `from`.
template <typename ReleaseOf>
GateLists gatesAfter(const std::vector<Program> &programs,
                     const LinkIndex &index, ReleaseOf &&releaseOf) {
  GateLists after(programs.size());
  forEachLink(programs, index,
              [&](size_t from, const PeerLinks &out, size_t to,
                  const PeerLinks &in, int g) {
                size_t common =
                    std::min(out.sends[g].size(), in.recvs[g].size());
                size_t actions = programs[from].actions.size();
                after.startRun(from);
                for (size_t k = 0; k < common; ++k) {
                  // A release past the program's end is never waited for.
                  int64_t at = releaseOf(from, out, g, k);
                  if (at >= 0 && static_cast<size_t>(at) < actions)
                    after.lists[from].push_back(
                        {static_cast<uint32_t>(at),
                         Gate{static_cast<uint32_t>(to), in.recvs[g][k]}});
                }
              });
  return after;
}

/// Whether every program runs to its end under the gates. A program goes
/// from action x to x + 1 once the gates after action x - 1 and before
/// action x are open, and ends once those after its last action are.
bool runGates(const std::vector<Program> &programs,
              std::vector<GatesBefore> &before, GateLists &after) {
  after.sort();
  // Every program runs as far as its gates let it (straight to the next
  // gated action), then waits on the gate that stopped it until that
  // gate's program has gone past the gate's action. Gates only open as
  // programs go on, so the programs end where running them in any order
  // would leave them.
  const size_t n = programs.size();
  std::vector<size_t> pc(n, 0), nextAfter(n, 0);
  auto open = [&](const Gate &g) { return pc[g.program] > g.index; };
  // waiting[q]: (program, action of q it waits for q to go past).
  std::vector<std::vector<Gate>> waiting(n);
  std::vector<size_t> ready(n);
  std::iota(ready.rbegin(), ready.rend(), size_t(0));
  while (!ready.empty()) {
    size_t p = ready.back();
    ready.pop_back();
    const size_t actions = programs[p].actions.size();
    GatesBefore &b = before[p];
    const std::vector<GateAt> &a = after.lists[p];
    size_t &ai = nextAfter[p], &x = pc[p];
    std::optional<Gate> stop;
    while (!stop) {
      size_t next = actions;
      if (!b.empty())
        next = std::min(next, b.action());
      if (ai < a.size())
        next = std::min<size_t>(next, a[ai].action + size_t(1));
      x = std::max(x, next);
      if (x >= actions)
        break;
      for (; ai < a.size() && a[ai].action + size_t(1) == x; ++ai)
        if (!open(a[ai].gate)) {
          stop = a[ai].gate;
          break;
        }
      for (; !stop && !b.empty() && b.action() == x; b.pop())
        if (!open(b.gate())) {
          stop = b.gate();
          break;
        }
      if (!stop)
        ++x;
    }
    if (stop)
      waiting[stop->program].push_back(
          Gate{static_cast<uint32_t>(p), stop->index});
    llvm::erase_if(waiting[p], [&](const Gate &w) {
      if (pc[p] <= w.index)
        return false;
      ready.push_back(w.program);
      return true;
    });
  }
  for (size_t p = 0; p < n; ++p) {
    if (pc[p] < programs[p].actions.size())
      return false;
    // The gates after the last action (the others were passed).
    const std::vector<GateAt> &a = after.lists[p];
    for (size_t i = nextAfter[p]; i < a.size(); ++i)
      if (!open(a[i].gate))
        return false;
  }
  return true;
}

/// The sends that stay to the end under proven arrival, released instead at
/// the end of the action that posts the kWindow-th later send of the same
/// link: at most kWindow + 1 of a link's messages in flight.
constexpr size_t kWindow = 2;

/// Adds the window's releases to the proven ones (in `index`) where every
/// program still runs to its end with them.
void addWindowReleases(const std::vector<Program> &programs, LinkIndex &index) {
  // The releases it sets, and the gates after the actions where it waits
  // for those sends (for distinct stage labels: a gate's programs are then
  // the ones of its link).
  std::vector<int64_t *> added;
  GateLists after(programs.size());
  for (size_t p = 0; p < programs.size(); ++p)
    for (PeerLinks &l : index.links(p)) {
      const size_t *to = index.programOf(l.peer);
      const PeerLinks *in = to ? index.find(*to, programs[p].stage) : nullptr;
      for (int g = 0; g < 2; ++g) {
        const std::vector<uint32_t> &sends = l.sends[g];
        after.startRun(p);
        for (size_t k = 0; k + kWindow < sends.size(); ++k) {
          if (l.release[g][k] >= 0)
            continue;
          l.release[g][k] = static_cast<int64_t>(sends[k + kWindow]);
          added.push_back(&l.release[g][k]);
          if (in && k < in->recvs[g].size())
            after.lists[p].push_back(
                {sends[k + kWindow],
                 Gate{static_cast<uint32_t>(*to), in->recvs[g][k]}});
        }
      }
    }
  if (added.empty())
    return;
  bool runs = false;
  if (everyPeerRuns(programs, index)) {
    std::vector<GatesBefore> before = gatesBefore(programs, index);
    // A proven release is at a compute action that waits for a message the
    // peer sent after taking this one: the gate before that action opens
    // the one after it. So only the window's gates are added, where stage
    // labels are distinct (else the gates of every release).
    if (!index.distinctStages())
      after = gatesAfter(programs, index,
                         [](size_t, const PeerLinks &out, int g, size_t k) {
                           return out.release[g][k];
                         });
    runs = runGates(programs, before, after);
  }
  if (!runs)
    for (int64_t *release : added)
      *release = -1;
}

/// The index of `programs` with both rules' releases.
LinkIndex releaseIndex(const PipelineGraph &graph,
                       const std::vector<Program> &programs) {
  LinkIndex index(programs);
  TpSynced tpSynced(programs.size());
  for (size_t p = 0; p < programs.size(); ++p)
    proven(graph, programs, index, tpSynced, p);
  // The window where every program still runs to the end with its sends
  // waited there: a wait blocks until the receiver has posted its receive.
  addWindowReleases(programs, index);
  return index;
}

} // namespace

std::vector<int64_t>
sched::provenSendReleases(const PipelineGraph &graph,
                          const std::vector<Program> &programs, size_t index) {
  LinkIndex links(programs);
  TpSynced tpSynced(programs.size());
  proven(graph, programs, links, tpSynced, index);
  return releasesByAction(programs, links, index);
}

bool sched::runsToCompletion(const std::vector<Program> &programs,
                             const std::vector<std::vector<int64_t>> &release) {
  LinkIndex index(programs);
  if (!everyPeerRuns(programs, index))
    return false;
  std::vector<GatesBefore> before = gatesBefore(programs, index);
  GateLists after = gatesAfter(
      programs, index, [&](size_t from, const PeerLinks &out, int g, size_t k) {
        return release[from][out.sends[g][k]];
      });
  return runGates(programs, before, after);
}

std::vector<std::vector<int64_t>>
sched::sendReleases(const PipelineGraph &graph,
                    const std::vector<Program> &programs) {
  LinkIndex index = releaseIndex(graph, programs);
  std::vector<std::vector<int64_t>> release;
  release.reserve(programs.size());
  for (size_t p = 0; p < programs.size(); ++p)
    release.push_back(releasesByAction(programs, index, p));
  return release;
}

std::vector<int64_t> sched::sendReleases(const PipelineGraph &graph,
                                         const std::vector<Program> &programs,
                                         size_t index) {
  return sendReleases(graph, programs)[index];
}

std::vector<std::vector<LinkSendReleases>>
sched::sendReleasesByLink(const PipelineGraph &graph,
                          const std::vector<Program> &programs) {
  LinkIndex index = releaseIndex(graph, programs);
  std::vector<std::vector<LinkSendReleases>> byLink(programs.size());
  for (size_t p = 0; p < programs.size(); ++p)
    for (PeerLinks &l : index.links(p))
      for (int g = 0; g < 2; ++g)
        if (!l.sends[g].empty())
          byLink[p].push_back({l.peer, g == 1, std::move(l.release[g])});
  return byLink;
}
