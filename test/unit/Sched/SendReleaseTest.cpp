//===- SendReleaseTest.cpp - sendReleases against its first version -------===//
//
// sched::sendReleases, provenSendReleases and runsToCompletion find each
// program's links and every receive's wait once (LinkIndex) and run the
// programs from a ready list. Their first version, kept here as the
// reference (one scan of a program per peer and kind, a scan from every
// receive to its wait, rounds over every program), must give the same
// answers: on random pipelines of every schedule kind, on random edits of
// them (peers out of range, reordered and dropped actions, stage labels
// permuted, odd microbatches) and on random releases, deadlocks included.
// sendReleasesByLink must give sendReleases' releases link by link.
//
//===----------------------------------------------------------------------===//
#include "mllm/runtime/SendRelease.h"
#include "mllm/Sched/Generate.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/STLExtras.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <tuple>

using namespace mllm::sched;

namespace reference {

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

std::vector<int64_t> provenSendReleases(const PipelineGraph &graph,
                                        const std::vector<Program> &programs,
                                        size_t index) {
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
    // Every rank a send of this stage reaches sends back to it when the
    // peer has no more TP ranks and the same replicas; a peer of more TP
    // ranks proves it where it runs a forward (which all-reduces over TP)
    // between taking the message and sending back.
    if (other.dp != self.dp)
      continue;
    bool acrossTp = other.tp > self.tp;
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
        // A forward of the peer in [taken, sent).
        auto forwardBefore = [&](size_t sent) {
          for (auto a = static_cast<size_t>(taken); a < sent; ++a)
            if (theirs.actions[a].kind == ActionKind::Forward)
              return true;
          return false;
        };
        // The first receive waited for after the send was posted whose
        // message the peer sent after taking this one.
        auto it = std::upper_bound(
            receives.begin(), receives.end(), i,
            [](int64_t v, const std::pair<int64_t, size_t> &r) {
              return v < r.first;
            });
        for (; it != receives.end(); ++it)
          if (static_cast<int64_t>(it->second) > taken &&
              (!acrossTp || forwardBefore(it->second))) {
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

bool runsToCompletion(const std::vector<Program> &programs,
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
sendReleases(const PipelineGraph &graph, const std::vector<Program> &programs) {
  std::vector<std::vector<int64_t>> release;
  for (size_t p = 0; p < programs.size(); ++p)
    release.push_back(reference::provenSendReleases(graph, programs, p));
  // The window where every program still runs to the end with its sends
  // waited there: a wait blocks until the receiver has posted its receive.
  std::vector<std::vector<int64_t>> windowed = release;
  addWindowReleases(programs, windowed);
  if (windowed != release && reference::runsToCompletion(programs, windowed))
    return windowed;
  return release;
}

} // namespace reference

namespace {

int pick(std::mt19937 &rng, int lo, int hi) {
  return std::uniform_int_distribution<int>(lo, hi)(rng);
}

/// A random pipeline: 1-3 encoders of 1-3 stages fanning into an LLM of 1-3
/// stages, random frozen flags, 1-12 microbatches, tp 1-2, dp 1-2.
PipelineGraph randomGraph(std::mt19937 &rng) {
  PipelineGraph g;
  g.microbatches = pick(rng, 1, 12);
  std::vector<int> lasts;
  std::vector<bool> trainsAbove;
  auto add = [&](const std::string &name, bool llm, std::vector<int> prev) {
    StageInfo s;
    s.name = name;
    s.part = llm ? "llm" : name.substr(0, 2);
    s.isLLM = llm;
    s.prev = prev;
    bool trains = pick(rng, 0, 2) == 0, upstream = false;
    for (int p : prev) {
      upstream = upstream || trainsAbove[p];
      g.stages[p].next.push_back(static_cast<int>(g.stages.size()));
      s.gradToPrev.push_back(trainsAbove[p]);
    }
    s.needsWeightGrad = trains;
    s.needsInputGrad = upstream;
    s.outputBytes = 64 * pick(rng, 1, 50);
    s.trainableParams = trains ? 1000 : 0;
    s.fwd = 1;
    s.bwdInput = upstream ? 1 : 0;
    s.bwdWeight = trains ? 1 : 0;
    s.tp = pick(rng, 1, 2);
    s.dp = pick(rng, 0, 3) == 0 ? 2 : 1;
    trainsAbove.push_back(upstream || trains);
    g.stages.push_back(s);
  };
  int encoders = pick(rng, 1, 3);
  for (int e = 0; e < encoders; ++e) {
    int stages = pick(rng, 1, 3);
    for (int s = 0; s < stages; ++s) {
      int idx = static_cast<int>(g.stages.size());
      add("e" + std::to_string(e) + "_" + std::to_string(s), false,
          s ? std::vector<int>{idx - 1} : std::vector<int>{});
    }
    lasts.push_back(static_cast<int>(g.stages.size()) - 1);
  }
  int llm = pick(rng, 1, 3);
  for (int s = 0; s < llm; ++s) {
    int idx = static_cast<int>(g.stages.size());
    add("l" + std::to_string(s), true, s ? std::vector<int>{idx - 1} : lasts);
  }
  g.stages.back().outputBytes = 0;
  return g;
}

/// Random edits of a schedule: actions swapped with their neighbour or
/// dropped, a peer moved (to another stage, -1 or past the last stage), a
/// microbatch changed (also to -1 or far away), stage labels permuted or
/// moved past the last stage. Stage labels stay distinct.
void mutate(std::mt19937 &rng, std::vector<Program> &programs, int stages) {
  int edits = pick(rng, 1, 6);
  for (int e = 0; e < edits; ++e) {
    Program &p = programs[pick(rng, 0, static_cast<int>(programs.size()) - 1)];
    if (p.actions.empty())
      continue;
    auto i = static_cast<size_t>(
        pick(rng, 0, static_cast<int>(p.actions.size()) - 1));
    switch (pick(rng, 0, 5)) {
    case 0:
      if (i + 1 < p.actions.size())
        std::swap(p.actions[i], p.actions[i + 1]);
      break;
    case 1:
      p.actions.erase(p.actions.begin() + static_cast<std::ptrdiff_t>(i));
      break;
    case 2:
      p.actions[i].peer = pick(rng, -1, stages);
      break;
    case 3:
      p.actions[i].microbatch =
          pick(rng, 0, 3) == 0 ? pick(rng, -1, 1) * 1000000 : pick(rng, -1, 12);
      break;
    case 4: {
      auto j = static_cast<size_t>(
          pick(rng, 0, static_cast<int>(programs.size()) - 1));
      std::swap(p.stage, programs[j].stage);
      break;
    }
    default:
      // A label no other program has.
      p.stage = stages + pick(rng, 1, 3) * 100 + static_cast<int>(i);
      for (const Program &q : programs)
        if (&q != &p && q.stage == p.stage)
          p.stage = -1000 - static_cast<int>(i);
      break;
    }
  }
}

/// Random releases: each send released at a random later action (or
/// earlier, or not at all).
std::vector<std::vector<int64_t>>
randomReleases(std::mt19937 &rng, const std::vector<Program> &programs) {
  std::vector<std::vector<int64_t>> release;
  for (const Program &p : programs) {
    std::vector<int64_t> r(p.actions.size(), -1);
    auto n = static_cast<int>(p.actions.size());
    for (int i = 0; i < n; ++i)
      if (isSend(p.actions[i].kind) && pick(rng, 0, 2) != 0)
        r[i] = pick(rng, 0, 4) == 0 ? pick(rng, 0, n - 1)
                                    : pick(rng, i, std::min(n - 1, i + 8));
    release.push_back(std::move(r));
  }
  return release;
}

/// Whether the programs' stage labels are distinct (the reference reads
/// past a program's actions otherwise).
bool distinctStages(const std::vector<Program> &programs) {
  std::vector<int> labels;
  for (const Program &p : programs)
    labels.push_back(p.stage);
  llvm::sort(labels);
  return std::adjacent_find(labels.begin(), labels.end()) == labels.end();
}

void expectSame(const PipelineGraph &g, const std::vector<Program> &programs,
                std::mt19937 &rng, const std::string &where, int &windowed,
                int &deadlocks) {
  ASSERT_TRUE(distinctStages(programs)) << where;
  for (size_t p = 0; p < programs.size(); ++p)
    ASSERT_EQ(provenSendReleases(g, programs, p),
              reference::provenSendReleases(g, programs, p))
        << where << ", program " << p;
  std::vector<std::vector<int64_t>> all = sendReleases(g, programs);
  ASSERT_EQ(all, reference::sendReleases(g, programs)) << where;
  // The same by link: each program's sends to a peer of a kind, in program
  // order; links by peer, activations first.
  std::vector<std::vector<LinkSendReleases>> byLink =
      sendReleasesByLink(g, programs);
  ASSERT_EQ(byLink.size(), programs.size()) << where;
  for (size_t p = 0; p < programs.size(); ++p) {
    std::map<std::pair<int, bool>, std::vector<int64_t>> want;
    for (size_t i = 0; i < programs[p].actions.size(); ++i) {
      const Action &a = programs[p].actions[i];
      if (isSend(a.kind))
        want[{a.peer, isGradMessage(a.kind)}].push_back(all[p][i]);
    }
    ASSERT_EQ(byLink[p].size(), want.size()) << where << ", program " << p;
    auto it = want.begin();
    for (const LinkSendReleases &l : byLink[p]) {
      EXPECT_EQ(std::make_pair(l.peer, l.grad), it->first) << where;
      EXPECT_EQ(l.release, it->second) << where;
      ++it;
    }
  }
  for (size_t p = 0; p < programs.size(); ++p)
    windowed += all[p] != provenSendReleases(g, programs, p);
  EXPECT_EQ(runsToCompletion(programs, all),
            reference::runsToCompletion(programs, all))
      << where;
  for (int r = 0; r < 3; ++r) {
    std::vector<std::vector<int64_t>> release = randomReleases(rng, programs);
    bool runs = runsToCompletion(programs, release);
    ASSERT_EQ(runs, reference::runsToCompletion(programs, release))
        << where << ", random releases " << r;
    deadlocks += !runs;
  }
}

TEST(SendRelease, SameAsTheFirstVersionOnRandomPipelines) {
  std::mt19937 rng(20261205);
  int windowed = 0, deadlocks = 0;
  for (int iter = 0; iter < 200; ++iter) {
    PipelineGraph g = randomGraph(rng);
    for (ScheduleKind kind :
         {ScheduleKind::MultimodalOneFOneB, ScheduleKind::LinearOneFOneB,
          ScheduleKind::GPipe}) {
      std::vector<Program> programs = generateSchedule(g, kind);
      expectSame(g, programs, rng, "iteration " + std::to_string(iter),
                 windowed, deadlocks);
    }
  }
  // Both rules and both answers of runsToCompletion were met.
  EXPECT_GT(windowed, 50);
  EXPECT_GT(deadlocks, 50);
}

TEST(SendRelease, SameAsTheFirstVersionOnEditedSchedules) {
  std::mt19937 rng(20261206);
  int windowed = 0, deadlocks = 0;
  for (int iter = 0; iter < 400; ++iter) {
    PipelineGraph g = randomGraph(rng);
    const ScheduleKind kinds[] = {ScheduleKind::MultimodalOneFOneB,
                                  ScheduleKind::LinearOneFOneB,
                                  ScheduleKind::GPipe};
    ScheduleKind kind = kinds[pick(rng, 0, 2)];
    std::vector<Program> programs = generateSchedule(g, kind);
    mutate(rng, programs, static_cast<int>(g.stages.size()));
    expectSame(g, programs, rng, "iteration " + std::to_string(iter), windowed,
               deadlocks);
  }
  EXPECT_GT(windowed, 100);
  EXPECT_GT(deadlocks, 50);
}

TEST(SendRelease, ReceivesWaitedForOutOfOrder) {
  // Stage 1 receives activations 0 and 1 but forwards 1 first, so the
  // waits of its link from stage 0 do not grow along it. Forward 1 needs
  // stage 0's second send, which stage 0 posts only after the backward of
  // microbatch 0, which needs the gradient stage 1 sends after forward 0:
  // a cycle, whichever order the gates are met in.
  auto act = [](ActionKind kind, int mb, int peer = -1) {
    Action a;
    a.kind = kind;
    a.microbatch = mb;
    a.peer = peer;
    a.bytes = 4;
    return a;
  };
  std::vector<Program> programs(2);
  programs[0].stage = 0;
  programs[0].actions = {
      act(ActionKind::Forward, 0),     act(ActionKind::SendActivation, 0, 1),
      act(ActionKind::RecvGrad, 0, 1), act(ActionKind::BackwardInput, 0),
      act(ActionKind::Forward, 1),     act(ActionKind::SendActivation, 1, 1)};
  programs[1].stage = 1;
  programs[1].actions = {
      act(ActionKind::RecvActivation, 0, 0),
      act(ActionKind::RecvActivation, 1, 0), act(ActionKind::Forward, 1),
      act(ActionKind::Forward, 0), act(ActionKind::SendGrad, 0, 0)};
  std::vector<std::vector<int64_t>> none = {std::vector<int64_t>(6, -1),
                                            std::vector<int64_t>(5, -1)};
  EXPECT_FALSE(reference::runsToCompletion(programs, none));
  EXPECT_FALSE(runsToCompletion(programs, none));
  // Forward 0 and its gradient first, it runs.
  programs[1].actions = {
      act(ActionKind::RecvActivation, 0, 0),
      act(ActionKind::RecvActivation, 1, 0), act(ActionKind::Forward, 0),
      act(ActionKind::SendGrad, 0, 0), act(ActionKind::Forward, 1)};
  EXPECT_TRUE(reference::runsToCompletion(programs, none));
  EXPECT_TRUE(runsToCompletion(programs, none));
}

TEST(SendRelease, NoProgramsAndNoActions) {
  PipelineGraph g;
  std::vector<Program> none;
  EXPECT_TRUE(sendReleases(g, none).empty());
  EXPECT_TRUE(runsToCompletion(none, {}));
  std::vector<Program> empty(2);
  empty[1].stage = 1;
  g.stages.resize(2);
  EXPECT_EQ(sendReleases(g, empty),
            std::vector<std::vector<int64_t>>(2, std::vector<int64_t>()));
  EXPECT_TRUE(runsToCompletion(empty, {{}, {}}));
}

} // namespace
