//===- PackingTest.cpp - sample layouts, packed sequences, masks ----------===//

#include "TestFiles.h"

#include "mllm/runtime/data/Packing.h"
#include "mllm/runtime/data/Sequence.h"

#include "mllm/kernels/Bitfield.h"

#include "gtest/gtest.h"

using namespace mllm;
using namespace mllm::runtime::data;
using namespace mllm::runtime::data::test;

namespace {

struct Fixture {
  DataGeometry g = smallGeometry();
  std::unique_ptr<ByteTokenizer> tok =
      llvm::cantFail(ByteTokenizer::create(300, 0));

  SampleLayout layout(const std::string &text, int64_t images, int64_t audio,
                      bool eos = true) {
    ManifestSample s;
    s.text = text;
    s.media = {std::vector<std::string>(images, "i.png"),
               std::vector<std::string>(audio, "a.wav")};
    return llvm::cantFail(layoutSample(s, g, *tok, eos));
  }
};

} // namespace

TEST(SampleLayout, MarkersAndPlacement) {
  Fixture f;
  // No marker: vision prepends, audio appends (after the end id).
  SampleLayout a = f.layout("abcd", 1, 1);
  ASSERT_EQ(a.text.size(), 5u);
  EXPECT_EQ(a.text.back(), 256); // the byte tokenizer's end id
  ASSERT_EQ(a.items.size(), 2u);
  EXPECT_EQ(a.items[0].encoder, 0);
  EXPECT_EQ(a.items[0].offset, 0);
  EXPECT_EQ(a.items[1].encoder, 1);
  EXPECT_EQ(a.items[1].offset, 5);
  EXPECT_EQ(a.tokens, 5 + 4 + 3);
  // Markers place items where they stand and are not text; the second image
  // has no marker and prepends, so it comes first.
  SampleLayout b = f.layout("ab<vision>cd<audio>e", 2, 1);
  EXPECT_EQ(f.tok->decode(b.text), "abcde");
  ASSERT_EQ(b.items.size(), 3u);
  EXPECT_EQ(b.items[0].index, 1);
  EXPECT_EQ(b.items[0].offset, 0);
  EXPECT_EQ(b.items[1].index, 0);
  EXPECT_EQ(b.items[1].offset, 2);
  EXPECT_EQ(b.items[2].encoder, 1);
  EXPECT_EQ(b.items[2].offset, 4);
  // `at` placement uses this sample's own text length.
  f.g.encoders[1].placement = kernels::ItemPlacement::At;
  f.g.encoders[1].positions = {0.5};
  SampleLayout c = f.layout("abcdefg", 0, 1); // 8 tokens with the end id
  EXPECT_EQ(c.items[0].offset, 4);
  // An unknown marker is text.
  SampleLayout d = f.layout("<video>", 0, 0, false);
  EXPECT_EQ(d.text.size(), 7u);
}

TEST(PackedSequence, EqualsTheDeclaredLayoutForDeclaredSamples) {
  // Samples shaped exactly as the plan declares them (T text tokens, every
  // item) give the layout the compiler balanced CP on, token for token.
  for (kernels::TextMask mask :
       {kernels::TextMask::Causal, kernels::TextMask::PrefixLm}) {
    Fixture f;
    f.g.textMask = mask;
    f.g.encoders[1].placement = kernels::ItemPlacement::At;
    f.g.encoders[1].positions = {0.25};
    f.g.encoders[0].maxItems = 1;
    SampleLayout s0 = f.layout("0123456789", 1, 1, false);
    SampleLayout s1 = f.layout("abcdefghij", 1, 1, false);
    kernels::SequenceSpec spec;
    spec.textTokens = 10;
    spec.packing = 2;
    spec.textMask = mask;
    spec.modalities.resize(2);
    spec.modalities[0].tokensPerItem = 4;
    spec.modalities[1].tokensPerItem = 3;
    spec.modalities[1].placement = kernels::ItemPlacement::At;
    spec.modalities[1].positions = {0.25};
    std::vector<kernels::LayoutSpan> spans;
    kernels::TokenLayout declared = kernels::buildSequenceLayout(spec, &spans);
    PackedSequence seq = buildSequence({&s0, &s1}, f.g, declared.size());
    EXPECT_EQ(seq.layout.words, declared.words);
    EXPECT_EQ(seq.layout.segments, declared.segments);
    ASSERT_EQ(seq.spans.size(), spans.size());
    for (size_t i = 0; i < spans.size(); ++i) {
      EXPECT_EQ(seq.spans[i].kind, spans[i].kind) << i;
      EXPECT_EQ(seq.spans[i].start, spans[i].start) << i;
      EXPECT_EQ(seq.spans[i].length, spans[i].length) << i;
      EXPECT_EQ(seq.spans[i].segmentItem, spans[i].segmentItem) << i;
    }
    EXPECT_EQ(seq.padding, 0);
  }
}

