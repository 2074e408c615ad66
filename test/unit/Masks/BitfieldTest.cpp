//===- BitfieldTest.cpp - Truth tables of the attend() predicate ----------===//

#include "mllm/kernels/TileMap.h"

#include "gtest/gtest.h"

#include <string>
#include <vector>

using namespace mllm::kernels;

namespace {

/// One letter per token, for readable layouts.
struct Tok {
  uint64_t word;
  uint32_t segment;
};

TokenLayout layoutOf(const std::vector<Tok> &toks) {
  TokenLayout l;
  for (const Tok &t : toks) {
    l.words.push_back(t.word);
    l.segments.push_back(t.segment);
  }
  return l;
}

/// Rows of '1' (may attend) and '.' (may not), one row per query.
std::vector<std::string> render(const TokenLayout &l, MaskPolicy p) {
  std::vector<uint8_t> dense = buildDenseMask(l, p);
  std::vector<std::string> rows;
  for (int64_t q = 0; q < l.size(); ++q) {
    std::string row;
    for (int64_t k = 0; k < l.size(); ++k)
      row += dense[q * l.size() + k] ? '1' : '.';
    rows.push_back(row);
  }
  return rows;
}

const uint64_t kText = textWord(2);
const uint64_t kImage = modalityWord(0);
const uint64_t kAudio = modalityWord(1);
const MaskPolicy kMllm{PolicyKind::Mllm, 0};
const MaskPolicy kPaper{PolicyKind::Cornstarch, 0};

Tok text(uint32_t sample = 0, uint32_t item = 0) {
  return {kText, makeSegment(sample, item)};
}
Tok image(uint32_t item, uint32_t sample = 0) {
  return {kImage, makeSegment(sample, item)};
}

} // namespace

TEST(Bitfield, WordLayoutMatchesPaper) {
  EXPECT_EQ(textWord(2), 0x4000000000000007ull);
  EXPECT_EQ(modalityWord(0), 0x2ull);
  EXPECT_EQ(modalityWord(1), 0x4ull);
  EXPECT_EQ(modalityWord(60), 1ull << 61);
  // All 61 modalities: the signed top bit is still clear.
  EXPECT_EQ(static_cast<int64_t>(textWord(kMaxModalities)), INT64_MAX);
  uint32_t s = makeSegment(77, 4095, true);
  EXPECT_EQ(segmentSample(s), 77u);
  EXPECT_EQ(segmentItem(s), 4095u);
  EXPECT_TRUE(isSink(s));
  EXPECT_FALSE(isSink(makeSegment(kMaxSample, 1)));
  EXPECT_EQ(segmentSample(makeSegment(kMaxSample, 1)), kMaxSample);
}

TEST(Bitfield, CausalText) {
  TokenLayout l = layoutOf({text(), text(), text(), text()});
  std::vector<std::string> want = {"1...", "11..", "111.", "1111"};
  EXPECT_EQ(render(l, kMllm), want);
  EXPECT_EQ(render(l, kPaper), want);
}

TEST(Bitfield, EmbeddedModalityItems) {
  // T I I T A A T: the image and the audio clip are bidirectional inside
  // themselves; text sees every earlier token.
  TokenLayout l = layoutOf({text(),
                            image(1),
                            image(1),
                            text(),
                            {kAudio, makeSegment(0, 2)},
                            {kAudio, makeSegment(0, 2)},
                            text()});
  std::vector<std::string> want = {
      "1......", ".11....", ".11....", "1111...",
      "....11.", "....11.", "1111111",
  };
  EXPECT_EQ(render(l, kMllm), want);
  EXPECT_EQ(render(l, kPaper), want); // one item per modality: same answer
}

TEST(Bitfield, ModalityTokensSeeOnlyTheirOwnItem) {
  // Two images of one sample: separate items under Mllm, one group under
  // the paper's predicate.
  TokenLayout l = layoutOf({image(1), image(1), text(), image(2), image(2)});
  EXPECT_EQ(
      render(l, kMllm),
      (std::vector<std::string>{"11...", "11...", "111..", "...11", "...11"}));
  EXPECT_EQ(
      render(l, kPaper),
      (std::vector<std::string>{"11.11", "11.11", "111..", "11.11", "11.11"}));
}

