//===- FidelityTest.cpp - chain plans, memory, CP and collectives ---------===//
//
// The planner's figures of issue 14: chain plans against brute force over
// every cut, memory-aware stage counts, the estimate of a memory-capped
// pipeline, and the cost of context parallelism (a rank's share of the
// attention) and of the TP/CP collectives.
//
//===----------------------------------------------------------------------===//

#include "mllm/Plan/CostModel.h"
#include "mllm/Plan/Memory.h"
#include "mllm/Plan/Partition.h"
#include "mllm/Plan/Warmup.h"

#include "Cuts.h"
#include "Modules.h"

#include "gtest/gtest.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>

using namespace mllm;
using namespace mllm::plan;
using mllm::plan::test::forEachCut;
using mllm::plan::test::resources;

namespace {

PipelineModule module(std::string name, std::vector<double> weights,
                      bool llm = false) {
  PipelineModule m;
  m.name = std::move(name);
  for (double w : weights)
    m.layers.push_back({w / 2, w / 2, 0});
  m.isLLM = llm;
  return m;
}

// A chain plan over every budget is the best cut of the encoders' and the
// LLM's layers as one sequence: brute force over every stage count and
// every cut gives the same bottleneck (the estimate with transfers 0 is
// S - B + m B, S fixed, so the best plan has the least bottleneck; fewer
// stages on ties). The plan's stages cover each module exactly, a piece
// after the first of a chain stage is colocated.
TEST(Fidelity, ChainMatchesBruteForce) {
  std::mt19937_64 rng(14);
  std::uniform_real_distribution<double> u(0.5, 4.0);
  for (int iter = 0; iter < 40; ++iter) {
    int64_t ne = 1 + rng() % 5, nl = 1 + rng() % 5;
    std::vector<double> we(ne), wl(nl);
    for (double &w : we)
      w = u(rng);
    for (double &w : wl)
      w = u(rng);
    std::vector<PipelineModule> mods = {module("enc", we),
                                        module("llm", wl, true)};
    int64_t budget = 1 + rng() % (ne + nl);
    PipelineResources res;
    res.gpuBudget = budget;
    res.microbatches = 8;
    std::optional<PipelinePlan> plan =
        planPipeline(mods, Layout::Chain, Objective::MinMax, res);
    ASSERT_TRUE(plan);
    std::vector<double> all = we;
    all.insert(all.end(), wl.begin(), wl.end());
    double best = INFINITY;
    for (int64_t k = 1; k <= std::min<int64_t>(budget, ne + nl); ++k)
      forEachCut(ne + nl, k, [&](const std::vector<int64_t> &sizes) {
        best = std::min(best, mllm::plan::test::maxStageSum(all, sizes));
      });
    EXPECT_NEAR(plan->bottleneck, best, 1e-9 * best) << "iter " << iter;
    // Pieces: each module covered in order; chain stages = GPUs.
    int64_t covered[2] = {0, 0}, chainStages = 0;
    for (const StagePlan &s : plan->stages) {
      int i = s.module == "enc" ? 0 : 1;
      EXPECT_EQ(s.firstLayer, covered[i]);
      covered[i] += s.numLayers;
      chainStages += s.colocated ? 0 : 1;
    }
    EXPECT_EQ(covered[0], ne);
    EXPECT_EQ(covered[1], nl);
    EXPECT_EQ(chainStages, plan->gpus);
    EXPECT_LE(plan->gpus, budget);
  }
}

// The chain's frozen-unaware plan balances all-trainable times and is
// charged the real ones: a frozen encoder (backward 0) in front of a
// trainable LLM (backward 2 x forward) moves the cut (the paper's Fig. 1c,
// cornstarch-brief §E.3).
TEST(Fidelity, ChainFrozenAwareBeatsUnaware) {
  PipelineModule enc, llm;
  enc.name = "enc";
  llm.name = "llm";
  llm.isLLM = true;
  for (int i = 0; i < 24; ++i) {
    enc.layers.push_back({1.0, 0.0, 0});
    enc.balanceLayers.push_back({1.0, 2.0, 0});
  }
  for (int i = 0; i < 12; ++i) {
    llm.layers.push_back({1.0, 2.0, 0});
    llm.balanceLayers.push_back({1.0, 2.0, 0});
  }
  PipelineResources res;
  res.gpuBudget = 4;
  res.microbatches = 64;
  std::optional<PipelinePlan> aware =
      planPipeline({module("enc", std::vector<double>(24, 1.0)),
                    [&] {
                      PipelineModule m = llm;
                      m.balanceLayers.clear();
                      return m;
                    }()},
                   Layout::Chain, Objective::MinMax, res);
  std::optional<PipelinePlan> unaware =
      planPipeline({enc, llm}, Layout::Chain, Objective::MinMax, res);
  ASSERT_TRUE(aware && unaware);
  // Aware: 60 time units over 4 stages, bottleneck 15; unaware balances 108
  // "trainable" units (27 each: 27 encoder layers per stage would need 9
  // trainable-looking layers...), which leaves the LLM's real times uneven.
  EXPECT_DOUBLE_EQ(aware->bottleneck, 15.0);
  EXPECT_GT(unaware->bottleneck, aware->bottleneck);
  EXPECT_GT(unaware->iterationTime, aware->iterationTime);
}

// Memory-aware stage counts: with one microbatch every stage count ties on
// the estimate and the fewest GPUs used to win even when they do not fit;
// now the fewest stages whose every stage fits are chosen.
TEST(Fidelity, AutoStagesPreferAPlanThatFits) {
  PipelineModule llm = module("llm", std::vector<double>(8, 1.0), true);
  for (size_t i = 0; i < 8; ++i)
    llm.memory.push_back({3 * kGiB, 0, 0, 0.5 * kGiB});
  PipelineResources res;
  res.gpuBudget = 8;
  res.microbatches = 1;
  // Two layers per stage fit (6 GiB + 1 GiB of activations); three do not
  // (9 + 1.5 > 10).
  res.memoryCapacity = 10 * kGiB;
  std::optional<PipelinePlan> plan =
      planPipeline({llm}, Layout::Parallel, Objective::MinMax, res);
  ASSERT_TRUE(plan);
  EXPECT_TRUE(plan->fits);
  EXPECT_EQ(plan->stagesPerModule[0], 4);
  // Without the memory model the fewest GPUs win: one stage.
  res.memoryCapacity = 0;
  plan = planPipeline({llm}, Layout::Parallel, Objective::MinMax, res);
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->stagesPerModule[0], 1);
  // Nothing fits: the plan says so.
  res.memoryCapacity = 2 * kGiB;
  plan = planPipeline({llm}, Layout::Parallel, Objective::MinMax, res);
  ASSERT_TRUE(plan);
  EXPECT_FALSE(plan->fits);
}

