//===- TileMapTest.cpp - Tile maps against the dense mask -----------------===//

#include "mllm/kernels/TileMap.h"
#include "mllm/kernels/MaskFamilies.h"

#include "gtest/gtest.h"

#include <random>

using namespace mllm::kernels;

namespace {

/// Random runs of every kind of token the predicate distinguishes.
TokenLayout randomLayout(std::mt19937_64 &rng, int64_t n) {
  TokenLayout l;
  uint32_t sample = 0, item = 1;
  while (l.size() < n) {
    int64_t len = std::min<int64_t>(n - l.size(), 1 + rng() % 40);
    uint64_t word = 0;
    uint32_t seg = 0;
    switch (rng() % 9) {
    case 0:
      break; // padding
    case 1:
    case 2:
      word = textWord(2);
      seg = makeSegment(sample, 0, rng() % 5 == 0);
      break;
    case 3:
      word = textWord(2);
      seg = makeSegment(sample, item++);
      break;
    case 4:
      word = textWord(2) & ~kCausalBit; // bidirectional prefix
      seg = makeSegment(sample, item++);
      break;
    case 5:
    case 6:
      word = modalityWord(rng() % 2, rng() % 4 == 0);
      seg = makeSegment(sample, item++);
      break;
    case 7:
      ++sample; // next packed sample
      continue;
    default:
      word = kCausalBit | kTextBit; // text that sees no modality
      seg = makeSegment(sample, rng() % 2 ? 0 : item++);
      break;
    }
    // Occasionally split one item over two runs with a gap in between.
    if (rng() % 6 == 0 && !l.segments.empty())
      seg = l.segments.back();
    l.words.insert(l.words.end(), len, word);
    l.segments.insert(l.segments.end(), len, seg);
  }
  return l;
}

/// Skip must mean no allowed pair, Full must mean all pairs allowed.
void expectSound(const TokenLayout &l, MaskPolicy p, TileShape shape,
                 int64_t *exactSkips = nullptr, int64_t *emptyTiles = nullptr) {
  std::vector<uint8_t> dense = buildDenseMask(l, p);
  TileMap map = buildTileMap(l, p, shape);
  int64_t n = l.size();
  ASSERT_EQ(map.numRowTiles(), (n + shape.rows - 1) / shape.rows);
  ASSERT_EQ(map.numColTiles(), (n + shape.cols - 1) / shape.cols);
  for (int64_t r = 0; r < map.numRowTiles(); ++r)
    for (int64_t c = 0; c < map.numColTiles(); ++c) {
      int64_t allowed = 0, total = 0;
      for (int64_t q = r * shape.rows; q < std::min(n, (r + 1) * shape.rows);
           ++q)
        for (int64_t k = c * shape.cols; k < std::min(n, (c + 1) * shape.cols);
             ++k) {
          allowed += dense[q * n + k];
          ++total;
        }
      TileClass cls = map.at(r, c);
      if (cls == TileClass::Skip)
        ASSERT_EQ(allowed, 0) << "tile " << r << "," << c;
      if (cls == TileClass::Full)
        ASSERT_EQ(allowed, total) << "tile " << r << "," << c;
      if (allowed == 0 && emptyTiles) {
        ++*emptyTiles;
        *exactSkips += cls == TileClass::Skip;
      }
    }
  EXPECT_EQ(blockWorkloads(l, p, shape), map.rowWorkloads());
}

} // namespace

TEST(TileMap, SoundOnRandomLayouts) {
  std::mt19937_64 rng(1234);
  const TileShape shapes[] = {{128, 32}, {16, 8}, {32, 32}, {8, 16}};
  for (int iter = 0; iter < 60; ++iter) {
    int64_t n = 1 + rng() % 600;
    TokenLayout l = randomLayout(rng, n);
    TileShape shape = shapes[iter % 4];
    MaskPolicy window{PolicyKind::Mllm, static_cast<int64_t>(1 + rng() % 90)};
    for (MaskPolicy p : {MaskPolicy{PolicyKind::Mllm, 0}, window,
                         MaskPolicy{PolicyKind::Cornstarch, 0}}) {
      SCOPED_TRACE(testing::Message()
                   << "iter " << iter << " n " << n << " window " << p.window);
      expectSound(l, p, shape);
    }
  }
}

TEST(TileMap, ExactSkipsOnMaskFamilies) {
  // The balancer counts non-skipped tiles, so on the families it serves a
  // tile with no allowed pair must be classified Skip.
  for (MaskFamily f : allFamilies())
    for (uint64_t seed : {1, 2}) {
      SCOPED_TRACE(familyName(f));
      GeneratedMask g = generateMask(f, 1536, seed);
      int64_t exact = 0, empty = 0;
      expectSound(g.layout, g.policy, {128, 32}, &exact, &empty);
      EXPECT_EQ(exact, empty);
      EXPECT_GT(empty, 0);
    }
}

TEST(TileMap, CausalCounts) {
  // 1000 causal tokens in 128 x 32 tiles: row r reaches key tile
  // floor(min(n, 128 r + 128) - 1) / 32).
  GeneratedMask g = generateMask(MaskFamily::Causal, 1000, 7);
  std::vector<int64_t> work = blockWorkloads(g.layout, g.policy);
  ASSERT_EQ(work.size(), 8u);
  for (int64_t r = 0; r < 8; ++r)
    EXPECT_EQ(work[r], (std::min<int64_t>(1000, 128 * r + 128) - 1) / 32 + 1);
  TileMap map = buildTileMap(g.layout, g.policy);
  EXPECT_EQ(map.at(0, 0), TileClass::Partial); // diagonal
  EXPECT_EQ(map.at(1, 0), TileClass::Full);
  EXPECT_EQ(map.at(0, 4), TileClass::Skip);
}

TEST(TileMap, FullTilesInsideAnImage) {
  TokenLayout l;
  l.words.assign(256, modalityWord(0));
  l.segments.assign(256, makeSegment(0, 1));
  TileMap map = buildTileMap(l, {}, {64, 32});
  for (int64_t r = 0; r < map.numRowTiles(); ++r)
    for (int64_t c = 0; c < map.numColTiles(); ++c)
      EXPECT_EQ(map.at(r, c), TileClass::Full);
  // A second image right after it: off-diagonal tiles are skipped.
  l.words.insert(l.words.end(), 256, modalityWord(0));
  l.segments.insert(l.segments.end(), 256, makeSegment(0, 2));
  map = buildTileMap(l, {}, {64, 32});
  EXPECT_EQ(map.at(0, 8), TileClass::Skip);
  EXPECT_EQ(map.at(4, 0), TileClass::Skip);
  EXPECT_EQ(map.at(4, 8), TileClass::Full);
}
