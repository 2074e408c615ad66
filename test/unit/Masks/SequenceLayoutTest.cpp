//===- SequenceLayoutTest.cpp - Token layouts of declared data layouts ----===//

#include "mllm/kernels/SequenceLayout.h"

#include "gtest/gtest.h"

using namespace mllm::kernels;

namespace {

ModalitySpec modality(int64_t tokens, int64_t items, ItemPlacement placement,
                      std::vector<double> positions = {},
                      ItemMask mask = ItemMask::Bidirectional) {
  ModalitySpec m;
  m.tokensPerItem = tokens;
  m.items = items;
  m.placement = placement;
  m.positions = std::move(positions);
  m.mask = mask;
  return m;
}

/// The spans of kind Item, in sequence order.
std::vector<LayoutSpan> itemSpans(const std::vector<LayoutSpan> &spans) {
  std::vector<LayoutSpan> items;
  for (const LayoutSpan &s : spans)
    if (s.kind == LayoutSpan::Item)
      items.push_back(s);
  return items;
}

/// Every token of [start, start + length) has this word and segment.
void expectRun(const TokenLayout &layout, int64_t start, int64_t length,
               uint64_t word, uint32_t segment) {
  for (int64_t i = start; i < start + length; ++i) {
    ASSERT_EQ(layout.words[i], word) << "token " << i;
    ASSERT_EQ(layout.segments[i], segment) << "token " << i;
  }
}

/// The spans tile [0, size) in order and agree with the words and segments.
void expectSpansCover(const TokenLayout &layout,
                      const std::vector<LayoutSpan> &spans,
                      const SequenceSpec &spec) {
  int numModalities = static_cast<int>(spec.modalities.size());
  int64_t next = 0;
  for (const LayoutSpan &s : spans) {
    ASSERT_EQ(s.start, next);
    ASSERT_GT(s.length, 0);
    next += s.length;
    uint32_t segment =
        makeSegment(static_cast<uint32_t>(s.sample), s.segmentItem);
    switch (s.kind) {
    case LayoutSpan::Text:
      EXPECT_EQ(s.segmentItem, 0u);
      expectRun(layout, s.start, s.length, textWord(numModalities), segment);
      break;
    case LayoutSpan::Prefix:
      EXPECT_NE(s.segmentItem, 0u);
      expectRun(layout, s.start, s.length,
                textWord(numModalities) & ~kCausalBit, segment);
      break;
    case LayoutSpan::Item: {
      const ModalitySpec &m = spec.modalities[s.modality];
      EXPECT_EQ(s.length, m.tokensPerItem);
      expectRun(layout, s.start, s.length,
                modalityWord(static_cast<int>(s.modality),
                             m.mask == ItemMask::Causal),
                segment);
      break;
    }
    }
  }
  EXPECT_EQ(next, layout.size());
}

TEST(SequenceLayout, TokenCounts) {
  SequenceSpec spec;
  spec.textTokens = 100;
  spec.packing = 3;
  spec.modalities = {modality(10, 2, ItemPlacement::Prepend),
                     modality(7, 1, ItemPlacement::Append)};
  ASSERT_EQ(checkSequenceSpec(spec), "");
  EXPECT_EQ(sequenceLength(spec), 3 * (100 + 20 + 7));

  std::vector<LayoutSpan> spans;
  TokenLayout layout = buildSequenceLayout(spec, &spans);
  ASSERT_EQ(layout.size(), sequenceLength(spec));
  ASSERT_EQ(layout.segments.size(), layout.words.size());
  expectSpansCover(layout, spans, spec);

  int64_t text = 0, image = 0, audio = 0;
  for (uint64_t w : layout.words) {
    text += w == textWord(2);
    image += w == modalityWord(0);
    audio += w == modalityWord(1);
  }
  EXPECT_EQ(text, 300);
  EXPECT_EQ(image, 60);
  EXPECT_EQ(audio, 21);
  EXPECT_EQ(itemSpans(spans).size(), 9u);
}

TEST(SequenceLayout, TextOnlyIsOneCausalRun) {
  SequenceSpec spec;
  spec.textTokens = 300;
  TokenLayout layout = buildSequenceLayout(spec);
  ASSERT_EQ(layout.size(), 300);
  expectRun(layout, 0, 300, textWord(0), 0);
}

TEST(SequenceLayout, Prepend) {
  SequenceSpec spec;
  spec.textTokens = 50;
  spec.modalities = {modality(8, 2, ItemPlacement::Prepend)};
  std::vector<LayoutSpan> spans;
  TokenLayout layout = buildSequenceLayout(spec, &spans);
  expectSpansCover(layout, spans, spec);
  ASSERT_EQ(spans.size(), 3u);
  EXPECT_EQ(spans[0].kind, LayoutSpan::Item);
  EXPECT_EQ(spans[0].start, 0);
  EXPECT_EQ(spans[0].itemIndex, 0);
  EXPECT_EQ(spans[0].segmentItem, 1u);
  EXPECT_EQ(spans[1].start, 8);
  EXPECT_EQ(spans[1].itemIndex, 1);
  EXPECT_EQ(spans[1].segmentItem, 2u);
  EXPECT_EQ(spans[2].kind, LayoutSpan::Text);
  EXPECT_EQ(spans[2].start, 16);
  EXPECT_EQ(spans[2].length, 50);
  // Two images are separate items: neither sees the other.
  EXPECT_TRUE(layout.attend({}, 0, 7));
  EXPECT_FALSE(layout.attend({}, 0, 8));
  EXPECT_FALSE(layout.attend({}, 8, 0));
  // Text sees both earlier images.
  EXPECT_TRUE(layout.attend({}, 20, 0));
  EXPECT_TRUE(layout.attend({}, 20, 15));
}

TEST(SequenceLayout, Append) {
  SequenceSpec spec;
  spec.textTokens = 50;
  spec.modalities = {modality(8, 2, ItemPlacement::Append)};
  std::vector<LayoutSpan> spans;
  TokenLayout layout = buildSequenceLayout(spec, &spans);
  expectSpansCover(layout, spans, spec);
  ASSERT_EQ(spans.size(), 3u);
  EXPECT_EQ(spans[0].kind, LayoutSpan::Text);
  EXPECT_EQ(spans[0].length, 50);
  EXPECT_EQ(spans[1].start, 50);
  EXPECT_EQ(spans[2].start, 58);
  // Text before the images does not see them (causal).
  EXPECT_FALSE(layout.attend({}, 49, 50));
}

TEST(SequenceLayout, AtOneFractionForEveryItem) {
  SequenceSpec spec;
  spec.textTokens = 100;
  spec.modalities = {modality(10, 2, ItemPlacement::At, {0.25})};
  std::vector<LayoutSpan> spans;
  TokenLayout layout = buildSequenceLayout(spec, &spans);
  expectSpansCover(layout, spans, spec);
  // text [0, 25) | item 0 | item 1 | text [25, 100)
  ASSERT_EQ(spans.size(), 4u);
  EXPECT_EQ(spans[0].kind, LayoutSpan::Text);
  EXPECT_EQ(spans[0].length, 25);
  EXPECT_EQ(spans[1].start, 25);
  EXPECT_EQ(spans[1].itemIndex, 0);
  EXPECT_EQ(spans[2].start, 35);
  EXPECT_EQ(spans[2].itemIndex, 1);
  EXPECT_EQ(spans[3].start, 45);
  EXPECT_EQ(spans[3].length, 75);
}

TEST(SequenceLayout, AtOneFractionPerItem) {
  SequenceSpec spec;
  spec.textTokens = 100;
  // Item 0 goes late, item 1 early: items follow their positions, and item
  // ids follow the sequence.
  spec.modalities = {modality(10, 2, ItemPlacement::At, {0.75, 0.25})};
  std::vector<LayoutSpan> spans;
  TokenLayout layout = buildSequenceLayout(spec, &spans);
  expectSpansCover(layout, spans, spec);
  std::vector<LayoutSpan> items = itemSpans(spans);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].itemIndex, 1);
  EXPECT_EQ(items[0].start, 25);
  EXPECT_EQ(items[0].segmentItem, 1u);
  EXPECT_EQ(items[1].itemIndex, 0);
  EXPECT_EQ(items[1].start, 10 + 75);
  EXPECT_EQ(items[1].segmentItem, 2u);
}