// The estimate of a pipeline whose first stage memory caps to one
// microbatch: every microbatch makes the whole round trip alone, so the
// iteration is m x (sum of the stages' F + B).
TEST(Fidelity, CappedEstimateWaitsForRoundTrips) {
  auto stage = [](const char *name, int64_t first, int64_t wanted,
                  int64_t inFlight) {
    StagePlan s;
    s.module = name;
    s.firstLayer = first;
    s.numLayers = 1;
    s.fwd = 1;
    s.bwd = 2;
    s.memory.wanted = wanted;
    s.memory.inFlight = inFlight;
    return s;
  };
  // Uncapped: (m + p - 1) x 3.
  std::vector<std::vector<StagePlan>> path = {
      {stage("l", 0, 4, 4), stage("l", 1, 3, 3), stage("l", 2, 2, 2),
       stage("l", 3, 1, 1)}};
  EXPECT_DOUBLE_EQ(estimateIterationTime(path, 8), (8 + 3) * 3.0);
  // Stage 0 holds one microbatch (carried down: every stage holds one):
  // 8 round trips of 4 x 3.
  path[0][0].memory.inFlight = 1;
  EXPECT_DOUBLE_EQ(estimateIterationTime(path, 8), 8 * 12.0);
  // Two in flight: the steady state needs the round trip every 2
  // microbatches, and the equal warm-ups of stages 0 and 1 hand each other
  // their backward; the period is between those bounds and the estimate
  // above the uncapped one.
  path[0][0].memory.inFlight = 2;
  double two = estimateIterationTime(path, 8);
  EXPECT_GT(two, (8 + 3) * 3.0);
  EXPECT_LT(two, 8 * 12.0);
}

