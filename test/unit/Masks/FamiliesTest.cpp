//===- FamiliesTest.cpp - Synthetic mask families -------------------------===//

#include "mllm/kernels/MaskFamilies.h"

#include "gtest/gtest.h"

#include <set>

using namespace mllm::kernels;

TEST(Families, DeterministicAndSized) {
  for (MaskFamily f : allFamilies())
    for (int64_t n : {1, 7, 100, 4096}) {
      SCOPED_TRACE(familyName(f));
      GeneratedMask a = generateMask(f, n, 42), b = generateMask(f, n, 42);
      EXPECT_EQ(a.layout.size(), n);
      EXPECT_EQ(a.layout.segments.size(), a.layout.words.size());
      EXPECT_EQ(a.layout.words, b.layout.words);
      EXPECT_EQ(a.layout.segments, b.layout.segments);
      EXPECT_EQ(a.policy.window, b.policy.window);
      for (uint64_t w : a.layout.words)
        EXPECT_FALSE(isPadding(w));
    }
}

TEST(Families, SeedsChangeRandomFamilies) {
  for (MaskFamily f : allFamilies()) {
    if (f == MaskFamily::Causal || f == MaskFamily::Lambda)
      continue;
    SCOPED_TRACE(familyName(f));
    std::set<std::vector<uint32_t>> distinct;
    for (uint64_t seed = 0; seed < 4; ++seed)
      distinct.insert(generateMask(f, 4096, seed).layout.segments);
    EXPECT_GT(distinct.size(), 1u);
  }
}

TEST(Families, Shapes) {
  const int64_t n = 512;
  for (uint64_t seed = 0; seed < 5; ++seed) {
    // Prefix-LM: token 0 sees at least 10% of the sequence ahead of it.
    GeneratedMask p = generateMask(MaskFamily::PrefixLm, n, seed);
    int64_t reach = 0;
    while (reach < n && p.layout.attend(p.policy, 0, reach))
      ++reach;
    EXPECT_GE(reach, n / 10);
    EXPECT_LE(reach, n / 2);
    // Packed: 4 samples, never attending across.
    GeneratedMask k = generateMask(MaskFamily::MultimodalPacked, n, seed);
    std::set<uint32_t> samples;
    for (uint32_t s : k.layout.segments)
      samples.insert(segmentSample(s));
    EXPECT_EQ(samples.size(), 4u);
    for (int64_t q = 0; q < n; q += 7)
      for (int64_t j = 0; j < n; j += 5)
        if (segmentSample(k.layout.segment(q)) !=
            segmentSample(k.layout.segment(j)))
          EXPECT_FALSE(k.layout.attend(k.policy, q, j));
    // Embedded: has modality tokens, and the last token sees everything.
    GeneratedMask e = generateMask(MaskFamily::MllmEmbedded, n, seed);
    int64_t media = 0;
    for (uint64_t w : e.layout.words)
      media += !isText(w);
    EXPECT_GT(media, 0);
    for (int64_t j = 0; j < n; ++j)
      EXPECT_TRUE(e.layout.attend(e.policy, n - 1, j));
  }
  // Lambda: the last query sees the sinks and the window only.
  GeneratedMask l = generateMask(MaskFamily::Lambda, n, 0);
  int64_t seen = 0;
  for (int64_t j = 0; j < n; ++j)
    seen += l.layout.attend(l.policy, n - 1, j);
  EXPECT_EQ(seen, n / 32 + n / 8);
}