TEST(SequenceLayout, OrderAtEqualOffsets) {
  SequenceSpec spec;
  spec.textTokens = 20;
  // At one text offset: prepend, then at(...), then append; modalities in
  // declaration order within each.
  spec.modalities = {modality(2, 1, ItemPlacement::At, {0.0}),
                     modality(3, 1, ItemPlacement::Prepend),
                     modality(4, 1, ItemPlacement::Append),
                     modality(5, 1, ItemPlacement::At, {1.0}),
                     modality(6, 1, ItemPlacement::At, {0.0})};
  std::vector<LayoutSpan> spans;
  TokenLayout layout = buildSequenceLayout(spec, &spans);
  expectSpansCover(layout, spans, spec);
  std::vector<int64_t> order;
  for (const LayoutSpan &s : spans)
    order.push_back(s.kind == LayoutSpan::Item ? s.modality : -1);
  EXPECT_EQ(order, (std::vector<int64_t>{1, 0, 4, -1, 3, 2}));
  // Text words carry every modality's bit.
  EXPECT_EQ(layout.words[spans[3].start], textWord(5));
}

TEST(SequenceLayout, TextOffsetRounding) {
  EXPECT_EQ(textOffset(0.0, 100), 0);
  EXPECT_EQ(textOffset(1.0, 100), 100);
  EXPECT_EQ(textOffset(0.25, 100), 25);
  EXPECT_EQ(textOffset(0.5, 3), 2); // 1.5 rounds up
  EXPECT_EQ(textOffset(0.3, 3), 1); // 0.9
  EXPECT_EQ(textOffset(0.5, 0), 0);
}