// Colocated encoders on two shared stages, each capped to one microbatch
// (1 MiB of weights and 1 MiB saved per encoder and stage: 2 + 2 x in
// flight MiB on a 5 MiB GPU), carried down the LLM: every microbatch makes
// its round trip alone, F and B of 2 + 2 + 1 + 1 time units, so the
// estimate is 8 x 12. The merged stages are told apart by their first
// layers; taken for one (both at layer 0), the estimate dropped the second
// and said 68.
TEST(Fidelity, CappedColocatedStagesStayApart) {
  PipelineModule a = module("a", {2, 2});
  a.memory.assign(2, {kMiB, 0, 0, kMiB});
  a.stages = 2;
  PipelineModule b = a;
  b.name = "b";
  PipelineModule llm = module("llm", {2, 2}, true);
  llm.memory.assign(2, {kMiB, 0, 0, 0});
  llm.stages = 2;
  PipelineResources res = resources(4, 8, 5 * kMiB);
  std::optional<PipelinePlan> plan =
      planPipeline({a, b, llm}, Layout::Colocated, Objective::MinMax, res);
  ASSERT_TRUE(plan);
  ASSERT_EQ(plan->paths.size(), 1u);
  ASSERT_EQ(plan->paths[0].size(), 4u);
  EXPECT_EQ(plan->paths[0][0].firstLayer, 0);
  EXPECT_EQ(plan->paths[0][1].firstLayer, 2);
  EXPECT_EQ(plan->paths[0][0].memory.inFlight, 1);
  EXPECT_EQ(plan->paths[0][1].memory.inFlight, 1);
  EXPECT_DOUBLE_EQ(plan->iterationTime, 8 * 12.0);
}

// The in-flight rule and the cap, with the schedule generator's arithmetic
// on MiB-rounded terms.
TEST(Fidelity, MemoryCapMatchesTheGenerator) {
  EXPECT_EQ(inFlightDepth(true, 0, 4, 4, 64), 4);
  EXPECT_EQ(inFlightDepth(true, 3, 4, 4, 64), 1);
  EXPECT_EQ(inFlightDepth(false, 0, 2, 4, 64), 6);
  EXPECT_EQ(inFlightDepth(true, 0, 8, 8, 3), 3);
  StageMemory m;
  m.weights = 10 * kMiB - 1; // rounds up to 10 MiB
  m.activations = 3 * kMiB;
  m.wanted = 8;
  capInFlight(m, 20 * kMiB); // (20 - 10) / 3 = 3
  EXPECT_EQ(m.inFlight, 3);
  EXPECT_TRUE(m.capped());
  EXPECT_TRUE(m.fits(20 * kMiB));
  capInFlight(m, 11 * kMiB); // not even one fits: one is the floor
  EXPECT_EQ(m.inFlight, 1);
  EXPECT_FALSE(m.fits(11 * kMiB));
  // The messages: transit with the static terms, sends with each
  // microbatch, each rounded up on its own.
  m.transit = 2 * kMiB - 1;
  m.sends = 1;
  EXPECT_EQ(m.staticMiB(), 12);
  EXPECT_EQ(m.perMicrobatchMiB(), 4);
  capInFlight(m, 20 * kMiB); // (20 - 12) / 4 = 2
  EXPECT_EQ(m.inFlight, 2);
  EXPECT_DOUBLE_EQ(m.total(), 20 * kMiB);
  EXPECT_TRUE(m.fits(20 * kMiB));
}

