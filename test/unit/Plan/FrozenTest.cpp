//===- FrozenTest.cpp - which layers need which gradients -----------------===//
#include "mllm/Plan/Frozen.h"

#include <gtest/gtest.h>

using namespace mllm::plan;

namespace {

using Bits = std::vector<bool>;

ModuleChain chain(std::string name, int layers, bool trainable,
                  std::vector<int> predecessors, bool recompute = false) {
  ModuleChain m;
  m.name = std::move(name);
  m.trainable.assign(layers, trainable);
  m.recompute.assign(layers, recompute);
  m.predecessors = std::move(predecessors);
  return m;
}

Bits all(int n, bool value) { return Bits(n, value); }

/// The paper's Fig. 1c VLM: encoder -> projector -> LLM, with the projector
/// trainable as in every recipe the paper runs.
std::vector<ModuleChain> vlm(bool encoderTrains, bool projectorTrains,
                             bool llmTrains) {
  return {chain("siglip", 4, encoderTrains, {}),
          chain("projector", 1, projectorTrains, {0}),
          chain("llama", 5, llmTrains, {1})};
}

} // namespace

TEST(Frozen, FrozenEncoderAndLlmTrainableProjector) {
  std::vector<GradFlags> f = analyzeFrozen(vlm(false, true, false));
  ASSERT_EQ(f.size(), 3u);
  // The encoder is upstream of everything trainable: no backward at all.
  EXPECT_EQ(f[0].needsWeightGrad, all(4, false));
  EXPECT_EQ(f[0].needsInputGrad, all(4, false));
  // The projector is the first trainable layer: weights only.
  EXPECT_EQ(f[1].needsWeightGrad, all(1, true));
  EXPECT_EQ(f[1].needsInputGrad, all(1, false));
  // The frozen LLM passes gradients back to the projector.
  EXPECT_EQ(f[2].needsWeightGrad, all(5, false));
  EXPECT_EQ(f[2].needsInputGrad, all(5, true));
}

TEST(Frozen, FrozenEncoderTrainableLlm) {
  std::vector<GradFlags> f = analyzeFrozen(vlm(false, true, true));
  EXPECT_EQ(f[0].needsWeightGrad, all(4, false));
  EXPECT_EQ(f[0].needsInputGrad, all(4, false));
  EXPECT_EQ(f[1].needsWeightGrad, all(1, true));
  EXPECT_EQ(f[1].needsInputGrad, all(1, false));
  EXPECT_EQ(f[2].needsWeightGrad, all(5, true));
  EXPECT_EQ(f[2].needsInputGrad, all(5, true));
}

TEST(Frozen, TrainableEncoderFrozenLlm) {
  std::vector<GradFlags> f = analyzeFrozen(vlm(true, true, false));
  EXPECT_EQ(f[0].needsWeightGrad, all(4, true));
  // Only the encoder's first layer is spared the input gradient.
  EXPECT_EQ(f[0].needsInputGrad, (Bits{false, true, true, true}));
  EXPECT_EQ(f[1].needsWeightGrad, all(1, true));
  EXPECT_EQ(f[1].needsInputGrad, all(1, true));
  EXPECT_EQ(f[2].needsWeightGrad, all(5, false));
  EXPECT_EQ(f[2].needsInputGrad, all(5, true));
}

TEST(Frozen, EverythingTrainable) {
  std::vector<GradFlags> f = analyzeFrozen(vlm(true, true, true));
  EXPECT_EQ(f[0].needsWeightGrad, all(4, true));
  EXPECT_EQ(f[0].needsInputGrad, (Bits{false, true, true, true}));
  EXPECT_EQ(f[1].needsInputGrad, all(1, true));
  EXPECT_EQ(f[2].needsWeightGrad, all(5, true));
  EXPECT_EQ(f[2].needsInputGrad, all(5, true));
}

TEST(Frozen, EverythingFrozenNeedsNothing) {
  std::vector<ModuleChain> modules = vlm(false, false, false);
  for (ModuleChain &m : modules)
    m.recompute.assign(m.trainable.size(), true);
  std::vector<GradFlags> f = analyzeFrozen(modules);
  for (const GradFlags &g : f) {
    size_t n = g.needsWeightGrad.size();
    EXPECT_EQ(g.needsWeightGrad, all(n, false));
    EXPECT_EQ(g.needsInputGrad, all(n, false));
    EXPECT_EQ(g.recomputes, all(n, false));
  }
}