TEST(SequenceLayout, CausalItems) {
  SequenceSpec spec;
  spec.textTokens = 4;
  spec.modalities = {
      modality(4, 1, ItemPlacement::Prepend, {}, ItemMask::Causal)};
  TokenLayout layout = buildSequenceLayout(spec);
  EXPECT_EQ(layout.words[0], modalityWord(0, /*causal=*/true));
  EXPECT_TRUE(layout.attend({}, 3, 0));
  EXPECT_FALSE(layout.attend({}, 0, 3));
}

TEST(SequenceLayout, PackedSamplesAreSeparate) {
  SequenceSpec spec;
  spec.textTokens = 6;
  spec.packing = 3;
  spec.modalities = {modality(3, 1, ItemPlacement::At, {0.5})};
  std::vector<LayoutSpan> spans;
  TokenLayout layout = buildSequenceLayout(spec, &spans);
  expectSpansCover(layout, spans, spec);
  ASSERT_EQ(layout.size(), 27);
  for (int64_t i = 0; i < layout.size(); ++i) {
    EXPECT_EQ(segmentSample(layout.segments[i]), static_cast<uint32_t>(i / 9))
        << "token " << i;
    for (int64_t j = 0; j < layout.size(); ++j)
      if (i / 9 != j / 9)
        ASSERT_FALSE(layout.attend({}, i, j)) << i << " -> " << j;
  }
  // Every sample has the same shape: text 3, item 1, text 3; item ids
  // restart per sample.
  for (int64_t s = 0; s < 3; ++s) {
    expectRun(layout, 9 * s, 3, textWord(1),
              makeSegment(static_cast<uint32_t>(s), 0));
    expectRun(layout, 9 * s + 3, 3, modalityWord(0),
              makeSegment(static_cast<uint32_t>(s), 1));
    expectRun(layout, 9 * s + 6, 3, textWord(1),
              makeSegment(static_cast<uint32_t>(s), 0));
  }
  // The last text token of sample 1 sees its own sample's image and text.
  EXPECT_TRUE(layout.attend({}, 17, 12));
  EXPECT_TRUE(layout.attend({}, 17, 9));
  EXPECT_FALSE(layout.attend({}, 17, 8));
}

TEST(SequenceLayout, PrefixLm) {
  SequenceSpec spec;
  spec.textTokens = 10;
  spec.textMask = TextMask::PrefixLm;
  // An image inside the prefix splits it into two runs of one item.
  spec.modalities = {modality(2, 1, ItemPlacement::At, {0.2})};
  std::vector<LayoutSpan> spans;
  TokenLayout layout = buildSequenceLayout(spec, &spans);
  expectSpansCover(layout, spans, spec);
  // prefix [0, 2) | image [2, 4) | prefix [4, 7) | text [7, 12)
  ASSERT_EQ(spans.size(), 4u);
  EXPECT_EQ(spans[0].kind, LayoutSpan::Prefix);
  EXPECT_EQ(spans[0].length, 2);
  EXPECT_EQ(spans[0].segmentItem, 1u);
  EXPECT_EQ(spans[1].kind, LayoutSpan::Item);
  EXPECT_EQ(spans[1].segmentItem, 2u);
  EXPECT_EQ(spans[2].kind, LayoutSpan::Prefix);
  EXPECT_EQ(spans[2].length, 3);
  EXPECT_EQ(spans[2].segmentItem, 1u);
  EXPECT_EQ(spans[3].kind, LayoutSpan::Text);
  EXPECT_EQ(spans[3].length, 5);
  // The prefix is bidirectional, across the image.
  EXPECT_TRUE(layout.attend({}, 0, 6));
  EXPECT_TRUE(layout.attend({}, 6, 0));
  // The prefix after the image sees it; the rest is causal and sees it all.
  EXPECT_TRUE(layout.attend({}, 4, 2));
  EXPECT_FALSE(layout.attend({}, 0, 2));
  EXPECT_TRUE(layout.attend({}, 11, 0));
  EXPECT_TRUE(layout.attend({}, 11, 6));
  EXPECT_FALSE(layout.attend({}, 6, 7));
  EXPECT_FALSE(layout.attend({}, 7, 8));
}