// WarmupShare, the rule the generator and the estimate hand caps down by: a
// capped stage's own share holds it where it is; a stage after it holds
// ceil(held x its round trip / the capped stage's); a stage meets the
// smaller share of its predecessors'.
TEST(Fidelity, WarmupShareStepsDownWithTheRoundTrip) {
  WarmupShare none;
  EXPECT_EQ(none.limit(7, 5.0), 7);
  WarmupShare a = WarmupShare::of(2, 0.9); // Holds 3 over a 0.9 s trip.
  EXPECT_EQ(a.limit(9, 0.9), 2);           // Its own, whatever the rounding.
  EXPECT_EQ(a.limit(9, 0.6), 1);           // 3 x 0.6 / 0.9 = 2 held.
  EXPECT_EQ(a.limit(9, 0.61), 2);          // 2.03: 3 held.
  EXPECT_EQ(a.limit(0, 0.9), 0);           // Never above the warm-up given.
  EXPECT_EQ(a.limit(9, 0.01), 0);          // At least one held.
  WarmupShare b = WarmupShare::of(4, 0.5); // 5 over 0.5 s: a larger share.
  WarmupShare c = b;
  c.meet(a);
  EXPECT_EQ(c.limit(9, 0.6), 1);
  a.meet(b);
  EXPECT_EQ(a.limit(9, 0.6), 1);
  b.meet(WarmupShare());
  EXPECT_EQ(b.limit(9, 0.6), 5); // 5 x 0.6 / 0.5 = 6 held.
  EXPECT_EQ(WarmupShare::of(3, 0.0).limit(9, 1.0), 9); // No trip, no share.
}

// multimodalWarmups, the one rule of the generator and the estimate, on a
// frozen encoder (e, no backward), two trained ones (a0 -> a1, b0) and an
// LLM (l0 -> l1 -> l2), 16 microbatches; a round trip is the stage's depth
// + 1 (each stage's own part 1) except b0's, 8. a0 and b0 fit 2 each: a0
// holds 2 over a trip of 5, b0 2 over 8, the smaller share, which l0
// meets. a1 carries a0's warm-up of 1 (its share, 2 x 4 / 5, rounds up to
// 2 held); l0 carries 1 and its share is 2 x 3 / 8, 1 held: warm-up 0
// (a0's share alone would leave it 1). The indices run against the
// pipeline, so only the order given puts a stage after those it carries
// from; two such orders give the same.
TEST(Fidelity, MultimodalWarmupsCarryCapsAndShares) {
  enum { L2, L1, L0, B0, A1, A0, E };
  std::vector<WarmupStage> stages(7);
  int64_t depth[] = {0, 1, 2, 3, 3, 4, 3};
  for (int s = 0; s < 7; ++s) {
    stages[s].depth = depth[s];
    stages[s].backward = s != E;
    stages[s].trip = 1.0 + static_cast<double>(depth[s]);
  }
  stages[B0].trip = 8;
  stages[A0].fits = stages[B0].fits = 2;
  stages[A1].carriesFrom = {A0};
  stages[L0].carriesFrom = {A1, B0}; // Not e: it runs no backward.
  stages[L1].carriesFrom = {L0};
  stages[L2].carriesFrom = {L1};
  std::vector<int> order = {E, A0, A1, B0, L0, L1, L2};
  // By index: l2, l1, l0, b0, a1, a0, e.
  std::vector<int64_t> want = {0, 0, 0, 1, 1, 1, 16};
  EXPECT_EQ(multimodalWarmups(stages, order, 16), want);
  EXPECT_EQ(multimodalWarmups(stages, {B0, A0, E, A1, L0, L1, L2}, 16), want);
  // One microbatch: every warm-up is at most 1, which the caps allow.
  EXPECT_EQ(multimodalWarmups(stages, order, 1),
            (std::vector<int64_t>{0, 1, 1, 1, 1, 1, 1}));
  // Without the caps: the depths.
  stages[A0].fits = stages[B0].fits = 0;
  EXPECT_EQ(multimodalWarmups(stages, order, 16),
            (std::vector<int64_t>{0, 1, 2, 3, 3, 4, 16}));
  // A cap on l0 (fits 1) holds everything after it to 0, nothing before.
  stages[L0].fits = 1;
  EXPECT_EQ(multimodalWarmups(stages, order, 16),
            (std::vector<int64_t>{0, 0, 0, 3, 3, 4, 16}));
}

