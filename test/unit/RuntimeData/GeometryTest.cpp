//===- GeometryTest.cpp - the data geometry read from a plan --------------===//

#include "mllm/runtime/data/Geometry.h"
#include "mllm/runtime/Plan.h"

#include "gtest/gtest.h"

using namespace mllm::runtime;
using namespace mllm::runtime::data;

namespace {

PlanPart encoder(const std::string &name, const std::string &kind,
                 int64_t merge) {
  PlanPart part;
  part.name = name;
  part.instance = name + "_instance";
  PlanLayerGroup input;
  input.kind = kind;
  input.config.hidden = 32;
  if (kind == "patch_embedding") {
    input.config.channels = 3;
    input.config.temporalPatch = 2;
    input.config.imageHeight = 32;
    input.config.imageWidth = 48;
  } else {
    input.config.frames = 3000; // Whisper: 1500 max_frames x downsample 2
    input.config.melBins = 128;
  }
  part.groups.push_back(input);
  PlanProjector projector;
  projector.merge = merge;
  part.projector = projector;
  return part;
}

/// Vision, an encoder without items, and audio, then a 1000-id LLM.
Plan plan() {
  Plan p;
  p.job.dp = 3;
  p.data.textTokens = 20;
  p.data.packing = 2;
  p.data.microbatchSize = 4;
  p.data.microbatches = 5;
  p.data.seqLen = 2 * (20 + 2 * 6 + 1500);
  p.data.textMask = "prefix_lm";
  PlanInput vision;
  vision.encoder = "vision";
  vision.tokens = 6;
  vision.items = 2;
  vision.placement = "at";
  vision.positions = {0.25, 0.75};
  PlanInput audio;
  audio.encoder = "audio";
  audio.tokens = 1500; // two 30 s windows of 1500 frames, merge 2
  audio.mask = "causal";
  p.data.inputs = {vision, audio};
  p.parts = {encoder("vision", "patch_embedding", 4),
             encoder("idle", "patch_embedding", 1),
             encoder("audio", "audio_frontend", 2)};
  PlanPart llm;
  llm.name = "llm";
  llm.isLLM = true;
  PlanLayerGroup embed;
  embed.kind = "token_embedding";
  embed.config.vocab = 1000;
  llm.groups.push_back(embed);
  p.parts.push_back(llm);
  return p;
}

} // namespace

TEST(Geometry, FromAPlan) {
  auto g = dataGeometry(plan());
  ASSERT_TRUE(static_cast<bool>(g)) << llvm::toString(g.takeError());
  EXPECT_EQ(g->seqLen, 3064);
  EXPECT_EQ(g->sequences, 4);
  EXPECT_EQ(g->microbatches, 5);
  EXPECT_EQ(g->dp, 3);
  EXPECT_EQ(g->vocab, 1000);
  EXPECT_EQ(g->textMask, mllm::kernels::TextMask::PrefixLm);
  EXPECT_EQ(g->numModalities, 3); // the idle encoder keeps its word bit
  ASSERT_EQ(g->encoders.size(), 2u);
  const EncoderInput &v = g->encoders[0];
  EXPECT_EQ(v.kind, MediaKind::Image);
  EXPECT_EQ(v.modality, 0);
  EXPECT_EQ(v.maxItems, 2);
  EXPECT_EQ(v.placement, mllm::kernels::ItemPlacement::At);
  EXPECT_EQ(v.positions, (std::vector<double>{0.25, 0.75}));
  EXPECT_EQ(v.floatsPerItem(), 3 * 2 * 32 * 48);
  EXPECT_EQ(g->itemCapacity(0), 4);
  const EncoderInput &a = g->encoders[1];
  EXPECT_EQ(a.kind, MediaKind::Audio);
  EXPECT_EQ(a.modality, 2);
  EXPECT_TRUE(a.causal);
  EXPECT_EQ(a.windows, 2); // 1500 x 2 / 1500 front-end frames per window
  EXPECT_EQ(a.floatsPerItem(), 2 * 3000 * 128);
  EXPECT_EQ(g->find("audio"), 1);
  EXPECT_EQ(g->find("idle"), -1);
}

TEST(Geometry, AudioWindowsFollowTheFrontEnd) {
  EXPECT_EQ(audioWindows(1500, 3000), 1); // Whisper, 750 tokens merged 2
  EXPECT_EQ(audioWindows(6000, 3000), 4); // 2 min of Qwen2-Audio
  EXPECT_EQ(audioWindows(8, 31), 1);      // (31 - 1) / 2 + 1 = 16 > 8
  EXPECT_EQ(audioWindows(32, 31), 2);
  EXPECT_EQ(audioWindows(2 * 8, 15), 2); // Not 24 / 8: merge 24 pads
}

TEST(Geometry, RefusesWhatCannotBeFed) {
  Plan p = plan();
  p.parts.back().groups.clear();
  auto noVocab = dataGeometry(p);
  ASSERT_FALSE(static_cast<bool>(noVocab));
  EXPECT_NE(llvm::toString(noVocab.takeError()).find("no vocabulary"),
            std::string::npos);
  p = plan();
  p.parts[0].groups[0].kind = "linear";
  auto wrong = dataGeometry(p);
  ASSERT_FALSE(static_cast<bool>(wrong));
  EXPECT_NE(llvm::toString(wrong.takeError()).find("'linear' layer"),
            std::string::npos);
  p = plan();
  p.data.inputs[0].placement = "sideways";
  EXPECT_FALSE(static_cast<bool>(dataGeometry(p)));
  llvm::consumeError(dataGeometry(p).takeError());
}
