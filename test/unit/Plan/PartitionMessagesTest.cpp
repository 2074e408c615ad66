//===- PartitionMessagesTest.cpp - the messages a planned stage holds -----===//
//
// The message terms the partitioner charges each stage (mllm/Plan/Memory.h:
// its sends, the gradient it receives and those it sends back, more behind
// a predecessor holding more microbatches), in parallel pipelines and in
// chains, on made-up modules whose figures are worked out by hand.
//
//===----------------------------------------------------------------------===//

#include "mllm/Plan/Memory.h"
#include "mllm/Plan/Partition.h"

#include "Modules.h"

#include "gtest/gtest.h"

using namespace mllm::plan;
using mllm::plan::test::layersPerStage;
using mllm::plan::test::llmOf;
using mllm::plan::test::module;
using mllm::plan::test::resources;

namespace {

// The planner counts the messages of every stage: an LLM of four layers
// (1 GiB of state, 1 GiB saved per microbatch each) whose cut sends 1 GiB
// per microbatch, after encoders whose outputs are 0.5 GiB. On 7.5 GiB
// GPUs stage 0 of two layers holds 2 GiB + 2 GiB per microbatch before the
// messages: room for the two microbatches its warm-up wants. With its sends
// (1 GiB per microbatch), the gradient it receives (1 GiB) and two it
// sends back (0.5 GiB each) it has room for one.
TEST(PartitionMemory, StagesHoldTheirMessages) {
  PipelineModule llm = llmOf(4, 1, 1);
  llm.cutBytes = 1 * kGiB;
  llm.inputBytes = 0.5 * kGiB;
  llm.stages = 2;
  PipelineResources res = resources(2, 8, 7.5 * kGiB);
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
  PipelineModule llm = llmOf(3, 1, 2);
  llm.cutBytes = 1 * kGiB;
  llm.inputBytes = enc.outputBytes;
  llm.stages = 3;
  PipelineResources res = resources(4, 8, 7.5 * kGiB);
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
  PipelineModule llm = llmOf(3, 1, 2);
  llm.cutBytes = 1 * kGiB;
  llm.inputBytes = trained.outputBytes + frozen.outputBytes;
  llm.stages = 3;
  PipelineResources res = resources(5, 8, 7.5 * kGiB);
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
  PipelineResources res = resources(4, 8, 10 * kGiB);
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
  PipelineResources res = resources(2, 4, 100 * kGiB);
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
  PipelineResources res = resources(3, 4, 100 * kGiB);
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

} // namespace