TEST(Bitfield, PackedSamplesNeverSeeEachOther) {
  TokenLayout l =
      layoutOf({text(0), image(1, 0), text(0), text(1), image(1, 1), text(1)});
  EXPECT_EQ(render(l, kMllm),
            (std::vector<std::string>{"1.....", ".1....", "111...", "...1..",
                                      "....1.", "...111"}));
  // The paper's word has no sample: everything leaks across.
  EXPECT_EQ(render(l, kPaper),
            (std::vector<std::string>{"1.....", ".1..1.", "111...", "1111..",
                                      ".1..1.", "111111"}));
}

TEST(Bitfield, PrefixLm) {
  Tok prefix{kText & ~kCausalBit, makeSegment(0, 1)};
  TokenLayout l = layoutOf({prefix, prefix, prefix, text(), text()});
  EXPECT_EQ(
      render(l, kMllm),
      (std::vector<std::string>{"111..", "111..", "111..", "1111.", "11111"}));
}

TEST(Bitfield, PrivateTextItemsAreSiblings) {
  // Shared question Q Q, answers A1 A1 A2 A2: answers see the question and
  // themselves, never each other; a later item-0 token sees all.
  TokenLayout l = layoutOf({text(0, 0), text(0, 0), text(0, 1), text(0, 1),
                            text(0, 2), text(0, 2), text(0, 0)});
  EXPECT_EQ(render(l, kMllm), (std::vector<std::string>{
                                  "1......", "11.....", "111....", "1111...",
                                  "11..1..", "11..11.", "1111111"}));
}

TEST(Bitfield, CausalEncoderItem) {
  Tok causalImage{modalityWord(0, /*causal=*/true), makeSegment(0, 1)};
  TokenLayout l = layoutOf({causalImage, causalImage, causalImage, text()});
  EXPECT_EQ(render(l, kMllm),
            (std::vector<std::string>{"1...", "11..", "111.", "1111"}));
  // The paper's kernel ignores the causal bit of modality tokens.
  EXPECT_EQ(render(l, kPaper),
            (std::vector<std::string>{"111.", "111.", "111.", "1111"}));
}

TEST(Bitfield, PaddingSeesAndIsSeenByNothing) {
  TokenLayout l = layoutOf({text(), {0, 0}, text(), {0, 0}});
  std::vector<std::string> want = {"1...", "....", "1.1.", "...."};
  EXPECT_EQ(render(l, kMllm), want);
  EXPECT_EQ(render(l, kPaper), want);
}

TEST(Bitfield, TextWithoutModalityBitsCannotSeeImages) {
  // The paper's inline helper set text = causal | 1 only (brief §C.2).
  Tok bare{kCausalBit | kTextBit, 0};
  TokenLayout l = layoutOf({image(1), bare, image(1), bare});
  std::vector<std::string> want = {"1.1.", ".1..", "1.1.", ".1.1"};
  EXPECT_EQ(render(l, kPaper), want);
  EXPECT_EQ(render(l, kMllm), want);
}

TEST(Bitfield, SlidingWindowWithSinks) {
  Tok sink{kText, makeSegment(0, 0, /*sink=*/true)};
  TokenLayout l = layoutOf({sink, text(), text(), text(), text(), text()});
  EXPECT_EQ(render(l, {PolicyKind::Mllm, 2}),
            (std::vector<std::string>{"1.....", "11....", "111...", "1.11..",
                                      "1..11.", "1...11"}));
  // The compatibility policy has no window.
  EXPECT_EQ(render(l, {PolicyKind::Cornstarch, 2})[5], "111111");
}

TEST(Bitfield, PaperPredicateFormula) {
  // Cross-check the compatibility policy against the brief's formula on
  // every pair of a small vocabulary of words and positions.
  std::vector<uint64_t> words = {0,
                                 kText,
                                 kImage,
                                 kAudio,
                                 kImage | kAudio,
                                 kCausalBit | kTextBit,
                                 kText & ~kCausalBit,
                                 modalityWord(0, true)};
  for (uint64_t wq : words)
    for (uint64_t wk : words)
      for (int64_t pq = 0; pq < 3; ++pq)
        for (int64_t pk = 0; pk < 3; ++pk) {
          uint64_t mq = wq & ((1ull << 62) - 1), mk = wk & ((1ull << 62) - 1);
          bool want =
              (mq & 1) ? (pk <= pq && (mq & mk) != 0) : (mq == mk && mq != 0);
          EXPECT_EQ(attend(kPaper, wq, makeSegment(pq, 1), pq, wk,
                           makeSegment(pk, 2), pk),
                    want)
              << std::hex << wq << " " << wk << " " << pq << " " << pk;
        }
}