TEST(Frozen, PartlyFrozenChain) {
  // Freezing the first layers of an LLM: the first trainable layer needs no
  // input gradient, every later one does, frozen or not.
  std::vector<ModuleChain> m = {chain("llm", 5, false, {})};
  m[0].trainable = {false, false, true, false, true};
  GradFlags f = analyzeFrozen(m)[0];
  EXPECT_EQ(f.needsWeightGrad, (Bits{false, false, true, false, true}));
  EXPECT_EQ(f.needsInputGrad, (Bits{false, false, false, true, true}));
}

TEST(Frozen, TwoEncodersOnlyOnePathTrains) {
  // vision -> vproj ---\
  //                      > llm (frozen)
  // audio  -> aproj ---/
  // Only the vision projector trains: the audio path upstream of the LLM
  // has nothing to send gradients to.
  std::vector<ModuleChain> m = {
      chain("vision", 3, false, {}),  chain("audio", 2, false, {}),
      chain("vproj", 1, true, {0}),   chain("aproj", 1, false, {1}),
      chain("llm", 4, false, {2, 3}),
  };
  std::vector<GradFlags> f = analyzeFrozen(m);
  EXPECT_EQ(f[0].needsInputGrad, all(3, false));
  EXPECT_EQ(f[1].needsInputGrad, all(2, false));
  EXPECT_EQ(f[2].needsWeightGrad, all(1, true));
  EXPECT_EQ(f[2].needsInputGrad, all(1, false));
  EXPECT_EQ(f[3].needsWeightGrad, all(1, false));
  EXPECT_EQ(f[3].needsInputGrad, all(1, false));
  EXPECT_EQ(f[4].needsWeightGrad, all(4, false));
  EXPECT_EQ(f[4].needsInputGrad, all(4, true));

  // A trainable audio encoder makes the frozen audio projector pass
  // gradients back, but leaves the vision path alone.
  m[1].trainable = {true, true};
  m[2].trainable = {false};
  f = analyzeFrozen(m);
  EXPECT_EQ(f[0].needsInputGrad, all(3, false));
  EXPECT_EQ(f[1].needsInputGrad, (Bits{false, true}));
  EXPECT_EQ(f[2].needsInputGrad, all(1, false));
  EXPECT_EQ(f[2].needsWeightGrad, all(1, false));
  EXPECT_EQ(f[3].needsInputGrad, all(1, true));
  EXPECT_EQ(f[4].needsInputGrad, all(4, true));
}

TEST(Frozen, RecomputeOnlyWhereABackwardRuns) {
  std::vector<ModuleChain> m = {chain("enc", 2, false, {}, true),
                                chain("proj", 1, true, {0}, true),
                                chain("llm", 3, false, {1}, true)};
  m[2].recompute = {true, false, true};
  std::vector<GradFlags> f = analyzeFrozen(m);
  EXPECT_EQ(f[0].recomputes, all(2, false));             // No backward at all.
  EXPECT_EQ(f[1].recomputes, all(1, true));              // Weight gradients.
  EXPECT_EQ(f[2].recomputes, (Bits{true, false, true})); // Input gradients.

  // Missing recompute entries mean none was requested.
  m[2].recompute.clear();
  f = analyzeFrozen(m);
  EXPECT_EQ(f[2].recomputes, all(3, false));
  EXPECT_EQ(f[2].needsInputGrad, all(3, true));
}

TEST(Frozen, EmptyModulePassesFlagThrough) {
  std::vector<ModuleChain> m = {chain("enc", 1, true, {}),
                                chain("identity", 0, false, {0}),
                                chain("llm", 2, false, {1})};
  std::vector<GradFlags> f = analyzeFrozen(m);
  EXPECT_TRUE(f[1].needsInputGrad.empty());
  EXPECT_EQ(f[2].needsInputGrad, all(2, true));
}