TEST(SequenceLayout, PrefixLmTargets) {
  SequenceSpec spec;
  spec.textTokens = 10;
  spec.textMask = TextMask::PrefixLm;
  spec.modalities = {modality(2, 1, ItemPlacement::At, {0.2})};
  std::vector<LayoutSpan> spans;
  buildSequenceLayout(spec, &spans);
  // prefix [0, 2) | image [2, 4) | prefix [4, 7) | text [7, 12): only the
  // prefix's last token (predicting the first causal one) and the causal
  // text have targets.
  EXPECT_EQ(targetPositions(spans), (std::vector<int64_t>{6, 7, 8, 9, 10}));
}

// Whatever the layout, a position never sees the token it predicts, and
// every causal text token but the last of its run predicts.
TEST(SequenceLayout, NoTargetIsVisibleToItsQuery) {
  for (TextMask mask : {TextMask::Causal, TextMask::PrefixLm})
    for (int64_t packing : {1, 3})
      for (double at : {0.0, 0.3, 0.5, 1.0}) {
        SequenceSpec spec;
        spec.textTokens = 12;
        spec.packing = packing;
        spec.textMask = mask;
        spec.modalities = {
            modality(3, 2, ItemPlacement::At, {at, 0.8}),
            modality(2, 1, ItemPlacement::Prepend, {}, ItemMask::Causal)};
        std::vector<LayoutSpan> spans;
        TokenLayout layout = buildSequenceLayout(spec, &spans);
        std::vector<int64_t> targets = targetPositions(spans);
        int64_t causal = 0;
        for (const LayoutSpan &s : spans)
          if (s.kind == LayoutSpan::Text)
            causal += s.length - 1;
        EXPECT_GE(static_cast<int64_t>(targets.size()), causal);
        for (int64_t i : targets) {
          SCOPED_TRACE(testing::Message() << "position " << i << ", at " << at
                                          << ", packing " << packing);
          ASSERT_LT(i + 1, layout.size());
          EXPECT_FALSE(layout.attend({}, i, i + 1));
          // Predicting within the sample: the target sees the query.
          EXPECT_TRUE(layout.attend({}, i + 1, i));
        }
      }
}

TEST(SequenceLayout, PrefixFractionZeroIsCausal) {
  SequenceSpec spec;
  spec.textTokens = 10;
  spec.textMask = TextMask::PrefixLm;
  spec.prefixFraction = 0.0;
  TokenLayout layout = buildSequenceLayout(spec);
  expectRun(layout, 0, 10, textWord(0), 0);
}

TEST(SequenceLayout, Deterministic) {
  SequenceSpec spec;
  spec.textTokens = 1000;
  spec.packing = 2;
  spec.textMask = TextMask::PrefixLm;
  spec.modalities = {modality(100, 3, ItemPlacement::At, {0.1, 0.9, 0.5}),
                     modality(30, 1, ItemPlacement::Append)};
  TokenLayout a = buildSequenceLayout(spec), b = buildSequenceLayout(spec);
  EXPECT_EQ(a.words, b.words);
  EXPECT_EQ(a.segments, b.segments);
}

TEST(SequenceLayout, Checks) {
  SequenceSpec ok;
  ok.textTokens = 10;
  EXPECT_EQ(checkSequenceSpec(ok), "");

  SequenceSpec s = ok;
  s.packing = 0;
  EXPECT_NE(checkSequenceSpec(s).find("packing"), std::string::npos);

  s = ok;
  s.textTokens = -1;
  EXPECT_NE(checkSequenceSpec(s), "");

  s = ok;
  s.modalities = {modality(4, 3, ItemPlacement::At, {0.1, 0.2})};
  EXPECT_NE(checkSequenceSpec(s).find("2 positions for 3 items"),
            std::string::npos);

  s = ok;
  s.modalities = {modality(4, 1, ItemPlacement::At, {1.5})};
  EXPECT_NE(checkSequenceSpec(s).find("between 0 and 1"), std::string::npos);

  s = ok;
  s.modalities = {modality(4, 1, ItemPlacement::Prepend, {0.5})};
  EXPECT_NE(checkSequenceSpec(s), "");

  s = ok;
  s.modalities = {modality(1, 5000, ItemPlacement::Prepend)};
  EXPECT_NE(checkSequenceSpec(s).find("items per sample"), std::string::npos);

  s = ok;
  s.modalities.assign(62, modality(1, 1, ItemPlacement::Prepend));
  EXPECT_NE(checkSequenceSpec(s).find("modalities"), std::string::npos);

  s = ok;
  s.modalities = {modality(int64_t(1) << 62, 2, ItemPlacement::Prepend)};
  EXPECT_EQ(sequenceLength(s), -1);
  EXPECT_NE(checkSequenceSpec(s).find("overflows"), std::string::npos);
}

} // namespace