// A GPU that stages share holds the sum of their records, each term rounded
// up to MiB on its own (mllm.stage; the generator adds the records), in the
// partitioner as in mllm-rank-map. Two colocated encoders of 0.4 MiB
// weights and 0.4 MiB activations each: 2 + 2 x in flight MiB on a 7 MiB
// GPU is 2 of the 4 the warm-up wants (the summed bytes rounded once, 1 + 1
// x in flight, would let all 4 in: twice what the schedule can hold).
TEST(Fidelity, SharedGpuAddsTheRecordedTerms) {
  StageMemory piece;
  piece.weights = piece.activations = 0.4 * kMiB;
  StageMemory recorded = piece.recorded();
  EXPECT_DOUBLE_EQ(recorded.weights, kMiB);
  EXPECT_DOUBLE_EQ(recorded.activations, kMiB);
  EXPECT_DOUBLE_EQ(recorded.grads, 0);

  PipelineModule a = module("a", {1});
  a.memory.push_back({0.4 * kMiB, 0, 0, 0.4 * kMiB});
  a.stages = 1;
  PipelineModule b = a;
  b.name = "b";
  PipelineModule llm = module("llm", {1, 1, 1}, true);
  llm.memory.assign(3, {kMiB, 0, 0, 0});
  llm.stages = 3;
  PipelineResources res = resources(4, 8, 7 * kMiB);
  std::optional<PipelinePlan> plan =
      planPipeline({a, b, llm}, Layout::Colocated, Objective::MinMax, res);
  ASSERT_TRUE(plan);
  ASSERT_EQ(plan->paths.size(), 1u);
  const StageMemory &shared = plan->paths[0][0].memory;
  EXPECT_EQ(shared.wanted, 4);
  EXPECT_EQ(shared.inFlight, 2);
  EXPECT_DOUBLE_EQ(shared.total(), 6 * kMiB);
  EXPECT_TRUE(plan->fits);

  // A chain stage holding an encoder and the LLM's layer on one GPU: 2 MiB
  // static and 2 MiB per microbatch, not 1 and 1.
  PipelineModule head = llm;
  head.layers.resize(1);
  head.memory.assign(1, a.memory[0]);
  head.stages.reset();
  a.stages.reset();
  res.gpuBudget = 1;
  plan = planPipeline({a, head}, Layout::Chain, Objective::MinMax, res);
  ASSERT_TRUE(plan);
  ASSERT_EQ(plan->paths.size(), 1u);
  ASSERT_EQ(plan->paths[0].size(), 1u);
  const StageMemory &chain = plan->paths[0][0].memory;
  EXPECT_EQ(chain.staticMiB(), 2);
  EXPECT_EQ(chain.perMicrobatchMiB(), 2);
}

// What a stage holds of its messages, by the runtime's release rules
// (Memory.h): `received` bytes come in per microbatch, `sent` go out.
TEST(Fidelity, StageMessages) {
  // A middle stage with a backward: its sends wait for their gradients;
  // the gradient it received and two it sent are live at its peak.
  StageMessages mid = stageMessages(true, 3, 5);
  EXPECT_DOUBLE_EQ(mid.sends, 5);
  EXPECT_DOUBLE_EQ(mid.transit, 5 + 2 * 3);
  // The first stage sends gradients nowhere.
  StageMessages first = stageMessages(true, 0, 5);
  EXPECT_DOUBLE_EQ(first.sends, 5);
  EXPECT_DOUBLE_EQ(first.transit, 5);
  // The last: the activation it received and two gradients it sent.
  StageMessages last = stageMessages(true, 3, 0);
  EXPECT_DOUBLE_EQ(last.sends, 0);
  EXPECT_DOUBLE_EQ(last.transit, 3 * 3);
  // Without a backward nothing comes back: a window of three sends, and
  // the activation it received.
  StageMessages frozen = stageMessages(false, 3, 5);
  EXPECT_DOUBLE_EQ(frozen.sends, 0);
  EXPECT_DOUBLE_EQ(frozen.transit, 3 + 3 * 5);
}