TEST(PackedSequence, SamplesNeverSeeEachOtherAndTargetsStayInside) {
  Fixture f;
  SampleLayout s0 = f.layout("first <vision>sample", 1, 1);
  SampleLayout s1 = f.layout("2nd", 2, 0);
  SampleLayout s2 = f.layout("x", 0, 1);
  PackedSequence seq = buildSequence({&s0, &s1, &s2}, f.g, f.g.seqLen);
  const int64_t used = s0.tokens + s1.tokens + s2.tokens;
  ASSERT_EQ(seq.layout.size(), f.g.seqLen);
  EXPECT_EQ(seq.padding, f.g.seqLen - used);
  EXPECT_EQ(seq.samples, 3);
  auto sampleOf = [&](int64_t i) { return seq.layout.segments[i] >> 12; };
  auto isText = [&](int64_t i) { return (seq.layout.words[i] & 1) != 0; };
  kernels::MaskPolicy mllm;
  for (int64_t q = 0; q < seq.layout.size(); ++q)
    for (int64_t k = 0; k < seq.layout.size(); ++k)
      if (seq.layout.attend(mllm, q, k)) {
        ASSERT_EQ(sampleOf(q), sampleOf(k)) << q << " sees " << k;
        ASSERT_LT(q, used);
        ASSERT_LT(k, used);
      }
  int64_t counted = 0;
  for (int64_t i = 0; i < seq.layout.size(); ++i) {
    if (seq.targets[i] == kIgnoreTarget)
      continue;
    ++counted;
    ASSERT_TRUE(isText(i)) << i;
    ASSERT_TRUE(isText(i + 1)) << i; // never a media or padding token
    ASSERT_EQ(sampleOf(i), sampleOf(i + 1)) << i;
    ASSERT_EQ(seq.targets[i], seq.tokenIds[i + 1]);
  }
  EXPECT_EQ(counted, seq.counted);
  // Text tokens minus one per text run: s0 has runs "first " and
  // "sample<eos>" (the audio appends), s1 one run, s2 one.
  EXPECT_EQ(counted, (6 - 1) + (7 - 1) + (4 - 1) + (2 - 1));
  // Positions restart per sample; items in media order with their rows.
  EXPECT_EQ(seq.positions[0], 0);
  EXPECT_EQ(seq.positions[s0.tokens], 0);
  ASSERT_EQ(seq.items[0].size(), 3u);
  EXPECT_EQ(seq.items[0][0].sample, 0);
  EXPECT_EQ(seq.items[0][0].start, 6);
  EXPECT_EQ(seq.items[0][1].sample, 1);
  EXPECT_EQ(seq.items[0][1].index, 0);
  EXPECT_EQ(seq.items[0][2].index, 1);
  EXPECT_EQ(seq.items[0][2].start, s0.tokens + 4);
  for (int64_t i = used; i < seq.layout.size(); ++i) {
    EXPECT_EQ(seq.layout.words[i], 0u); // padding
    EXPECT_EQ(sampleOf(i), 3u);
  }
}

TEST(Packing, FirstFitByTokensAndItems) {
  DataGeometry g = smallGeometry();
  auto shape = [](int64_t tokens, int64_t images) {
    return SampleShape{tokens, {images, 0}, 0};
  };
  std::vector<SampleShape> shapes = {shape(40, 0), shape(30, 0), shape(20, 0),
                                     shape(10, 0), shape(24, 0)};
  std::vector<int64_t> order = {0, 1, 2, 3, 4};
  auto seqs = packFirstFit(order, shapes, g, PackOptions{});
  EXPECT_EQ(seqs, (std::vector<std::vector<int64_t>>{{0, 2}, {1, 3, 4}}));
  // Image capacity per sequence is packing x items = 4.
  std::vector<SampleShape> images = {shape(5, 2), shape(5, 2), shape(5, 1),
                                     shape(5, 0)};
  seqs = packFirstFit({0, 1, 2, 3}, images, g, PackOptions{});
  EXPECT_EQ(seqs, (std::vector<std::vector<int64_t>>{{0, 1, 3}, {2}}));
  // One open sequence: a sample that does not fit closes it for good.
  PackOptions one;
  one.openSequences = 1;
  seqs = packFirstFit(order, shapes, g, one);
  EXPECT_EQ(seqs, (std::vector<std::vector<int64_t>>{{0}, {1, 2, 3}, {4}}));
  PackOptions two;
  two.maxSamples = 2;
  seqs = packFirstFit(order, shapes, g, two);
  EXPECT_EQ(seqs, (std::vector<std::vector<int64_t>>{{0, 2}, {1, 3}, {4}}));
  EXPECT_TRUE(fitsSequence(shape(64, 2), g));
  EXPECT_FALSE(fitsSequence(shape(65, 0), g));
}
