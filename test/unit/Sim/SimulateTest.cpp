//===- SimulateTest.cpp - the pipeline simulator against closed forms -----===//
//
// The programs here are built by hand (plain 1F1B and GPipe on a linear
// pipeline), so that the simulator is checked independently of the
// schedule generator.
//
//===----------------------------------------------------------------------===//
#include "mllm/Sched/Generate.h"
#include "mllm/Sim/Trace.h"
#include "mllm/runtime/SendRelease.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <tuple>

using namespace mllm::sched;

namespace {

/// A linear pipeline of `p` identical stages: forward `f`, input-gradient
/// backward `bd`, weight-gradient backward `bw` seconds per microbatch. The
/// first `frozen` stages run no backward. One GPU per stage, ranks 0..p-1.
PipelineGraph linear(int p, int64_t m, double f, double bd, double bw,
                     int frozen = 0) {
  PipelineGraph g;
  g.microbatches = m;
  g.gpusPerNode = 8;
  for (int i = 0; i < p; ++i) {
    StageInfo s;
    s.name = "s" + std::to_string(i);
    s.part = "llm";
    s.isLLM = true;
    if (i > 0)
      s.prev = {i - 1};
    if (i + 1 < p)
      s.next = {i + 1};
    s.fwd = f;
    bool trains = i >= frozen;
    s.needsInputGrad = trains && bd > 0;
    s.needsWeightGrad = trains && bw > 0;
    // A frozen stage's backward times in the graph must not matter: the
    // programs decide what runs.
    s.bwdInput = bd;
    s.bwdWeight = bw;
    if (i > 0)
      s.gradToPrev = {i - 1 >= frozen};
    s.firstRank = i;
    g.stages.push_back(s);
  }
  return g;
}

Action act(ActionKind kind, int mb, int peer = -1, int64_t bytes = 0) {
  Action a;
  a.kind = kind;
  a.microbatch = mb;
  a.peer = peer;
  a.bytes = bytes;
  return a;
}

/// Plain 1F1B on a linear pipeline, written out by hand. Stage i warms up
/// with min(p-1-i, m) forwards; in the steady state it receives and runs
/// the next forward, sends its output (sends never block) and then receives
/// the gradient for the next backward. Frozen stages (no backward) only
/// forward.
std::vector<Program> oneFOneB(const PipelineGraph &g, int64_t bytes = 0) {
  int p = static_cast<int>(g.stages.size());
  int m = static_cast<int>(g.microbatches);
  std::vector<Program> programs(p);
  for (int i = 0; i < p; ++i) {
    const StageInfo &s = g.stages[i];
    auto &out = programs[i].actions;
    programs[i].stage = i;
    bool hasPrev = i > 0, hasNext = i + 1 < p;
    bool backward = s.needsInputGrad || s.needsWeightGrad;
    bool gradToPrev = hasPrev && s.gradToPrev[0];
    auto fwd = [&](int k) {
      if (hasPrev)
        out.push_back(act(ActionKind::RecvActivation, k, i - 1, bytes));
      out.push_back(act(ActionKind::Forward, k));
    };
    auto bwd = [&](int j) {
      if (s.needsInputGrad)
        out.push_back(act(ActionKind::BackwardInput, j));
      if (s.needsWeightGrad)
        out.push_back(act(ActionKind::BackwardWeight, j));
      if (gradToPrev)
        out.push_back(act(ActionKind::SendGrad, j, i - 1, bytes));
    };
    if (!backward) {
      for (int k = 0; k < m; ++k) {
        fwd(k);
        if (hasNext)
          out.push_back(act(ActionKind::SendActivation, k, i + 1, bytes));
      }
      continue;
    }
    int warmup = std::min(p - 1 - i, m);
    for (int k = 0; k < warmup; ++k) {
      fwd(k);
      if (hasNext)
        out.push_back(act(ActionKind::SendActivation, k, i + 1, bytes));
    }
    for (int j = 0; j < m - warmup; ++j) {
      int k = j + warmup;
      fwd(k);
      if (hasNext) {
        out.push_back(act(ActionKind::SendActivation, k, i + 1, bytes));
        out.push_back(act(ActionKind::RecvGrad, j, i + 1, bytes));
      }
      bwd(j);
    }
    for (int j = m - warmup; j < m; ++j) {
      if (hasNext)
        out.push_back(act(ActionKind::RecvGrad, j, i + 1, bytes));
      bwd(j);
    }
  }
  return programs;
}

/// GPipe by hand: every forward, then every backward.
std::vector<Program> gpipe(const PipelineGraph &g) {
  int p = static_cast<int>(g.stages.size());
  int m = static_cast<int>(g.microbatches);
  std::vector<Program> programs(p);
  for (int i = 0; i < p; ++i) {
    auto &out = programs[i].actions;
    for (int k = 0; k < m; ++k) {
      if (i > 0)
        out.push_back(act(ActionKind::RecvActivation, k, i - 1));
      out.push_back(act(ActionKind::Forward, k));
      if (i + 1 < p)
        out.push_back(act(ActionKind::SendActivation, k, i + 1));
    }
    for (int j = 0; j < m; ++j) {
      if (i + 1 < p)
        out.push_back(act(ActionKind::RecvGrad, j, i + 1));
      out.push_back(act(ActionKind::BackwardInput, j));
      if (i > 0)
        out.push_back(act(ActionKind::SendGrad, j, i - 1));
    }
  }
  return programs;
}

SimResult run(const PipelineGraph &g, const std::vector<Program> &programs,
              const SimOptions &options = SimOptions()) {
  auto result = simulate(g, programs, options);
  if (!result) {
    ADD_FAILURE() << llvm::toString(result.takeError());
    return SimResult();
  }
  return std::move(*result);
}

int64_t countActions(const std::vector<Program> &programs) {
  int64_t n = 0;
  for (const auto &p : programs)
    n += static_cast<int64_t>(p.actions.size());
  return n;
}

//===----------------------------------------------------------------------===//
// Closed forms
//===----------------------------------------------------------------------===//

class Uniform1F1B
    : public testing::TestWithParam<std::tuple<int, int, double, double>> {};

// p uniform stages, m microbatches, no communication cost:
// iteration = (m + p - 1)(f + b), bubble = (p - 1) / (m + p - 1).
TEST_P(Uniform1F1B, ClosedForm) {
  auto [p, m, f, b] = GetParam();
  PipelineGraph g = linear(p, m, f, b, 0);
  auto programs = oneFOneB(g);
  SimResult r = run(g, programs);
  double expected = (m + p - 1) * (f + b);
  EXPECT_NEAR(r.iterationTime, expected, 1e-9 * expected);
  ASSERT_EQ(r.stages.size(), static_cast<size_t>(p));
  for (int i = 0; i < p; ++i) {
    SCOPED_TRACE(i);
    EXPECT_NEAR(r.stages[i].bubble, double(p - 1) / (m + p - 1), 1e-9);
    EXPECT_NEAR(r.stages[i].busy, m * (f + b), 1e-9 * expected);
    EXPECT_NEAR(r.stages[i].fwd, f, 1e-12);
    EXPECT_NEAR(r.stages[i].bwdInput, b, 1e-12);
    EXPECT_DOUBLE_EQ(r.stages[i].bwdWeight, 0);
    EXPECT_EQ(r.stages[i].comm, 0);
  }
  EXPECT_EQ(r.eventsSimulated, countActions(programs));
  EXPECT_EQ(static_cast<int64_t>(r.events.size()), countActions(programs));
}

INSTANTIATE_TEST_SUITE_P(
    Simulate, Uniform1F1B,
    testing::Values(std::make_tuple(1, 1, 1.0, 2.0),
                    std::make_tuple(2, 4, 1.0, 2.0),
                    std::make_tuple(4, 8, 1.0, 2.0),
                    std::make_tuple(4, 2, 1.0, 2.0), // fewer microbatches
                    std::make_tuple(8, 64, 0.010, 0.021),
                    std::make_tuple(3, 3, 0.5, 0.5)));

// Split backward (Bd then Bw) and recompute: b = bd + recompute + bw.
TEST(Simulate, SplitBackwardAndRecompute) {
  int p = 3, m = 6;
  PipelineGraph g = linear(p, m, 1.0, 1.5, 0.5);
  for (auto &s : g.stages)
    s.recompute = 1.0;
  SimResult r = run(g, oneFOneB(g));
  EXPECT_NEAR(r.iterationTime, (m + p - 1) * (1.0 + 1.5 + 1.0 + 0.5), 1e-9);
  // Reported apart, as mllmc --explain reports them.
  EXPECT_DOUBLE_EQ(r.stages[1].bwdInput, 1.5);
  EXPECT_DOUBLE_EQ(r.stages[1].recompute, 1.0);
  EXPECT_DOUBLE_EQ(r.stages[1].bwdWeight, 0.5);
}

// A stage with only a weight-gradient backward carries the recompute there.
TEST(Simulate, RecomputeWithoutInputGrad) {
  PipelineGraph g = linear(1, 2, 1.0, 0, 0.5);
  g.stages[0].recompute = 1.0;
  SimResult r = run(g, oneFOneB(g));
  EXPECT_DOUBLE_EQ(r.stages[0].bwdWeight, 0.5);
  EXPECT_DOUBLE_EQ(r.stages[0].recompute, 1.0);
  EXPECT_NEAR(r.iterationTime, 2 * (1.0 + 1.5), 1e-12);
}

// GPipe: the same iteration time as 1F1B without communication, but every
// microbatch is in flight at once.
TEST(Simulate, GPipeClosedFormAndMemory) {
  int p = 4, m = 8;
  PipelineGraph g = linear(p, m, 1.0, 2.0, 0);
  for (auto &s : g.stages) {
    s.staticBytes = 1000;
    s.activationBytesPerMicrobatch = 10;
  }
  SimResult r = run(g, gpipe(g));
  EXPECT_NEAR(r.iterationTime, (m + p - 1) * 3.0, 1e-9);
  for (int i = 0; i < p; ++i) {
    EXPECT_EQ(r.stages[i].maxInFlight, m);
    EXPECT_EQ(r.stages[i].peakMemory, 1000 + 10 * m);
  }
}

// 1F1B keeps min(p - i, m) microbatches in flight on stage i.
TEST(Simulate, OneFOneBMemory) {
  int p = 4;
  for (int m : {2, 8}) {
    PipelineGraph g = linear(p, m, 1.0, 2.0, 0);
    for (auto &s : g.stages) {
      s.staticBytes = 1 << 20;
      s.activationBytesPerMicrobatch = 1000;
    }
    SimResult r = run(g, oneFOneB(g));
    for (int i = 0; i < p; ++i) {
      SCOPED_TRACE(i);
      EXPECT_EQ(r.stages[i].maxInFlight, std::min(p - i, m));
      EXPECT_EQ(r.stages[i].peakMemory, (1 << 20) + 1000 * std::min(p - i, m));
    }
  }
}

// The first k stages are frozen (no backward, no gradients sent to them):
// they only forward, and the rest is a (p - k)-stage 1F1B fed one forward
// late per frozen stage: iteration = k f + (m + p - k - 1)(f + b). The graph
// gives the frozen stages backward times, which must not count.
TEST(Simulate, FrozenStagesHaveNoBackward) {
  for (int k : {1, 2}) {
    SCOPED_TRACE(k);
    int p = 4, m = 8;
    double f = 1.0, b = 2.0;
    PipelineGraph g = linear(p, m, f, b, 0, /*frozen=*/k);
    for (auto &s : g.stages) {
      s.staticBytes = 500;
      s.activationBytesPerMicrobatch = 7;
    }
    SimResult r = run(g, oneFOneB(g));
    EXPECT_NEAR(r.iterationTime, k * f + (m + p - k - 1) * (f + b), 1e-9);
    for (int i = 0; i < k; ++i) {
      EXPECT_DOUBLE_EQ(r.stages[i].bwdInput, 0);
      EXPECT_DOUBLE_EQ(r.stages[i].bwdWeight, 0);
      EXPECT_NEAR(r.stages[i].busy, m * f, 1e-9);
      // Frozen stages keep no activations for a backward.
      EXPECT_EQ(r.stages[i].maxInFlight, 0);
      EXPECT_EQ(r.stages[i].peakMemory, 500);
    }
    for (int i = k; i < p; ++i)
      EXPECT_EQ(r.stages[i].maxInFlight, std::min(p - i, m));
  }
}

// Two stages on two nodes, each activation/gradient taking c seconds.
// Sends do not block, so with stage 0's warm-up of one forward two
// microbatches are in flight and half of the round trip hides: writing X(k)
// for the end of stage 1's B(k), X(0) = 2f + b + c, X(1) = X(0) + f + b, and
// from then on X(k + 1) = X(k - 1) + 2(f + b + c) (gradient k - 1 to stage
// 0, its B(k - 1), F(k + 1), the activation back, stage 1's F, B). Stage 0's
// last backward ends the iteration c + b after X(m - 1):
// (m + 1)(f + b) + 2 ceil(m / 2) c.
TEST(Simulate, CommunicationOnTwoStages) {
  int m = 5;
  double f = 1.0, b = 2.0;
  int64_t bytes = 1'000'000;
  PipelineGraph g = linear(2, m, f, b, 0);
  g.gpusPerNode = 1; // the two stages on different nodes
  g.intraNodeBandwidth = 1e9;
  g.interNodeBandwidth = 1e8;
  double c = bytes / 1e8; // 10 ms
  EXPECT_DOUBLE_EQ(p2pTime(g, 0, 1, bytes), c);
  SimResult r = run(g, oneFOneB(g, bytes));
  auto closedForm = [&](int mbs, double comm) {
    return (mbs + 1) * (f + b) + 2 * ((mbs + 1) / 2) * comm;
  };
  EXPECT_NEAR(r.iterationTime, closedForm(m, c), 1e-9);
  EXPECT_NEAR(r.stages[0].comm, 2 * m * c, 1e-9);
  EXPECT_NEAR(r.stages[1].comm, 2 * m * c, 1e-9);

  // On one node the faster link is used.
  g.gpusPerNode = 8;
  double ci = bytes / 1e9;
  EXPECT_DOUBLE_EQ(p2pTime(g, 0, 1, bytes), ci);
  r = run(g, oneFOneB(g, bytes));
  EXPECT_NEAR(r.iterationTime, closedForm(m, ci), 1e-9);
  // An even microbatch count.
  g.microbatches = 4;
  r = run(g, oneFOneB(g, bytes));
  EXPECT_NEAR(r.iterationTime, closedForm(4, ci), 1e-9);
  g.microbatches = m;

  // A bandwidth of 0 counts as infinite.
  g.intraNodeBandwidth = 0;
  r = run(g, oneFOneB(g, bytes));
  EXPECT_NEAR(r.iterationTime, (m + 1) * (f + b), 1e-9);
}

// Ring all-reduce over dp x cp: 2(n-1)/n x bytes / bandwidth, inter-node
// when the group spans nodes; then the optimizer step (memory-bound).
TEST(Simulate, AllReduceAndOptimizer) {
  PipelineGraph g = linear(1, 1, 1.0, 2.0, 0);
  g.gpusPerNode = 8;
  g.intraNodeBandwidth = 100e9;
  g.interNodeBandwidth = 10e9;
  StageInfo &s = g.stages[0];
  s.dp = 4;
  s.cp = 2;
  s.tp = 1;
  s.dpStride = 2; // ranks 0,1 | 2,3 | 4,5 | 6,7: one node
  s.trainableParams = 1'000'000;
  int64_t bytes = 2 * s.trainableParams;
  double intra = 2.0 * 7 / 8 * bytes / 100e9;
  double inter = 2.0 * 7 / 8 * bytes / 10e9;
  EXPECT_DOUBLE_EQ(allReduceTime(g, s, bytes), intra);
  s.dpStride = 4; // ranks 0..13: two nodes
  EXPECT_DOUBLE_EQ(allReduceTime(g, s, bytes), inter);
  s.dp = 1;
  s.cp = 1;
  EXPECT_DOUBLE_EQ(allReduceTime(g, s, bytes), 0);
  s.dp = 4;
  s.cp = 2;

  std::vector<Program> programs(1);
  programs[0].actions = {act(ActionKind::Forward, 0),
                         act(ActionKind::BackwardInput, 0),
                         act(ActionKind::AllReduceGrads, -1, -1, bytes),
                         act(ActionKind::OptimizerStep, -1)};
  SimOptions options;
  options.memoryBandwidth = 1e12;
  options.optimizerBytesPerParam = 16;
  double opt = 1e6 * 16 / 1e12;
  SimResult r = run(g, programs, options);
  EXPECT_NEAR(r.iterationTime, 3.0 + inter + opt, 1e-12);
  EXPECT_NEAR(r.stages[0].comm, inter, 1e-12);
  EXPECT_NEAR(r.stages[0].busy, 3.0 + opt, 1e-12);
  // Without a memory bandwidth the optimizer step is free.
  r = run(g, programs);
  EXPECT_NEAR(r.iterationTime, 3.0 + inter, 1e-12);
  EXPECT_EQ(r.worldSize, 8);
}

TEST(Simulate, ThroughputAndMFU) {
  int p = 2, m = 4;
  PipelineGraph g = linear(p, m, 1.0, 1.0, 0);
  for (auto &s : g.stages)
    s.tp = 2; // 4 GPUs
  g.tokensPerIteration = 1000;
  g.peakFlops = 100;
  g.flopsPerIteration = 4000;
  SimResult r = run(g, oneFOneB(g));
  double iteration = (m + p - 1) * 2.0;
  EXPECT_NEAR(r.iterationTime, iteration, 1e-12);
  EXPECT_EQ(r.worldSize, 4);
  EXPECT_NEAR(r.tokensPerSecond, 1000 / iteration, 1e-9);
  EXPECT_NEAR(r.mfu, 4000 / (iteration * 100 * 4), 1e-12);
}

// Fan-in: two encoder stages feed one LLM stage; the slower one decides.
TEST(Simulate, FanIn) {
  PipelineGraph g;
  g.microbatches = 3;
  for (int i = 0; i < 3; ++i) {
    StageInfo s;
    s.name = i == 2 ? "llm_s0" : (i ? "audio_s0" : "vision_s0");
    s.fwd = i == 0 ? 2.0 : 1.0;
    s.firstRank = i;
    g.stages.push_back(s);
  }
  std::vector<Program> programs(3);
  for (int k = 0; k < 3; ++k) {
    for (int e = 0; e < 2; ++e) {
      programs[e].actions.push_back(act(ActionKind::Forward, k));
      programs[e].actions.push_back(act(ActionKind::SendActivation, k, 2));
    }
    programs[2].actions.push_back(act(ActionKind::RecvActivation, k, 0));
    programs[2].actions.push_back(act(ActionKind::RecvActivation, k, 1));
    programs[2].actions.push_back(act(ActionKind::Forward, k));
  }
  SimResult r = run(g, programs);
  // Vision is the bottleneck at 2 s per microbatch; the LLM's last forward
  // starts when vision's third one ends.
  EXPECT_NEAR(r.iterationTime, 3 * 2.0 + 1.0, 1e-12);
}

//===----------------------------------------------------------------------===//
// Send waits (sched::sendReleases)
//===----------------------------------------------------------------------===//

/// The start of each Forward of `stage`, by microbatch.
std::vector<double> forwardStarts(const SimResult &r, int stage) {
  std::vector<double> out;
  for (const Event &e : r.events)
    if (e.stage == stage && e.kind == ActionKind::Forward) {
      if (static_cast<size_t>(e.microbatch) >= out.size())
        out.resize(e.microbatch + 1, -1);
      out[e.microbatch] = e.start;
    }
  return out;
}

// A frozen stage (e = 1 s per forward) feeds a trained one (f + b = 2 + 4
// s). Nothing comes back, so the runtime waits for send k at the end of
// send k + 2, until stage 1 has posted receive k: it gets there at the end
// of its backward k - 1, e + k (f + b) (receive 0 at 0). The frozen stage's
// forward k + 3 starts there, not at k + 3 as without the waits; the
// iteration is stage 1's, e + m (f + b), as before.
TEST(Simulate, SendWindowThrottlesAFrozenStage) {
  int m = 6;
  double e = 1.0, f = 2.0, b = 4.0;
  PipelineGraph g = linear(2, m, f, b, 0, /*frozen=*/1);
  g.stages[0].fwd = e;
  std::vector<Program> programs = oneFOneB(g);
  std::vector<std::vector<int64_t>> release = sendReleases(g, programs);
  // Send k (action 2k + 1) is waited for at send k + 2.
  for (int k = 0; k + 2 < m; ++k)
    EXPECT_EQ(release[0][2 * k + 1], 2 * (k + 2) + 1) << k;
  SimResult r = run(g, programs);
  EXPECT_NEAR(r.iterationTime, e + m * (f + b), 1e-12);
  std::vector<double> starts = forwardStarts(r, 0);
  ASSERT_EQ(starts.size(), static_cast<size_t>(m));
  for (int k = 0; k < m; ++k) {
    double expected = k < 4 ? k * e : e + (k - 3) * (f + b);
    EXPECT_NEAR(starts[k], expected, 1e-12) << k;
  }
  // Stage 1 is not held back: its forward k still starts at e + k (f + b).
  std::vector<double> llm = forwardStarts(r, 1);
  for (int k = 0; k < m; ++k)
    EXPECT_NEAR(llm[k], e + k * (f + b), 1e-12) << k;
}

// A wait also lasts until the message has left: with 5 s per transfer and
// a fast receiver, forward 3 starts when message 0 has arrived (1 + 5),
// then forwards 4 and 5 run at once (messages 1 and 2 have arrived by the
// time they post), and so on: three messages in flight.
TEST(Simulate, SendWaitLastsUntilTheTransferEnds) {
  int m = 6;
  PipelineGraph g = linear(2, m, 0.2, 0.3, 0, /*frozen=*/1);
  g.stages[0].fwd = 1.0;
  g.gpusPerNode = 1;
  g.interNodeBandwidth = 1.0;
  int64_t bytes = 5;
  SimResult r = run(g, oneFOneB(g, bytes));
  std::vector<double> starts = forwardStarts(r, 0);
  std::vector<double> expected = {0, 1, 2, 6, 7, 8};
  ASSERT_EQ(starts.size(), expected.size());
  for (int k = 0; k < m; ++k)
    EXPECT_NEAR(starts[k], expected[k], 1e-12) << k;
  // Message 5 posted at 9 arrives at 14; stage 1 ends 0.5 later.
  EXPECT_NEAR(r.iterationTime, 14.5, 1e-12);
}

// Where arrival is proven (a gradient comes back after the activation was
// taken), the wait finds the send complete: 1F1B on two stages with
// transfers keeps its closed form (CommunicationOnTwoStages) though every
// activation is waited for at its backward.
TEST(Simulate, ProvenArrivalNeverDelays) {
  int m = 5;
  double f = 1.0, b = 2.0;
  PipelineGraph g = linear(2, m, f, b, 0);
  g.gpusPerNode = 1;
  g.interNodeBandwidth = 1e8;
  int64_t bytes = 1'000'000;
  double c = 0.01;
  std::vector<Program> programs = oneFOneB(g, bytes);
  std::vector<std::vector<int64_t>> release = sendReleases(g, programs);
  int64_t waited = llvm::count_if(release[0], [](int64_t i) { return i >= 0; });
  EXPECT_EQ(waited, m);
  SimResult r = run(g, programs);
  EXPECT_NEAR(r.iterationTime, (m + 1) * (f + b) + 2 * ((m + 1) / 2) * c, 1e-9);
}

// The simulator blocks at a receive; the runtime only posts it there and
// waits at the forward. runsToCompletion (which accepts the windows here)
// follows the runtime, so a hand-made schedule can pass it and still stop
// in the simulator: stage 3 waits for stage 0's message before it posts
// the receives stage 1 waits for, stage 1 holds the message stage 2 waits
// for, and stage 0 waits for stage 2's receive. A deadlock, naming the
// waits.
TEST(Simulate, SendWaitDeadlockIsAnError) {
  PipelineGraph g = linear(4, 4, 1.0, 0, 0);
  std::vector<Program> programs(4);
  for (int s = 0; s < 4; ++s)
    programs[s].stage = s;
  for (int k = 0; k < 3; ++k) {
    for (int s : {0, 1}) {
      programs[s].actions.push_back(act(ActionKind::Forward, k));
      programs[s].actions.push_back(
          act(ActionKind::SendActivation, k, s == 0 ? 2 : 3));
    }
  }
  for (int s : {0, 1}) {
    programs[s].actions.push_back(act(ActionKind::Forward, 3));
    programs[s].actions.push_back(
        act(ActionKind::SendActivation, 3, s == 0 ? 3 : 2));
  }
  programs[2].actions = {act(ActionKind::RecvActivation, 3, 1),
                         act(ActionKind::Forward, 3)};
  programs[3].actions = {act(ActionKind::RecvActivation, 3, 0)};
  for (int k = 0; k < 3; ++k) {
    programs[2].actions.push_back(act(ActionKind::RecvActivation, k, 0));
    programs[2].actions.push_back(act(ActionKind::Forward, k));
    programs[3].actions.push_back(act(ActionKind::RecvActivation, k, 1));
  }
  for (int k = 0; k < 4; ++k)
    programs[3].actions.push_back(act(ActionKind::Forward, k));
  std::vector<std::vector<int64_t>> release = sendReleases(g, programs);
  ASSERT_EQ(release[0][1], 5);
  ASSERT_EQ(release[1][1], 5);
  auto r = simulate(g, programs);
  ASSERT_FALSE(static_cast<bool>(r));
  std::string msg = llvm::toString(r.takeError());
  EXPECT_NE(msg.find("deadlock"), std::string::npos) << msg;
  EXPECT_NE(msg.find("stage 0 (s0) waits after action 5 send_activation "
                     "microbatch 2 to stage 2 (s2) for the receive of its "
                     "action 1 send_activation microbatch 0 to stage 2 (s2)"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("stage 3 (s3) waits at action 0 recv_activation "
                     "microbatch 3 from stage 0 (s0)"),
            std::string::npos)
      << msg;
}

/// Whether two simulations agree exactly: times, reports and events.
void expectSameResult(const SimResult &a, const SimResult &b) {
  EXPECT_EQ(a.iterationTime, b.iterationTime);
  EXPECT_EQ(a.eventsSimulated, b.eventsSimulated);
  ASSERT_EQ(a.stages.size(), b.stages.size());
  for (size_t s = 0; s < a.stages.size(); ++s) {
    SCOPED_TRACE(s);
    EXPECT_EQ(a.stages[s].busy, b.stages[s].busy);
    EXPECT_EQ(a.stages[s].comm, b.stages[s].comm);
    EXPECT_EQ(a.stages[s].bubble, b.stages[s].bubble);
    EXPECT_EQ(a.stages[s].peakMemory, b.stages[s].peakMemory);
  }
  ASSERT_EQ(a.events.size(), b.events.size());
  for (size_t i = 0; i < a.events.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(a.events[i].stage, b.events[i].stage);
    EXPECT_EQ(a.events[i].kind, b.events[i].kind);
    EXPECT_EQ(a.events[i].microbatch, b.events[i].microbatch);
    EXPECT_EQ(a.events[i].start, b.events[i].start);
    EXPECT_EQ(a.events[i].end, b.events[i].end);
  }
}

// A caller that already has the send releases passes them
// (SimOptions::sendReleases) and gets the simulation simulate() makes with
// its own: where the window holds a frozen stage back, where 1F1B's waits
// are proven, and on generated schedules of every kind with a frozen prefix
// and transfers.
TEST(Simulate, GivenSendReleasesSimulateTheSame) {
  std::vector<std::pair<PipelineGraph, std::vector<Program>>> cases;
  PipelineGraph frozen = linear(2, 6, 2.0, 4.0, 0, /*frozen=*/1);
  frozen.stages[0].fwd = 1.0;
  cases.emplace_back(frozen, oneFOneB(frozen));
  PipelineGraph trained = linear(2, 5, 1.0, 2.0, 0);
  trained.gpusPerNode = 1;
  trained.interNodeBandwidth = 1e8;
  cases.emplace_back(trained, oneFOneB(trained, 1'000'000));
  for (ScheduleKind kind :
       {ScheduleKind::MultimodalOneFOneB, ScheduleKind::LinearOneFOneB,
        ScheduleKind::GPipe}) {
    PipelineGraph g = linear(5, 9, 1.0, 2.0, 1.5, /*frozen=*/2);
    g.stages[0].fwd = 0.3;
    g.gpusPerNode = 2;
    g.interNodeBandwidth = 1e7;
    g.intraNodeBandwidth = 1e8;
    for (StageInfo &st : g.stages)
      st.outputBytes = 2'000'000;
    std::vector<Program> programs = generateSchedule(g, kind);
    if (auto err = verifySchedule(g, programs))
      ADD_FAILURE() << llvm::toString(std::move(err));
    cases.emplace_back(g, std::move(programs));
  }
  int windowed = 0;
  for (auto &[g, programs] : cases) {
    std::vector<std::vector<int64_t>> release = sendReleases(g, programs);
    for (size_t p = 0; p < programs.size(); ++p)
      windowed += release[p] != provenSendReleases(g, programs, p);
    SimOptions given;
    given.sendReleases = &release;
    expectSameResult(run(g, programs), run(g, programs, given));
  }
  EXPECT_GT(windowed, 0);
}

// The releases given are the ones simulated: with every send waited for at
// the end of the iteration, the frozen stage of
// SendWindowThrottlesAFrozenStage runs its forwards back to back.
TEST(Simulate, GivenSendReleasesAreTheOnesSimulated) {
  int m = 6;
  double e = 1.0, f = 2.0, b = 4.0;
  PipelineGraph g = linear(2, m, f, b, 0, /*frozen=*/1);
  g.stages[0].fwd = e;
  std::vector<Program> programs = oneFOneB(g);
  std::vector<std::vector<int64_t>> atTheEnd;
  for (const Program &p : programs)
    atTheEnd.emplace_back(p.actions.size(), -1);
  SimOptions options;
  options.sendReleases = &atTheEnd;
  SimResult r = run(g, programs, options);
  EXPECT_NEAR(r.iterationTime, e + m * (f + b), 1e-12);
  std::vector<double> starts = forwardStarts(r, 0);
  ASSERT_EQ(starts.size(), static_cast<size_t>(m));
  for (int k = 0; k < m; ++k)
    EXPECT_NEAR(starts[k], k * e, 1e-12) << k;
}

// Given releases that do not fit the programs are an error, not a read
// past them.
TEST(Simulate, GivenSendReleasesMustFitThePrograms) {
  PipelineGraph g = linear(2, 3, 1.0, 2.0, 0);
  std::vector<Program> programs = oneFOneB(g);
  std::vector<std::vector<int64_t>> release = sendReleases(g, programs);
  auto expectError = [&](const std::vector<std::vector<int64_t>> &bad,
                         const std::string &text) {
    SimOptions options;
    options.sendReleases = &bad;
    auto r = simulate(g, programs, options);
    ASSERT_FALSE(static_cast<bool>(r));
    std::string msg = llvm::toString(r.takeError());
    EXPECT_NE(msg.find(text), std::string::npos) << msg;
  };
  std::vector<std::vector<int64_t>> bad = release;
  bad.pop_back();
  expectError(bad, "one entry per action");
  bad = release;
  bad[1].push_back(-1);
  expectError(bad, "one entry per action");
  size_t send = 0;
  while (!isSend(programs[0].actions[send].kind))
    ++send;
  for (int64_t value :
       {static_cast<int64_t>(programs[0].actions.size()), int64_t(-2)}) {
    bad = release;
    bad[0][send] = value;
    expectError(bad, "the send release given, " + std::to_string(value) +
                         ", is not an action of the program");
  }
}

//===----------------------------------------------------------------------===//
// Generated schedules (Schedule.cpp) against the same closed forms
//===----------------------------------------------------------------------===//

std::vector<Program> generated(const PipelineGraph &g, ScheduleKind kind) {
  std::vector<Program> programs = generateSchedule(g, kind);
  if (auto err = verifySchedule(g, programs))
    ADD_FAILURE() << llvm::toString(std::move(err));
  return programs;
}

class GeneratedUniform
    : public testing::TestWithParam<std::tuple<int, int, ScheduleKind>> {};

// Uniform stages, no communication cost. The Megatron-like baseline sends
// a gradient after its fused backward: (m + p - 1)(f + bd + bw). The
// frozen-aware kinds send it right after Bd, so the weight gradients leave
// the critical path of the fill and drain: m (f + bd + bw) + (p - 1)(f + bd).
// 1F1B holds p - i microbatches on stage i, GPipe all m.
TEST_P(GeneratedUniform, ClosedForm) {
  auto [p, m, kind] = GetParam();
  double f = 1e-3, bd = 1.5e-3, bw = 0.5e-3;
  PipelineGraph g = linear(p, m, f, bd, bw);
  for (auto &s : g.stages) {
    s.staticBytes = 100;
    s.activationBytesPerMicrobatch = 1;
  }
  SimResult r = run(g, generated(g, kind));
  double expected = kind == ScheduleKind::LinearOneFOneB
                        ? (m + p - 1) * (f + bd + bw)
                        : m * (f + bd + bw) + (p - 1) * (f + bd);
  EXPECT_NEAR(r.iterationTime, expected, 1e-9);
  for (int i = 0; i < p; ++i) {
    SCOPED_TRACE(i);
    EXPECT_NEAR(r.stages[i].busy, m * (f + bd + bw), 1e-9);
    EXPECT_NEAR(r.stages[i].bubble, 1 - m * (f + bd + bw) / expected, 1e-9);
    int64_t inFlight = kind == ScheduleKind::GPipe ? m : std::min(p - i, m);
    EXPECT_EQ(r.stages[i].maxInFlight, inFlight);
    EXPECT_EQ(r.stages[i].peakMemory, 100 + inFlight);
  }
}

// Without a separate weight gradient every kind meets the textbook
// (m + p - 1)(f + b) and bubble (p - 1) / (m + p - 1).
TEST_P(GeneratedUniform, FusedBackwardClosedForm) {
  auto [p, m, kind] = GetParam();
  double f = 1e-3, b = 2e-3;
  PipelineGraph g = linear(p, m, f, b, 0);
  SimResult r = run(g, generated(g, kind));
  EXPECT_NEAR(r.iterationTime, (m + p - 1) * (f + b), 1e-9);
  for (int i = 0; i < p; ++i)
    EXPECT_NEAR(r.stages[i].bubble, double(p - 1) / (m + p - 1), 1e-9);
}

INSTANTIATE_TEST_SUITE_P(
    Simulate, GeneratedUniform,
    testing::Combine(testing::Values(1, 2, 4, 8), testing::Values(1, 3, 16),
                     testing::Values(ScheduleKind::MultimodalOneFOneB,
                                     ScheduleKind::LinearOneFOneB,
                                     ScheduleKind::GPipe)));

// Frozen prefix: the generated multimodal 1F1B runs no backward there and
// meets k f + (m + p - k - 1)(f + b), as the hand-written programs do.
TEST(Simulate, GeneratedFrozenPrefix) {
  int p = 4, m = 8, k = 2;
  double f = 1.0, b = 2.0;
  PipelineGraph g = linear(p, m, f, b, 0, k);
  SimResult r = run(g, generated(g, ScheduleKind::MultimodalOneFOneB));
  EXPECT_NEAR(r.iterationTime, k * f + (m + p - k - 1) * (f + b), 1e-9);
  for (int i = 0; i < k; ++i) {
    EXPECT_EQ(r.stages[i].bwdInput, 0);
    EXPECT_EQ(r.stages[i].maxInFlight, 0);
  }
}

// Two frozen encoder stages fan into a 3-stage LLM. The encoders forward
// faster than the LLM's first stage, so they only add their own forward
// in front: e + (m + p - 1)(f + b).
TEST(Simulate, GeneratedFanIn) {
  int m = 6, p = 3;
  double e = 0.5, f = 1.0, b = 2.0;
  PipelineGraph g;
  g.microbatches = m;
  for (int i = 0; i < 2 + p; ++i) {
    StageInfo s;
    s.name = i == 0   ? "vision_s0"
             : i == 1 ? "audio_s0"
                      : "llm_s" + std::to_string(i - 2);
    s.part = i < 2 ? (i ? "audio" : "vision") : "llm";
    s.isLLM = i >= 2;
    s.fwd = i < 2 ? e : f;
    s.bwdInput = i < 2 ? 0 : b;
    s.needsInputGrad = i >= 2;
    s.firstRank = i;
    g.stages.push_back(s);
  }
  g.stages[0].next = g.stages[1].next = {2};
  g.stages[2].prev = {0, 1};
  g.stages[2].gradToPrev = {false, false};
  for (int i = 2; i + 1 < 2 + p; ++i) {
    g.stages[i].next = {i + 1};
    g.stages[i + 1].prev = {i};
    g.stages[i + 1].gradToPrev = {true};
  }
  SimResult r = run(g, generated(g, ScheduleKind::MultimodalOneFOneB));
  EXPECT_NEAR(r.iterationTime, e + (m + p - 1) * (f + b), 1e-9);
  EXPECT_NEAR(r.stages[0].busy, m * e, 1e-9);
  EXPECT_NEAR(r.stages[2].busy, m * (f + b), 1e-9);
}

// A pipeline whose first stage is faster than the rest (audio_lm's shape):
// the generated schedules run the textbook 1F1B order (F(j + w), then the
// gradient of j), so no forward waits for a downstream backward and both
// match the hand-written plain 1F1B. (They did not when sends were
// rendezvous and the generator received gradient j before F(j + w): 1504.)
TEST(Simulate, GeneratedNoSlowerThanPlain1F1B) {
  PipelineGraph g = linear(4, 16, 21.3, 45.0, 0);
  g.stages[0].fwd = 13.8;
  g.stages[0].bwdInput = 33.4;
  g.stages[0].bwdWeight = 7.8;
  g.stages[0].needsWeightGrad = true;
  double plain = run(g, oneFOneB(g)).iterationTime;
  EXPECT_NEAR(plain, 1248.4, 1e-6);
  EXPECT_LE(
      run(g, generated(g, ScheduleKind::MultimodalOneFOneB)).iterationTime,
      plain + 1e-9);
  EXPECT_LE(run(g, generated(g, ScheduleKind::LinearOneFOneB)).iterationTime,
            plain + 1e-9);
}

//===----------------------------------------------------------------------===//
// Broken programs
//===----------------------------------------------------------------------===//

// Both stages send before they receive: fine with asynchronous sends.
// Stage 0 waiting for gradient 0 before it sends activation 0 is a cycle of
// blocked receives.
TEST(Simulate, DeadlockIsAnError) {
  PipelineGraph g = linear(2, 2, 1.0, 1.0, 0);
  std::vector<Program> programs(2);
  programs[0].actions = {
      act(ActionKind::Forward, 0),     act(ActionKind::SendActivation, 0, 1),
      act(ActionKind::Forward, 1),     act(ActionKind::SendActivation, 1, 1),
      act(ActionKind::RecvGrad, 0, 1), act(ActionKind::BackwardInput, 0),
      act(ActionKind::RecvGrad, 1, 1), act(ActionKind::BackwardInput, 1)};
  programs[1].actions = {
      act(ActionKind::RecvActivation, 0, 0), act(ActionKind::Forward, 0),
      act(ActionKind::BackwardInput, 0),     act(ActionKind::SendGrad, 0, 0),
      act(ActionKind::RecvActivation, 1, 0), act(ActionKind::Forward, 1),
      act(ActionKind::BackwardInput, 1),     act(ActionKind::SendGrad, 1, 0)};
  auto ok = simulate(g, programs);
  ASSERT_TRUE(static_cast<bool>(ok)) << llvm::toString(ok.takeError());
  EXPECT_NEAR(ok->iterationTime, 6.0, 1e-12);

  programs[0].actions = {
      act(ActionKind::Forward, 0),           act(ActionKind::RecvGrad, 0, 1),
      act(ActionKind::SendActivation, 0, 1), act(ActionKind::Forward, 1),
      act(ActionKind::SendActivation, 1, 1), act(ActionKind::BackwardInput, 0),
      act(ActionKind::RecvGrad, 1, 1),       act(ActionKind::BackwardInput, 1)};
  auto r = simulate(g, programs);
  ASSERT_FALSE(static_cast<bool>(r));
  std::string msg = llvm::toString(r.takeError());
  EXPECT_NE(msg.find("deadlock"), std::string::npos) << msg;
  EXPECT_NE(msg.find("stage 0 (s0) waits at action 1 recv_grad microbatch 0 "
                     "from stage 1 (s1)"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("stage 1 (s1) waits at action 0 recv_activation "
                     "microbatch 0 from stage 0 (s0)"),
            std::string::npos)
      << msg;
}

// A send nobody receives.
TEST(Simulate, UnreceivedSendIsAnError) {
  PipelineGraph g = linear(2, 1, 1.0, 0, 0);
  std::vector<Program> programs(2);
  programs[0].actions = {act(ActionKind::Forward, 0),
                         act(ActionKind::SendActivation, 0, 1)};
  programs[1].actions = {act(ActionKind::Forward, 0)};
  auto r = simulate(g, programs);
  ASSERT_FALSE(static_cast<bool>(r));
  EXPECT_NE(llvm::toString(r.takeError()).find("nobody receives it"),
            std::string::npos);
}

// A receive nobody sends to.
TEST(Simulate, MissingSendIsADeadlock) {
  PipelineGraph g = linear(2, 1, 1.0, 0, 0);
  std::vector<Program> programs(2);
  programs[0].actions = {act(ActionKind::Forward, 0)};
  programs[1].actions = {act(ActionKind::RecvActivation, 0, 0),
                         act(ActionKind::Forward, 0)};
  auto r = simulate(g, programs);
  ASSERT_FALSE(static_cast<bool>(r));
  EXPECT_NE(llvm::toString(r.takeError()).find("deadlock"), std::string::npos);
}

TEST(Simulate, MismatchedMicrobatchIsAnError) {
  PipelineGraph g = linear(2, 1, 1.0, 0, 0);
  std::vector<Program> programs(2);
  programs[0].actions = {act(ActionKind::Forward, 0),
                         act(ActionKind::SendActivation, 0, 1)};
  programs[1].actions = {act(ActionKind::RecvActivation, 1, 0),
                         act(ActionKind::Forward, 1)};
  auto r = simulate(g, programs);
  ASSERT_FALSE(static_cast<bool>(r));
  EXPECT_NE(llvm::toString(r.takeError()).find("mismatched"),
            std::string::npos);
}

TEST(Simulate, BadProgramsAreErrors) {
  PipelineGraph g = linear(2, 1, 1.0, 0, 0);
  std::vector<Program> programs(1);
  EXPECT_FALSE(static_cast<bool>(simulate(g, programs)));
  llvm::consumeError(simulate(g, programs).takeError());
  programs.resize(2);
  programs[0].actions = {act(ActionKind::SendActivation, 0, 7)};
  auto r = simulate(g, programs);
  ASSERT_FALSE(static_cast<bool>(r));
  EXPECT_NE(llvm::toString(r.takeError()).find("no such peer"),
            std::string::npos);
}

// Many events: every action is visited once.
TEST(Simulate, LargeRunCountsEveryAction) {
  PipelineGraph g = linear(16, 2000, 1e-3, 2e-3, 1e-3);
  auto programs = oneFOneB(g, 100);
  SimOptions options;
  options.recordEvents = false;
  SimResult r = run(g, programs, options);
  EXPECT_EQ(r.eventsSimulated, countActions(programs));
  EXPECT_TRUE(r.events.empty());
  EXPECT_NEAR(r.iterationTime, (2000 + 15) * 4e-3, 1e-9);
}

//===----------------------------------------------------------------------===//
// Outputs
//===----------------------------------------------------------------------===//

/// The trace events of `text`, parsed (and checked to be valid JSON).
struct ParsedTrace {
  std::map<int64_t, std::string> processNames; ///< pid -> name.
  std::map<int64_t, std::string> threadNames;  ///< tid -> name.
  std::map<int64_t, int64_t> threadProcess;    ///< tid -> pid.
  std::map<int64_t, int> eventsPerThread;      ///< tid -> "X" events.
  std::set<std::string> names;                 ///< Of the "X" events.
};

ParsedTrace parseTrace(const std::string &text) {
  ParsedTrace t;
  auto parsed = llvm::json::parse(text);
  EXPECT_TRUE(static_cast<bool>(parsed)) << llvm::toString(parsed.takeError());
  if (!parsed)
    return t;
  const llvm::json::Object *root = parsed->getAsObject();
  EXPECT_NE(root, nullptr);
  const llvm::json::Array *events =
      root ? root->getArray("traceEvents") : nullptr;
  EXPECT_NE(events, nullptr);
  if (!events)
    return t;
  for (const llvm::json::Value &v : *events) {
    const llvm::json::Object *e = v.getAsObject();
    EXPECT_NE(e, nullptr);
    if (!e)
      continue;
    auto ph = e->getString("ph");
    EXPECT_TRUE(ph.has_value());
    int64_t pid = e->getInteger("pid").value_or(-1);
    if (*ph == "M" && e->getString("name") == "process_name") {
      t.processNames[pid] =
          e->getObject("args")->getString("name").value_or("").str();
    } else if (*ph == "M" && e->getString("name") == "thread_name") {
      int64_t tid = *e->getInteger("tid");
      t.threadNames[tid] =
          e->getObject("args")->getString("name").value_or("").str();
      t.threadProcess[tid] = pid;
    } else if (*ph == "X") {
      int64_t tid = *e->getInteger("tid");
      ++t.eventsPerThread[tid];
      EXPECT_EQ(t.threadProcess.count(tid), 1u) << "no thread " << tid;
      EXPECT_EQ(t.threadProcess[tid], pid);
      t.names.insert(e->getString("name").value_or("").str());
      EXPECT_GE(*e->getNumber("dur"), 0);
      EXPECT_GE(*e->getNumber("ts"), 0);
    }
  }
  return t;
}

/// Three stages of two GPUs each: tp 2 (ranks 0, 1), dp 2 (ranks 2, 3),
/// cp 2 (ranks 4, 5).
PipelineGraph twoGpusPerStage(int64_t m) {
  PipelineGraph g = linear(3, m, 1e-3, 2e-3, 1e-3);
  g.gpusPerNode = 2;
  g.interNodeBandwidth = 1e9;
  g.stages[0].tp = 2;
  g.stages[0].firstRank = 0;
  g.stages[1].dp = 2;
  g.stages[1].firstRank = 2;
  g.stages[2].cp = 2;
  g.stages[2].firstRank = 4;
  return g;
}

/// Events of stage `s` that the trace shows (zero-length transfers, a
/// receive whose data has arrived, are left out).
int lastingEvents(const SimResult &r, int s) {
  int lasting = 0;
  for (const Event &e : r.events)
    lasting +=
        e.stage == s && (e.end > e.start || e.kind == ActionKind::Forward ||
                         e.kind == ActionKind::BackwardInput ||
                         e.kind == ActionKind::BackwardWeight);
  return lasting;
}

TEST(Simulate, StageRanks) {
  StageInfo s;
  s.firstRank = 8;
  s.dp = 2;
  s.dpStride = 16;
  s.cp = 2;
  s.tp = 2;
  EXPECT_EQ(s.rankLayout().ranks(),
            (std::vector<int64_t>{8, 9, 10, 11, 24, 25, 26, 27}));
  EXPECT_EQ(rankRange({3}), "rank 3");
  EXPECT_EQ(rankRange({4, 5, 6, 7}), "ranks 4-7");
  EXPECT_EQ(rankRange({0, 1, 16, 17}), "4 ranks in 0-17");
}

TEST(Simulate, ChromeTraceIsValidJSONWithOneTrackPerRank) {
  int m = 4;
  PipelineGraph g = twoGpusPerStage(m);
  SimResult r = run(g, oneFOneB(g, 1'000'000));
  ASSERT_EQ(r.worldSize, 6);
  std::string text;
  llvm::raw_string_ostream os(text);
  writeChromeTrace(g, r, os);
  ParsedTrace t = parseTrace(text);
  // One process per stage, named after it.
  EXPECT_EQ(t.processNames,
            (std::map<int64_t, std::string>{{0, "s0"}, {1, "s1"}, {2, "s2"}}));
  // One thread per global rank, in its stage's process.
  std::map<int64_t, std::string> expectedNames;
  for (int64_t rank = 0; rank < 6; ++rank)
    expectedNames[rank] = "rank " + std::to_string(rank);
  EXPECT_EQ(t.threadNames, expectedNames);
  EXPECT_EQ(t.threadProcess,
            (std::map<int64_t, int64_t>{
                {0, 0}, {1, 0}, {2, 1}, {3, 1}, {4, 2}, {5, 2}}));
  // Every rank shows all its stage's events.
  for (int64_t rank = 0; rank < 6; ++rank)
    EXPECT_EQ(t.eventsPerThread[rank], lastingEvents(r, rank / 2)) << rank;
  for (const char *n : {"F0", "F3", "Bd0", "Bw3", "send", "recv"})
    EXPECT_TRUE(t.names.count(n)) << n;
}

TEST(Simulate, ChromeTraceOverMaxRanksHasOneTrackPerStage) {
  PipelineGraph g = twoGpusPerStage(3);
  g.stages[1].dpStride = 4;  // Ranks 2 and 6.
  g.stages[2].firstRank = 3; // Ranks 3 and 4.
  SimResult r = run(g, oneFOneB(g, 1000));
  std::string text;
  llvm::raw_string_ostream os(text);
  writeChromeTrace(g, r, os, /*maxRanks=*/5);
  ParsedTrace t = parseTrace(text);
  EXPECT_EQ(t.processNames.size(), 3u);
  EXPECT_EQ(t.threadNames,
            (std::map<int64_t, std::string>{
                {0, "ranks 0-1"}, {2, "2 ranks in 2-6"}, {3, "ranks 3-4"}}));
  EXPECT_EQ(t.eventsPerThread[0], lastingEvents(r, 0));
  EXPECT_EQ(t.eventsPerThread[2], lastingEvents(r, 1));
  EXPECT_EQ(t.eventsPerThread[3], lastingEvents(r, 2));
  // At the limit: one track per rank again; 0: no limit.
  for (int64_t limit : {6, 0}) {
    std::string all;
    llvm::raw_string_ostream out(all);
    writeChromeTrace(g, r, out, limit);
    EXPECT_EQ(parseTrace(all).threadNames.size(), 6u) << limit;
  }
}

TEST(Simulate, SvgHasOneRowPerRank) {
  int p = 4, m = 6;
  PipelineGraph g = linear(p, m, 1e-3, 2e-3, 0, /*frozen=*/1);
  g.stages[3].tp = 2; // Ranks 3 and 4.
  SimResult r = run(g, oneFOneB(g));
  std::string svg;
  llvm::raw_string_ostream os(svg);
  writeSvg(g, r, os);
  llvm::StringRef text(svg);
  EXPECT_TRUE(text.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
  EXPECT_TRUE(text.rtrim().ends_with("</svg>"));
  EXPECT_EQ(text.count("class=\"rank\""), static_cast<size_t>(p + 1));
  EXPECT_EQ(text.count("class=\"stage\""), 0u);
  for (int i = 0; i < p; ++i)
    EXPECT_NE(svg.find(">s" + std::to_string(i) + " rank " + std::to_string(i) +
                       "</text>"),
              std::string::npos)
        << i;
  EXPECT_NE(svg.find(">s3 rank 4</text>"), std::string::npos);
  // One bar per action with a duration (transfers take none here) on every
  // rank of its stage, a legend and a time axis.
  size_t bars = 0;
  for (const Event &e : r.events)
    bars += e.end > e.start ? (e.stage == 3 ? 2 : 1) : 0;
  EXPECT_EQ(bars, static_cast<size_t>((p + 1) * m + p * m));
  EXPECT_EQ(text.count("<title>"), bars);
  EXPECT_NE(svg.find("forward"), std::string::npos);
  EXPECT_NE(svg.find(" ms</text>"), std::string::npos);
  // Balanced tags, roughly: every opened element is closed.
  EXPECT_EQ(text.count("<text"), text.count("</text>"));
  EXPECT_EQ(text.count("<title>"), text.count("</title>"));

  // Over the limit of rows: one row per stage, with its ranks.
  std::string perStage;
  llvm::raw_string_ostream out(perStage);
  writeSvg(g, r, out, /*maxRankRows=*/4);
  llvm::StringRef stageText(perStage);
  EXPECT_EQ(stageText.count("class=\"stage\""), static_cast<size_t>(p));
  EXPECT_EQ(stageText.count("class=\"rank\""), 0u);
  EXPECT_NE(perStage.find(">s0 (rank 0)</text>"), std::string::npos);
  EXPECT_NE(perStage.find(">s3 (ranks 3-4)</text>"), std::string::npos);
  EXPECT_EQ(stageText.count("<title>"),
            static_cast<size_t>(p * m + (p - 1) * m));
}

} // namespace
