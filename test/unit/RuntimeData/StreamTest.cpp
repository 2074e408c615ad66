//===- StreamTest.cpp - shuffling, sharding, resume, whole microbatches ---===//

#include "TestFiles.h"

#include "mllm/runtime/data/Prefetch.h"

#include "gtest/gtest.h"

#include <cmath>
#include <set>

using namespace mllm::runtime::data;
using namespace mllm::runtime::data::test;

namespace {

/// 40 samples of 3-30 text bytes; every third has an image, every fifth a
/// short tone.
std::string manifest(const TempDir &dir) {
  writePng(dir.path("img.png"), 12, 10, 3, [](int64_t y, int64_t x, int64_t c) {
    return static_cast<uint8_t>((y * 20 + x * 10 + c * 70) % 256);
  });
  writeSound(dir.path("tone.wav"), tone(700, 0.15, 22050), 22050, 1);
  std::string text;
  for (int i = 0; i < 40; ++i) {
    text +=
        "{\"text\": \"" + std::string(3 + (i * 7) % 28, 'a' + i % 26) + "\"";
    if (i % 3 == 0)
      text += ", \"vision\": \"img.png\"";
    if (i % 5 == 0)
      text += ", \"audio\": [\"tone.wav\"]";
    text += "}\n";
  }
  return dir.write("data.jsonl", text);
}

std::unique_ptr<DataSet> open(const std::string &path, DataGeometry g,
                              uint64_t seed = 5) {
  DataOptions options;
  options.seed = seed;
  auto set = DataSet::open(path, g, options);
  EXPECT_TRUE(static_cast<bool>(set)) << llvm::toString(set.takeError());
  return std::move(*set);
}

} // namespace