// A stage sends gradient m back and its predecessor, holding p microbatches,
// sends the activation proving it arrived only with microbatch m + p: a
// stage holding k holds p - k + 1 sent gradients at its peak, never fewer
// than stageMessages' two. Fewer in flight hold more, so the cap and the
// transit are found together.
TEST(Fidelity, MoreSentGradientsBehindAStageHoldingMore) {
  EXPECT_EQ(sentGradientsHeld(2, 8), 7);
  EXPECT_EQ(sentGradientsHeld(3, 4), 2);
  EXPECT_EQ(sentGradientsHeld(1, 1), 2);
  StageMemory m;
  m.weights = 10 * kMiB;
  m.activations = 3 * kMiB;
  m.wanted = 8;
  setMessageTerms(m, kMiB, kMiB, kMiB); // sends 1, transit 1 + 2 x 1 MiB
  EXPECT_DOUBLE_EQ(m.gradientBack, kMiB);
  StageMemory alone = m;
  capInFlightAfter(alone, 30 * kMiB, {}); // (30 - 13) / 4 = 4
  EXPECT_EQ(alone.inFlight, 4);
  EXPECT_DOUBLE_EQ(alone.transit, 3 * kMiB);
  // Behind a stage holding 8: at 4, 5 gradients (static 16: 3 fit); at 3,
  // 6 (static 17: 3 fit). 4 would need 16 + 4 x 4 = 32 MiB.
  PredecessorsInFlight eight;
  eight.add(8);
  capInFlightAfter(m, 30 * kMiB, eight);
  EXPECT_EQ(m.inFlight, 3);
  EXPECT_DOUBLE_EQ(m.transit, (1 + sentGradientsHeld(3, 8)) * kMiB);
  EXPECT_TRUE(m.fits(30 * kMiB));
  // Behind predecessors holding 2 and 8 it runs with 2 (the generator
  // carries the smaller warm-up down), so the one holding 8 has 7 of its
  // gradients to take: static 10 + 1 + 7 = 18, still 3 fit.
  StageMemory carried = alone;
  setMessageTerms(carried, kMiB, kMiB, kMiB);
  PredecessorsInFlight twoAndEight;
  twoAndEight.add(8);
  twoAndEight.add(2);
  EXPECT_EQ(twoAndEight.fewest, 2);
  EXPECT_EQ(twoAndEight.most, 8);
  capInFlightAfter(carried, 30 * kMiB, twoAndEight);
  EXPECT_EQ(carried.inFlight, 3);
  EXPECT_DOUBLE_EQ(carried.transit, (1 + 7) * kMiB);
  // A stage without a backward sends no gradients.
  StageMemory frozen;
  frozen.weights = 10 * kMiB;
  frozen.wanted = 1;
  setMessageTerms(frozen, kMiB, kMiB, kMiB);
  EXPECT_DOUBLE_EQ(frozen.gradientBack, 0);
  capInFlightAfter(frozen, 30 * kMiB, eight);
  EXPECT_DOUBLE_EQ(frozen.transit, 4 * kMiB);
}

model::LayerShape llama8bBlock() {
  model::LayerShape s;
  s.hidden = 4096;
  s.ffn = 14336;
  s.heads = 32;
  s.kvHeads = 8;
  s.headDim = 128;
  s.gated = true;
  return s;
}

Device h100(double intra = 0, double inter = 0) {
  Device d;
  d.peakFlops = 989e12;
  d.memoryBandwidth = 3.35e12;
  d.intraNodeBandwidth = intra;
  d.interNodeBandwidth = inter;
  d.gpusPerNode = 8;
  return d;
}

