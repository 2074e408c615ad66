//===- PartitionMemoryTest.cpp - min-max cuts whose stages fit ------------===//
//
// partitionMinMax with a stage predicate against brute force over every
// composition (exactly, and by the fast search beyond the work limit);
// planPipeline and planChain never report a plan that does not fit when some
// cut within the budget fits (brute force over every stage count and cut), and
// a fixed stage count keeps the fastest fitting cut.
//
//===----------------------------------------------------------------------===//

#include "mllm/Plan/Memory.h"
#include "mllm/Plan/Partition.h"

#include "Cuts.h"

#include "gtest/gtest.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>

using namespace mllm::plan;
using mllm::plan::test::forEachCut;

namespace {

std::vector<int64_t> reversed(std::vector<int64_t> v) {
  std::reverse(v.begin(), v.end());
  return v;
}

/// The best admissible composition of n into k under the predicate
/// ok(first, end), with partitionMinMax's tie rule; empty if none.
std::vector<int64_t>
bruteForce(const std::vector<double> &w, int64_t k,
           const std::function<bool(int64_t, int64_t)> &ok) {
  double best = INFINITY;
  std::vector<int64_t> bestSizes;
  forEachCut(
      static_cast<int64_t>(w.size()), k, [&](const std::vector<int64_t> &c) {
        double b = 0;
        int64_t at = 0;
        for (int64_t s : c) {
          if (!ok(at, at + s))
            return;
          double sum = 0;
          for (int64_t l = at; l < at + s; ++l)
            sum += w[l];
          b = std::max(b, sum);
          at += s;
        }
        if (b < best || (b == best && reversed(c) < reversed(bestSizes))) {
          best = b;
          bestSizes = c;
        }
      });
  return bestSizes;
}

// Random weights and a predicate that holds for each start up to a random
// last end (as memory: a stage that fits still fits without its last
// layers; not monotone in the start, as a tied head's copy makes it): the
// exact DP's bottleneck and tie rule are those of the best admissible
// composition; no admissible composition gives an empty result.
TEST(PartitionMemory, PredicateMatchesBruteForce) {
  std::mt19937_64 rng(31);
  int none = 0, some = 0;
  for (int iter = 0; iter < 800; ++iter) {
    int64_t n = 1 + rng() % 10;
    int64_t k = 1 + rng() % n;
    std::vector<double> w(n);
    for (double &x : w)
      x = static_cast<double>(rng() % 6); // Integral: exact ties.
    std::vector<int64_t> lastEnd(n);
    for (int64_t j = 0; j < n; ++j) // j: not even one layer fits.
      lastEnd[j] = j + static_cast<int64_t>(rng() % (n - j + 1));
    auto ok = [&](int64_t first, int64_t end) { return end <= lastEnd[first]; };
    std::vector<int64_t> want = bruteForce(w, k, ok);
    EXPECT_EQ(partitionMinMax(w, k, ok), want) << "iter " << iter;
    (want.empty() ? none : some) += 1;
  }
  // Both outcomes are exercised.
  EXPECT_GT(none, 50);
  EXPECT_GT(some, 300);
}

// Beyond the exact work limit (forced here with a limit of 0) the search is
// exact for memory-like predicates: layer sizes against a capacity (every
// part of a stage that fits fits too). For others its partition, if any,
// satisfies the predicate and is no better than the optimum.
TEST(PartitionMemory, FastSearchMatchesBruteForce) {
  std::mt19937_64 rng(32);
  int some = 0;
  for (int iter = 0; iter < 800; ++iter) {
    int64_t n = 1 + rng() % 10;
    int64_t k = 1 + rng() % n;
    std::vector<double> w(n), size(n);
    for (int64_t i = 0; i < n; ++i) {
      w[i] = static_cast<double>(rng() % 6);
      size[i] = static_cast<double>(rng() % 5);
    }
    double capacity = static_cast<double>(rng() % 12);
    auto memory = [&](int64_t first, int64_t end) {
      double sum = 0;
      for (int64_t l = first; l < end; ++l)
        sum += size[l];
      return sum <= capacity;
    };
    std::vector<int64_t> want = bruteForce(w, k, memory);
    EXPECT_EQ(partitionMinMax(w, k, memory, /*exactWorkLimit=*/0), want)
        << "iter " << iter;
    some += !want.empty();
    // Any end-monotone predicate: a valid partition, never better.
    std::vector<int64_t> lastEnd(n);
    for (int64_t j = 0; j < n; ++j)
      lastEnd[j] = j + static_cast<int64_t>(rng() % (n - j + 1));
    auto ok = [&](int64_t first, int64_t end) { return end <= lastEnd[first]; };
    std::vector<int64_t> got = partitionMinMax(w, k, ok, 0);
    std::vector<int64_t> best = bruteForce(w, k, ok);
    if (got.empty())
      continue;
    ASSERT_FALSE(best.empty()) << "iter " << iter;
    ASSERT_EQ(static_cast<int64_t>(got.size()), k);
    int64_t at = 0;
    for (int64_t s : got) {
      EXPECT_GE(s, 1);
      EXPECT_TRUE(ok(at, at + s)) << "iter " << iter;
      at += s;
    }
    EXPECT_EQ(at, n);
    EXPECT_GE(mllm::plan::test::maxStageSum(w, got),
              mllm::plan::test::maxStageSum(w, best))
        << "iter " << iter;
  }
  EXPECT_GT(some, 300);
}

/// Layer i of a module: `time` split evenly into forward and backward,
/// `gib` GiB of weights.
PipelineModule module(std::string name, const std::vector<double> &times,
                      const std::vector<double> &gib, bool llm) {
  PipelineModule m;
  m.name = std::move(name);
  m.isLLM = llm;
  for (size_t i = 0; i < times.size(); ++i) {
    m.layers.push_back({times[i] / 2, times[i] / 2, 0});
    m.memory.push_back({gib[i] * kGiB, 0, 0, 0});
  }
  return m;
}

std::vector<int64_t> layersPerStage(const PipelinePlan &plan) {
  std::vector<int64_t> out;
  for (const StagePlan &s : plan.stages)
    out.push_back(s.numLayers);
  return out;
}

// Layers of 1, 1, 1, 3 time units and 4, 4, 4, 1 GiB on 10 GiB GPUs: the
// fastest cut in two stages, 3 + 1 (bottleneck 3), needs 12 GiB on the
// first; 2 + 2 fits (bottleneck 4) and is what a fixed pp = 2 gets, and
// what pp = auto finds within two GPUs (one stage needs 13 GiB).
TEST(PartitionMemory, FixedStagesKeepTheFastestFittingCut) {
  PipelineModule llm = module("llm", {1, 1, 1, 3}, {4, 4, 4, 1}, true);
  PipelineResources res;
  res.gpuBudget = 2;
  res.microbatches = 8;
  res.memoryCapacity = 10 * kGiB;
  llm.stages = 2;
  std::optional<PipelinePlan> plan =
      planPipeline({llm}, Layout::Parallel, Objective::MinMax, res);
  ASSERT_TRUE(plan);
  EXPECT_TRUE(plan->fits);
  EXPECT_EQ(layersPerStage(*plan), (std::vector<int64_t>{2, 2}));
  EXPECT_DOUBLE_EQ(plan->bottleneck, 4.0);
  llm.stages.reset();
  plan = planPipeline({llm}, Layout::Parallel, Objective::MinMax, res);
  ASSERT_TRUE(plan);
  EXPECT_TRUE(plan->fits);
  EXPECT_EQ(layersPerStage(*plan), (std::vector<int64_t>{2, 2}));
  // Without the memory model the fastest cut.
  res.memoryCapacity = 0;
  plan = planPipeline({llm}, Layout::Parallel, Objective::MinMax, res);
  ASSERT_TRUE(plan);
  EXPECT_EQ(layersPerStage(*plan), (std::vector<int64_t>{3, 1}));
  // Nothing fits (a 4 GiB layer on 3 GiB GPUs): the closest miss, two
  // stages cut for the least memory (8 GiB at most: not the fastest cut,
  // which needs 12, nor one stage of 13), reported as not fitting.
  res.memoryCapacity = 3 * kGiB;
  plan = planPipeline({llm}, Layout::Parallel, Objective::MinMax, res);
  ASSERT_TRUE(plan);
  EXPECT_FALSE(plan->fits);
  EXPECT_EQ(layersPerStage(*plan), (std::vector<int64_t>{2, 2}));
}

// Layers of 1, 1, 1, 1.2 time units; the first two hold 4 GiB of state
// and 1 GiB of activations per microbatch, the others 1 and 0.5, on
// 10.5 GiB GPUs. The fastest cut fitting one microbatch, 2 + 2 (bottleneck
// 2.2), fits no more on its first stage, which 1F1B wants to hold two:
// every microbatch then makes the round trip alone. 1 + 3 (bottleneck 3.2)
// holds both, and is estimated faster: the planner prices both.
TEST(PartitionMemory, RoomierCutWhenTheFastestIsCapped) {
  PipelineModule llm;
  llm.name = "llm";
  llm.isLLM = true;
  for (double t : {1.0, 1.0, 1.0, 1.2})
    llm.layers.push_back({t / 2, t / 2, 0});
  llm.memory = {{4 * kGiB, 0, 0, 1 * kGiB},
                {4 * kGiB, 0, 0, 1 * kGiB},
                {1 * kGiB, 0, 0, 0.5 * kGiB},
                {1 * kGiB, 0, 0, 0.5 * kGiB}};
  llm.stages = 2;
  PipelineResources res;
  res.gpuBudget = 2;
  res.microbatches = 8;
  res.memoryCapacity = 10.5 * kGiB;
  std::optional<PipelinePlan> plan =
      planPipeline({llm}, Layout::Parallel, Objective::MinMax, res);
  ASSERT_TRUE(plan);
  EXPECT_TRUE(plan->fits);
  EXPECT_EQ(layersPerStage(*plan), (std::vector<int64_t>{1, 3}));
  EXPECT_FALSE(plan->stages[0].memory.capped());
  EXPECT_TRUE(plan->stages[0].cutToFit);
  // The capped fastest cut, priced the same way, is slower.
  std::vector<StagePlan> capped = plan->stages;
  capped[0].numLayers = 2;
  capped[1].firstLayer = 2;
  capped[1].numLayers = 2;
  capped[0].fwd = capped[0].bwd = 1.0;
  capped[1].fwd = capped[1].bwd = 1.1;
  capped[0].memory = {8 * kGiB, 0, 0, 2 * kGiB, 2, 0};
  capInFlight(capped[0].memory, res.memoryCapacity);
  capped[1].memory = {2 * kGiB, 0, 0, 1 * kGiB, 1, 0};
  capInFlight(capped[1].memory, res.memoryCapacity);
  ASSERT_TRUE(capped[0].memory.capped());
  EXPECT_GT(estimateIterationTime({capped}, res.microbatches),
            plan->iterationTime);
  // With room for both, the fastest cut.
  res.memoryCapacity = 20 * kGiB;
  plan = planPipeline({llm}, Layout::Parallel, Objective::MinMax, res);
  ASSERT_TRUE(plan);
  EXPECT_EQ(layersPerStage(*plan), (std::vector<int64_t>{2, 2}));
  EXPECT_FALSE(plan->stages[0].cutToFit);
}

// LLM layers of 6 GiB on 5 GiB GPUs fit nowhere: the plan is the closest
// miss (each LLM layer alone), whatever its estimate (one stage would run
// no slower with one microbatch), on the fewest GPUs among those.
TEST(PartitionMemory, ClosestMissWhenNothingFits) {
  PipelineModule enc = module("enc", {1, 1}, {1, 1}, false);
  PipelineModule llm = module("llm", {1, 1}, {6, 6}, true);
  PipelineResources res;
  res.gpuBudget = 4;
  res.microbatches = 1;
  res.memoryCapacity = 5 * kGiB;
  std::optional<PipelinePlan> plan =
      planPipeline({enc, llm}, Layout::Chain, Objective::MinMax, res);
  ASSERT_TRUE(plan);
  EXPECT_FALSE(plan->fits);
  EXPECT_EQ(layersPerStage(*plan), (std::vector<int64_t>{2, 1, 1}));
  plan = planPipeline({enc, llm}, Layout::Parallel, Objective::MinMax, res);
  ASSERT_TRUE(plan);
  EXPECT_FALSE(plan->fits);
  EXPECT_EQ(plan->stagesPerModule, (std::vector<int64_t>{1, 2}));
}

// The chain of an encoder's two light layers and an LLM's two heavy ones
// (6 GiB each) on two 10 GiB GPUs: the fastest cut, 2 + 2, puts both LLM
// layers on one GPU; the chain finds 3 + 1.
TEST(PartitionMemory, ChainFindsAFittingCut) {
  PipelineModule enc = module("enc", {1, 1}, {1, 1}, false);
  PipelineModule llm = module("llm", {1, 1}, {6, 6}, true);
  PipelineResources res;
  res.gpuBudget = 2;
  res.microbatches = 8;
  res.memoryCapacity = 10 * kGiB;
  std::optional<PipelinePlan> plan =
      planPipeline({enc, llm}, Layout::Chain, Objective::MinMax, res);
  ASSERT_TRUE(plan);
  EXPECT_TRUE(plan->fits);
  ASSERT_EQ(plan->paths.size(), 1u);
  ASSERT_EQ(plan->paths[0].size(), 2u);
  EXPECT_EQ(plan->paths[0][0].numLayers, 3);
  EXPECT_EQ(plan->paths[0][1].numLayers, 1);
  EXPECT_DOUBLE_EQ(plan->bottleneck, 3.0);
}

// The planner counts the messages of every stage: an LLM of four layers
// (1 GiB of state, 1 GiB saved per microbatch each) whose cut sends 1 GiB
// per microbatch, after encoders whose outputs are 0.5 GiB. On 7.5 GiB
// GPUs stage 0 of two layers holds 2 GiB + 2 GiB per microbatch before the
// messages: room for the two microbatches its warm-up wants. With its sends
// (1 GiB per microbatch), the gradient it receives (1 GiB) and two it
// sends back (0.5 GiB each) it has room for one.
TEST(PartitionMemory, StagesHoldTheirMessages) {
  PipelineModule llm;
  llm.name = "llm";
  llm.isLLM = true;
  for (int l = 0; l < 4; ++l) {
    llm.layers.push_back({1, 1, 0});
    llm.memory.push_back({1 * kGiB, 0, 0, 1 * kGiB});
  }
  llm.cutBytes = 1 * kGiB;
  llm.inputBytes = 0.5 * kGiB;
  llm.stages = 2;
  PipelineResources res;
  res.gpuBudget = 2;
  res.microbatches = 8;
  res.memoryCapacity = 7.5 * kGiB;
  std::optional<PipelinePlan> plan =
      planPipeline({llm}, Layout::Parallel, Objective::MinMax, res);
  ASSERT_TRUE(plan);
  ASSERT_EQ(plan->stages.size(), 2u);
  EXPECT_EQ(layersPerStage(*plan), (std::vector<int64_t>{2, 2}));
  const StageMemory &s0 = plan->stages[0].memory, &s1 = plan->stages[1].memory;
  EXPECT_DOUBLE_EQ(s0.sends, 1 * kGiB);
  EXPECT_DOUBLE_EQ(s0.transit, 1 * kGiB + 2 * 0.5 * kGiB);
  EXPECT_EQ(s0.wanted, 2);
  EXPECT_EQ(s0.inFlight, 1);
  // The last stage sends nothing on; it holds the activation it received
  // and two gradients it sent.
  EXPECT_DOUBLE_EQ(s1.sends, 0);
  EXPECT_DOUBLE_EQ(s1.transit, 3 * kGiB);
  EXPECT_TRUE(plan->fits);
  // A frozen LLM (no backward) holds no sends, and a window of three.
  for (LayerMemory &m : llm.memory)
    m.activations = 0;
  plan = planPipeline({llm}, Layout::Parallel, Objective::MinMax, res);
  ASSERT_TRUE(plan);
  EXPECT_DOUBLE_EQ(plan->stages[0].memory.sends, 0);
  EXPECT_DOUBLE_EQ(plan->stages[0].memory.transit, 0.5 * kGiB + 3 * 1 * kGiB);
}

// An encoder stage holding 4 microbatches before an LLM stage capped to 1:
// the LLM stage sends gradient m back, and the encoder's activation that
// proves it arrived is microbatch m + 4, so it holds 4 sent gradients, not
// 2 (sentGradientsHeld). GiB: LLM layers of 1 weights, 2 activations, cuts
// of 1; the encoder's output 0.5; 7.5 GiB GPUs.
TEST(PartitionMemory, MoreSentGradientsBehindAStageHoldingMore) {
  PipelineModule enc;
  enc.name = "enc";
  enc.layers.push_back({0.1, 0.1, 0});
  enc.memory.push_back({0.5 * kGiB, 0, 0, 0.25 * kGiB});
  enc.outputBytes = 0.5 * kGiB;
  enc.stages = 1;
  PipelineModule llm;
  llm.name = "llm";
  llm.isLLM = true;
  for (int l = 0; l < 3; ++l) {
    llm.layers.push_back({1, 1, 0});
    llm.memory.push_back({1 * kGiB, 0, 0, 2 * kGiB});
  }
  llm.cutBytes = 1 * kGiB;
  llm.inputBytes = enc.outputBytes;
  llm.stages = 3;
  PipelineResources res;
  res.gpuBudget = 4;
  res.microbatches = 8;
  res.memoryCapacity = 7.5 * kGiB;
  std::optional<PipelinePlan> plan =
      planPipeline({enc, llm}, Layout::Parallel, Objective::MinMax, res);
  ASSERT_TRUE(plan);
  ASSERT_EQ(plan->paths.size(), 1u);
  ASSERT_EQ(plan->paths[0].size(), 4u);
  const StageMemory &e = plan->paths[0][0].memory;
  const StageMemory &l0 = plan->paths[0][1].memory;
  const StageMemory &l1 = plan->paths[0][2].memory;
  EXPECT_EQ(e.inFlight, 4);
  // Two gradients: static 1 + 2, (7.5 - 3) / 3 = 1 in flight. Four: static
  // 4, still 1 (7 GiB).
  EXPECT_EQ(l0.inFlight, 1);
  EXPECT_DOUBLE_EQ(l0.transit, 1 * kGiB + 4 * 0.5 * kGiB);
  EXPECT_TRUE(l0.fits(res.memoryCapacity));
  // The stage after it holds as many in flight: two, as stageMessages.
  EXPECT_EQ(l1.inFlight, 1);
  EXPECT_DOUBLE_EQ(l1.transit, 1 * kGiB + 2 * 1 * kGiB);
  // The per-module stages say the same.
  EXPECT_DOUBLE_EQ(plan->stages[1].memory.transit, l0.transit);
  // A frozen encoder takes no gradients: two, as stageMessages counts.
  enc.memory[0].activations = 0;
  plan = planPipeline({enc, llm}, Layout::Parallel, Objective::MinMax, res);
  ASSERT_TRUE(plan);
  EXPECT_DOUBLE_EQ(plan->paths[0][1].memory.transit, 1 * kGiB + 2 * 0.5 * kGiB);
}

// Beside the trained encoder, a frozen one (no backward) of 0.25 GiB
// outputs: the LLM's first stage sends it no gradients, so only the
// trained encoder's 0.5 GiB are held 4 times: transit 1 + 2 x 0.75 + 2 x
// 0.5 = 3.5 GiB, which fits 7.5 GiB with one microbatch (counting the
// frozen encoder's too, 4 GiB would not).
TEST(PartitionMemory, FrozenEncodersTakeNoGradients) {
  PipelineModule trained;
  trained.name = "trained";
  trained.layers.push_back({0.1, 0.1, 0});
  trained.memory.push_back({0.5 * kGiB, 0, 0, 0.25 * kGiB});
  trained.outputBytes = 0.5 * kGiB;
  trained.stages = 1;
  PipelineModule frozen = trained;
  frozen.name = "frozen";
  frozen.memory[0].activations = 0;
  frozen.outputBytes = 0.25 * kGiB;
  PipelineModule llm;
  llm.name = "llm";
  llm.isLLM = true;
  for (int l = 0; l < 3; ++l) {
    llm.layers.push_back({1, 1, 0});
    llm.memory.push_back({1 * kGiB, 0, 0, 2 * kGiB});
  }
  llm.cutBytes = 1 * kGiB;
  llm.inputBytes = trained.outputBytes + frozen.outputBytes;
  llm.stages = 3;
  PipelineResources res;
  res.gpuBudget = 5;
  res.microbatches = 8;
  res.memoryCapacity = 7.5 * kGiB;
  std::optional<PipelinePlan> plan = planPipeline(
      {trained, frozen, llm}, Layout::Parallel, Objective::MinMax, res);
  ASSERT_TRUE(plan);
  ASSERT_EQ(plan->paths.size(), 2u);
  const StageMemory &l0 = plan->paths[0][1].memory;
  EXPECT_EQ(plan->paths[0][0].memory.inFlight, 4);
  EXPECT_EQ(l0.inFlight, 1);
  EXPECT_DOUBLE_EQ(l0.gradientBack, 0.5 * kGiB);
  EXPECT_DOUBLE_EQ(l0.transit, 3.5 * kGiB);
  EXPECT_TRUE(plan->fits);
  EXPECT_DOUBLE_EQ(plan->paths[1][1].memory.transit, l0.transit);
}

// The same in a chain: stage 1 (the LLM's first layer) capped to 1 behind
// the encoder's stage holding 4 holds 4 of its 0.5 GiB gradients. GiB: any
// two layers exceed the 10 GiB GPU, so the chain has four stages.
TEST(PartitionMemory, ChainStageBehindOneHoldingMore) {
  PipelineModule enc = module("enc", {1}, {6}, false);
  enc.memory[0].activations = 0.25 * kGiB;
  enc.outputBytes = 0.5 * kGiB;
  PipelineModule llm = module("llm", {1, 1, 1}, {5.5, 5, 6}, true);
  llm.memory[0].activations = 0.5 * kGiB; // 1.5 with its 1 GiB send
  llm.memory[1].activations = llm.memory[2].activations = 0.25 * kGiB;
  llm.cutBytes = 1 * kGiB;
  PipelineResources res;
  res.gpuBudget = 4;
  res.microbatches = 8;
  res.memoryCapacity = 10 * kGiB;
  std::optional<PipelinePlan> plan =
      planPipeline({enc, llm}, Layout::Chain, Objective::MinMax, res);
  ASSERT_TRUE(plan);
  ASSERT_EQ(plan->paths.size(), 1u);
  ASSERT_EQ(plan->paths[0].size(), 4u);
  EXPECT_TRUE(plan->fits);
  EXPECT_EQ(plan->paths[0][0].memory.inFlight, 4);
  const StageMemory &s1 = plan->paths[0][1].memory;
  EXPECT_EQ(s1.inFlight, 1);
  EXPECT_DOUBLE_EQ(s1.transit, 1 * kGiB + 4 * 0.5 * kGiB);
  // Recorded on the stage's piece.
  EXPECT_DOUBLE_EQ(plan->stages[1].memory.transit, s1.transit);
  // Stage 2 holds as many as stage 1: two of its 1 GiB gradients.
  EXPECT_EQ(plan->paths[0][2].memory.inFlight, 1);
  EXPECT_DOUBLE_EQ(plan->paths[0][2].memory.transit, 3 * kGiB);
}

// A chain stage's pieces hand each other nothing: its messages are those
// across the cuts around it, recorded on its last piece.
TEST(PartitionMemory, ChainStageMessagesCrossItsCuts) {
  PipelineModule enc = module("enc", {0.1, 0.1}, {1, 1}, false);
  PipelineModule llm = module("llm", {1, 1}, {1, 1}, true);
  for (PipelineModule *m : {&enc, &llm})
    for (LayerMemory &l : m->memory)
      l.activations = 0.25 * kGiB;
  enc.cutBytes = 0.5 * kGiB;
  enc.outputBytes = 0.125 * kGiB;
  llm.cutBytes = 1 * kGiB;
  PipelineResources res;
  res.gpuBudget = 2;
  res.microbatches = 4;
  res.memoryCapacity = 100 * kGiB;
  std::optional<PipelinePlan> plan =
      planPipeline({enc, llm}, Layout::Chain, Objective::MinMax, res);
  ASSERT_TRUE(plan);
  ASSERT_EQ(plan->paths.size(), 1u);
  ASSERT_EQ(plan->paths[0].size(), 2u);
  // 3 + 1 (bottleneck 1.2): the chain stage holding the encoder and the
  // LLM's first layer sends the LLM's cut; the encoder's output stays on
  // its GPUs.
  EXPECT_EQ(plan->paths[0][0].numLayers, 3);
  const StageMemory &first = plan->paths[0][0].memory;
  EXPECT_DOUBLE_EQ(first.sends, 1 * kGiB);
  EXPECT_DOUBLE_EQ(first.transit, 1 * kGiB);
  const StageMemory &last = plan->paths[0][1].memory;
  EXPECT_DOUBLE_EQ(last.sends, 0);
  EXPECT_DOUBLE_EQ(last.transit, 3 * kGiB);
  // Recorded on the pieces: the encoder's none, the LLM's first the
  // chain stage's.
  ASSERT_EQ(plan->stages.size(), 3u);
  EXPECT_DOUBLE_EQ(plan->stages[0].memory.sends, 0);
  EXPECT_DOUBLE_EQ(plan->stages[0].memory.transit, 0);
  EXPECT_DOUBLE_EQ(plan->stages[1].memory.sends, 1 * kGiB);
}

// A chain cut at the end of the second of two encoders, before the LLM,
// carries both encoders' outputs: the LLM's first layer reads them all
// (the schedule's message, FromIR's layOutChain).
TEST(PartitionMemory, ChainCutsCarryEarlierEncoderOutputs) {
  PipelineModule enc1 = module("enc1", {0.1, 0.1}, {1, 1}, false);
  PipelineModule enc2 = module("enc2", {0.5, 0.5}, {1, 1}, false);
  PipelineModule llm = module("llm", {1.2, 1.2}, {1, 1}, true);
  for (PipelineModule *m : {&enc1, &enc2, &llm})
    for (LayerMemory &l : m->memory)
      l.activations = 0.25 * kGiB;
  enc1.outputBytes = 0.25 * kGiB;
  enc2.outputBytes = 0.5 * kGiB;
  llm.cutBytes = 1 * kGiB;
  PipelineResources res;
  res.gpuBudget = 3;
  res.microbatches = 4;
  res.memoryCapacity = 100 * kGiB;
  std::optional<PipelinePlan> plan =
      planPipeline({enc1, enc2, llm}, Layout::Chain, Objective::MinMax, res);
  ASSERT_TRUE(plan);
  ASSERT_EQ(plan->paths.size(), 1u);
  const std::vector<StagePlan> &path = plan->paths[0];
  ASSERT_EQ(path.size(), 3u);
  // [enc1, enc2] + [llm0] + [llm1] (bottleneck 1.2).
  EXPECT_EQ(path[0].numLayers, 4);
  EXPECT_DOUBLE_EQ(path[0].memory.sends, 0.75 * kGiB);
  EXPECT_DOUBLE_EQ(path[1].memory.sends, 1 * kGiB);
  EXPECT_DOUBLE_EQ(path[1].memory.transit, 1 * kGiB + 2 * 0.75 * kGiB);
  EXPECT_DOUBLE_EQ(path[2].memory.transit, 3 * 1 * kGiB);
}

/// Whether layers [first, end) of the chain `mods` fit one GPU of
/// `capacity` with one microbatch in flight (the LLM's last piece, when it
/// does not start the LLM, holds its extra).
bool chainFits(const std::vector<PipelineModule> &mods, int64_t first,
               int64_t end, double capacity) {
  StageMemory mem;
  int64_t at = 0;
  for (const PipelineModule &m : mods) {
    auto n = static_cast<int64_t>(m.layers.size());
    int64_t lo = std::max(first, at), hi = std::min(end, at + n);
    for (int64_t l = lo; l < hi; ++l) {
      const LayerMemory &lm = m.memory[l - at];
      mem.weights += lm.weights;
      mem.activations += lm.activations;
    }
    if (lo < hi && hi == at + n && lo > at)
      mem.weights += m.lastStageExtra.weights;
    at += n;
  }
  mem.wanted = mem.inFlight = 1;
  return mem.fits(capacity);
}

// Random modules with memory, random budgets and capacities: whenever some
// stage count within the budget has a cut whose every stage fits, the plan
// fits (Parallel with the LLM alone, and Chain with an encoder), and a plan
// that fits has stages that fit.
TEST(PartitionMemory, NeverMissesAFittingPlan) {
  std::mt19937_64 rng(77);
  std::uniform_real_distribution<double> time(0.5, 4.0), gib(0.5, 6.0);
  int fitting = 0, notFitting = 0;
  for (int iter = 0; iter < 300; ++iter) {
    bool chain = iter % 2 == 1;
    std::vector<PipelineModule> mods;
    for (int part = chain ? 0 : 1; part < 2; ++part) {
      int64_t n = 1 + rng() % 5;
      std::vector<double> t(n), g(n);
      for (int64_t i = 0; i < n; ++i) {
        t[i] = time(rng);
        g[i] = gib(rng);
      }
      mods.push_back(module(part ? "llm" : "enc", t, g, part == 1));
      mods.back().memory[0].activations = gib(rng) * kGiB;
    }
    mods.back().lastStageExtra.weights = gib(rng) * kGiB;
    int64_t n = 0;
    for (const PipelineModule &m : mods)
      n += static_cast<int64_t>(m.layers.size());
    PipelineResources res;
    res.gpuBudget = 1 + rng() % n;
    res.microbatches = 1 + rng() % 8;
    res.memoryCapacity =
        std::uniform_real_distribution<double>(4, 20)(rng) * kGiB;
    bool exists = false;
    for (int64_t k = 1; k <= std::min(n, res.gpuBudget) && !exists; ++k)
      forEachCut(n, k, [&](const std::vector<int64_t> &sizes) {
        int64_t at = 0;
        bool all = true;
        for (int64_t s : sizes) {
          all &= chainFits(mods, at, at + s, res.memoryCapacity);
          at += s;
        }
        exists |= all;
      });
    std::optional<PipelinePlan> plan = planPipeline(
        mods, chain ? Layout::Chain : Layout::Parallel, Objective::MinMax, res);
    ASSERT_TRUE(plan) << "iter " << iter;
    EXPECT_EQ(plan->fits, exists) << "iter " << iter;
    // Its stages, recomputed here from the layers they hold, fit.
    if (plan->fits)
      for (const StagePlan &s : plan->paths[0])
        EXPECT_TRUE(chainFits(mods, s.firstLayer, s.firstLayer + s.numLayers,
                              res.memoryCapacity))
            << "iter " << iter;
    (exists ? fitting : notFitting) += 1;
  }
  EXPECT_GT(fitting, 60);
  EXPECT_GT(notFitting, 30);
}

} // namespace