TEST(Shuffle, DeterministicPermutationPerEpoch) {
  auto a = shuffledOrder(100, 7, 0);
  EXPECT_EQ(a, shuffledOrder(100, 7, 0));
  EXPECT_NE(a, shuffledOrder(100, 7, 1));
  EXPECT_NE(a, shuffledOrder(100, 8, 0));
  std::vector<int64_t> sorted = a;
  llvm::sort(sorted);
  for (int64_t i = 0; i < 100; ++i)
    ASSERT_EQ(sorted[i], i);
  // Pinned: the order must not change with the platform or library.
  auto small = shuffledOrder(6, 1, 0);
  EXPECT_EQ(small, shuffledOrder(6, 1, 0));
  EXPECT_NE(small, (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
}

TEST(Stream, ShardsAreDisjointAndEachEpochSeesEverySampleOnce) {
  MLLM_NEEDS_PNG();
  MLLM_NEEDS_AUDIO();
  TempDir dir;
  DataGeometry g = smallGeometry();
  g.dp = 2;
  auto set = open(manifest(dir), g);
  const BatchStream &stream = set->batches();
  int64_t epoch0 = stream.batchesInEpoch(0);
  ASSERT_GT(epoch0, 2);
  std::set<int64_t> indices;
  std::multiset<int64_t> seen; // samples of epoch 0
  std::set<int64_t> byReplica[2];
  for (int64_t step = 0; step * g.microbatches * g.dp < epoch0; ++step)
    for (int64_t r = 0; r < 2; ++r)
      for (int64_t m = 0; m < g.microbatches; ++m) {
        int64_t k = BatchStream::streamIndex(g, step, r, m);
        EXPECT_TRUE(indices.insert(k).second);
        BatchRef ref = set->locate(step, r, m);
        if (ref.epoch != 0)
          continue;
        for (const auto &seq : stream.sequences(ref))
          for (int64_t s : seq) {
            seen.insert(s);
            byReplica[r].insert(s);
          }
      }
  EXPECT_EQ(static_cast<int64_t>(seen.size()), set->size());
  EXPECT_EQ(std::set<int64_t>(seen.begin(), seen.end()).size(), seen.size());
  for (int64_t s : byReplica[0])
    EXPECT_EQ(byReplica[1].count(s), 0u) << s;
  // The stream goes on into the next epoch, reshuffled.
  BatchRef next = stream.locate(epoch0);
  EXPECT_EQ(next.epoch, 1);
  EXPECT_EQ(next.index, 0);
}

TEST(Stream, MicrobatchesMatchTheirPlan) {
  MLLM_NEEDS_PNG();
  MLLM_NEEDS_AUDIO();
  MLLM_NEEDS_FFTW();
  TempDir dir;
  DataGeometry g = smallGeometry();
  auto set = open(manifest(dir), g);
  int64_t counted = 0;
  for (int64_t m = 0; m < g.microbatches; ++m) {
    auto mb = set->microbatch(0, 0, m);
    ASSERT_TRUE(static_cast<bool>(mb)) << llvm::toString(mb.takeError());
    ASSERT_EQ(mb->sequences.size(), 2u);
    ASSERT_EQ(mb->tokenIds.size(), 2u * 64u);
    ASSERT_EQ(mb->targets.size(), 2u * 64u);
    EXPECT_EQ(mb->countedTokens,
              set->batches().countedTokens(set->locate(0, 0, m)));
    counted += mb->countedTokens;
    for (size_t e = 0; e < g.encoders.size(); ++e) {
      int64_t items = 0;
      for (const PackedSequence &seq : mb->sequences)
        items += static_cast<int64_t>(seq.items[e].size());
      const std::string &name = g.encoders[e].name;
      if (items == 0) {
        EXPECT_EQ(mb->media.count(name), 0u);
        continue;
      }
      ASSERT_EQ(mb->items[name], items);
      ASSERT_EQ(static_cast<int64_t>(mb->media[name].size()),
                items * g.encoders[e].floatsPerItem());
      for (float v : mb->media[name])
        ASSERT_TRUE(std::isfinite(v));
    }
    if (mb->media.count("vision")) // SigLIP range
      for (float v : mb->media["vision"])
        ASSERT_TRUE(v >= -1 && v <= 1);
  }
  EXPECT_EQ(counted, set->countedTokens(0));
}

TEST(Stream, PaddingToThePlansStaticShape) {
  MLLM_NEEDS_PNG();
  MLLM_NEEDS_AUDIO();
  MLLM_NEEDS_FFTW();
  TempDir dir;
  DataGeometry g = smallGeometry();
  auto set = open(manifest(dir), g);
  auto mb = set->microbatch(0, 0, 0);
  ASSERT_TRUE(static_cast<bool>(mb));
  Microbatch padded = *mb;
  padToCapacity(padded, g);
  for (size_t e = 0; e < g.encoders.size(); ++e) {
    const std::string &name = g.encoders[e].name;
    int64_t per = g.encoders[e].floatsPerItem();
    // 2 sequences x packing 2 x maxItems.
    ASSERT_EQ(static_cast<int64_t>(padded.media[name].size()),
              2 * 2 * g.encoders[e].maxItems * per);
    EXPECT_EQ(padded.items[name], mb->items.count(name) ? mb->items[name] : 0);
    const std::vector<float> &real = mb->media[name];
    EXPECT_TRUE(
        std::equal(real.begin(), real.end(), padded.media[name].begin()));
    for (size_t i = real.size(); i < padded.media[name].size(); ++i)
      ASSERT_EQ(padded.media[name][i], 0.0f);
  }
}

TEST(Prefetch, ResumeReproducesTheUninterruptedRun) {
  MLLM_NEEDS_PNG();
  MLLM_NEEDS_AUDIO();
  MLLM_NEEDS_FFTW();
  TempDir dir;
  std::string path = manifest(dir);
  DataGeometry g = smallGeometry();
  g.dp = 2;
  auto set = open(path, g);
  std::vector<Microbatch> straight;
  std::string saved;
  {
    Prefetcher reader(*set, /*replica=*/1, {}, /*threads=*/2, /*depth=*/3);
    for (int i = 0; i < 9; ++i) {
      if (i == 5)
        saved = formatPosition(reader.position(), *set);
      auto mb = reader.next();
      ASSERT_TRUE(static_cast<bool>(mb)) << llvm::toString(mb.takeError());
      straight.push_back(std::move(*mb));
    }
    PrefetchStats stats = reader.stats();
    EXPECT_EQ(stats.batches, 9);
    EXPECT_GT(stats.samples, 0);
    EXPECT_GT(stats.samplesPerThreadSecond(), 0);
  }
  EXPECT_EQ(saved.rfind("step 2 microbatch 1 data ", 0), 0u) << saved;
  // A fresh process: the data set opened again, the position read back.
  auto again = open(path, g);
  auto position = parsePosition(saved, *again);
  ASSERT_TRUE(static_cast<bool>(position))
      << llvm::toString(position.takeError());
  Prefetcher resumed(*again, 1, *position, 3, 2);
  for (int i = 5; i < 9; ++i) {
    auto mb = resumed.next();
    ASSERT_TRUE(static_cast<bool>(mb));
    EXPECT_EQ(mb->where, straight[i].where) << i;
    EXPECT_EQ(mb->lines, straight[i].lines) << i;
    EXPECT_EQ(mb->tokenIds, straight[i].tokenIds) << i;
    EXPECT_EQ(mb->targets, straight[i].targets) << i;
    EXPECT_EQ(mb->media, straight[i].media) << i;
  }
  // Random access gives the same batches as the queue, and get() reseeks.
  auto direct = again->microbatch(1, 1, 0);
  ASSERT_TRUE(static_cast<bool>(direct));
  EXPECT_EQ(direct->tokenIds, straight[2].tokenIds);
  auto sought = resumed.get(1, 0);
  ASSERT_TRUE(static_cast<bool>(sought));
  EXPECT_EQ(sought->lines, straight[2].lines);
  EXPECT_EQ(resumed.position(), (DataPosition{1, 1}));
  // Another seed is another stream: its positions are refused.
  auto other = open(path, g, /*seed=*/6);
  auto refused = parsePosition(saved, *other);
  ASSERT_FALSE(static_cast<bool>(refused));
  EXPECT_NE(llvm::toString(refused.takeError()).find("other data"),
            std::string::npos);
}

TEST(DataSet, LateDecodeFailureMasksTheSample) {
  MLLM_NEEDS_PNG();
  TempDir dir;
  writePng(dir.path("a.png"), 8, 8, 3,
           [](int64_t, int64_t, int64_t) { return 10; });
  std::string path =
      dir.write("d.jsonl", "{\"text\": \"caption\", \"vision\": \"a.png\"}\n");
  DataGeometry g = smallGeometry();
  g.sequences = 1;
  auto set = open(path, g);
  // The file breaks after the header check.
  dir.write("a.png", std::string("\x89PNG\r\n\x1a\n", 8) + "broken");
  auto mb = set->microbatch(0, 0, 0);
  ASSERT_TRUE(static_cast<bool>(mb)) << llvm::toString(mb.takeError());
  EXPECT_EQ(mb->failedSamples, 1);
  EXPECT_EQ(mb->countedTokens, 0);
  for (int64_t t : mb->targets)
    EXPECT_EQ(t, kIgnoreTarget);
  for (float v : mb->media["vision"])
    EXPECT_EQ(v, 0.0f);
  EXPECT_EQ(set->lateFailures(), 1);
  DataOptions strict;
  strict.strict = true;
  writePng(dir.path("a.png"), 8, 8, 3,
           [](int64_t, int64_t, int64_t) { return 10; });
  auto strictSet = DataSet::open(path, g, strict);
  ASSERT_TRUE(static_cast<bool>(strictSet));
  dir.write("a.png", std::string("\x89PNG\r\n\x1a\n", 8) + "broken");
  auto failed = (*strictSet)->microbatch(0, 0, 0);
  ASSERT_FALSE(static_cast<bool>(failed));
  EXPECT_EQ(llvm::toString(failed.takeError()).rfind(path + ":1: ", 0), 0u);
}

TEST(DataSet, ClipOfExactlyOneItemDecodes) {
  MLLM_NEEDS_AUDIO();
  MLLM_NEEDS_FFTW();
  // 0.2 s at 44.1 kHz is the item's 20 frames x 10 ms exactly; resampling
  // may round it a sample over, which must not make it undecodable.
  TempDir dir;
  writeSound(dir.path("c.wav"), tone(500, 0.2, 44100), 44100, 1);
  std::string path =
      dir.write("d.jsonl", "{\"text\": \"hi\", \"audio\": \"c.wav\"}\n");
  DataGeometry g = smallGeometry();
  g.sequences = 1;
  auto set = open(path, g);
  ASSERT_EQ(set->problems().total(), 0);
  auto mb = set->microbatch(0, 0, 0);
  ASSERT_TRUE(static_cast<bool>(mb)) << llvm::toString(mb.takeError());
  EXPECT_EQ(mb->failedSamples, 0);
  ASSERT_EQ(mb->media["audio"].size(), 20u * 8u);
  // Features within Whisper's dynamic range (8 decades / 4).
  float lo =
      *std::min_element(mb->media["audio"].begin(), mb->media["audio"].end());
  float hi =
      *std::max_element(mb->media["audio"].begin(), mb->media["audio"].end());
  EXPECT_GT(hi, lo);
  EXPECT_LE(hi - lo, 2.0f);
}