// A CP rank is priced from its tokens (matmuls) and its share of the whole
// sequence's attention (the CP assignment's workloads): the even split is
// 1 / cp of both, a rank holding 40% of the attention pays 40% of the
// sequence's attention FLOPs.
TEST(Fidelity, ContextParallelRankPaysItsShare) {
  Workload w;
  w.tokens = 32768;
  w.attentionSpan = 32768;
  w.cp = 4;
  LayerCost even =
      layerCost(LayerKind::TransformerBlock, llama8bBlock(), w, h100());
  Workload whole = w;
  whole.cp = 1;
  LayerCost all =
      layerCost(LayerKind::TransformerBlock, llama8bBlock(), whole, h100());
  EXPECT_NEAR(even.attnFlops, all.attnFlops / 4, 1e-6 * all.attnFlops);
  Workload heavy = w;
  heavy.cpTokens = 8192;         // the same tokens as the even split
  heavy.cpAttentionShare = 0.40; // but 40% of the attention
  LayerCost h =
      layerCost(LayerKind::TransformerBlock, llama8bBlock(), heavy, h100());
  EXPECT_NEAR(h.attnFlops, 0.40 * all.attnFlops, 1e-6 * all.attnFlops);
  EXPECT_DOUBLE_EQ(h.fwdFlops - h.attnFlops, even.fwdFlops - even.attnFlops);
  EXPECT_GT(h.fwd, even.fwd);
  // More tokens, the same attention: the matmuls grow with the tokens.
  Workload wide = w;
  wide.cpTokens = 9472;
  wide.cpAttentionShare = 0.25;
  LayerCost m =
      layerCost(LayerKind::TransformerBlock, llama8bBlock(), wide, h100());
  EXPECT_NEAR(m.fwdFlops - m.attnFlops,
              (even.fwdFlops - even.attnFlops) * 9472.0 / 8192.0,
              1e-6 * m.fwdFlops);
}

// Collectives: a TP block all-reduces its output twice in the forward and
// its input gradient twice in the backward (ring: 2 (t - 1) / t x bytes /
// bandwidth), nothing on an infinite link; a CP block's K/V all-gather
// hides behind the attention it feeds and only what outlasts it shows.
TEST(Fidelity, CollectivesAtTheLinkSpeeds) {
  Workload w;
  w.tokens = 8192;
  w.attentionSpan = 8192;
  w.tp = 8;
  LayerCost free =
      layerCost(LayerKind::TransformerBlock, llama8bBlock(), w, h100());
  EXPECT_EQ(free.fwdComm, 0);
  double bw = 450e9;
  LayerCost tp = layerCost(LayerKind::TransformerBlock, llama8bBlock(), w,
                           h100(bw, bw / 10));
  double bytes = 8192.0 * 4096 * 2;
  EXPECT_NEAR(tp.fwdComm, 2 * allReduceTime(bytes, 8, bw), 1e-12);
  EXPECT_NEAR(tp.igradComm, 2 * allReduceTime(bytes, 8, bw), 1e-12);
  EXPECT_NEAR(tp.fwd - free.fwd, tp.fwdComm, 1e-12);
  EXPECT_DOUBLE_EQ(allReduceTime(bytes, 8, bw), 2 * 7.0 / 8 * bytes / bw);
  // A TP group larger than a node uses the inter-node link.
  Workload big = w;
  big.tp = 16;
  LayerCost across = layerCost(LayerKind::TransformerBlock, llama8bBlock(), big,
                               h100(bw, bw / 10));
  EXPECT_NEAR(across.fwdComm, 2 * allReduceTime(8192.0 * 4096 * 2, 16, bw / 10),
              1e-12);
  // CP: at 64k tokens the K/V gather hides behind the attention; over a
  // slow link it shows.
  Workload cp;
  cp.tokens = 65536;
  cp.attentionSpan = 65536;
  cp.cp = 4;
  LayerCost hidden =
      layerCost(LayerKind::TransformerBlock, llama8bBlock(), cp, h100(bw, bw));
  EXPECT_EQ(hidden.fwdComm, 0);
  LayerCost slow = layerCost(LayerKind::TransformerBlock, llama8bBlock(), cp,
                             h100(1e9, 1e9));
  EXPECT_GT(slow.fwdComm, 0);
  EXPECT_GT(slow.igradComm, slow.fwdComm); // gather again + reduce-scatter
}

} // namespace
