//===- KeyCacheTest.cpp - generation's keys and values --------------------===//
//
// exec::KeyCache as the LLM's other CP rank: what each layer's all-gather
// gets, in the rank-major [K | V] blocks cpu::gatherKeys lays out, and the
// internal errors of calls that do not fit what it keeps.
//
//===----------------------------------------------------------------------===//
#include "mllm/runtime/exec/KeyCache.h"

#include "gtest/gtest.h"

#include <vector>

using namespace mllm::runtime;
using namespace mllm::runtime::exec;

namespace {
/// [K | V] of `tokens` tokens of width `width`: K values 100 t + i + base,
/// V values the negatives.
std::vector<float> block(int64_t first, int64_t tokens, int64_t width,
                         float base) {
  std::vector<float> b(2 * tokens * width);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t i = 0; i < width; ++i) {
      b[t * width + i] = 100.0f * (first + t) + i + base;
      b[(tokens + t) * width + i] = -b[t * width + i];
    }
  return b;
}
} // namespace

TEST(KeyCache, ServesTheKeptTokensBeforeTheNewPerLayer) {
  KeyCache cache;
  EXPECT_EQ(cache.size(), 2);
  EXPECT_EQ(cache.rank(), 1);
  // Round 1: the prompt's 3 tokens, two layers of widths 2 and 4.
  cache.beginRound(3);
  for (auto [width, base] : {std::pair<int64_t, float>{2, 0.5f}, {4, 0.25f}}) {
    std::vector<float> mine = block(0, 3, width, base), out(mine.size());
    ASSERT_FALSE(cache.allGather(mine.data(), {0, 2 * 3 * width}, out.data()));
    EXPECT_EQ(out, mine);
  }
  ASSERT_FALSE(cache.endRound());
  EXPECT_EQ(cache.tokens(), 3);
  // Round 2: one token; each layer gets tokens 0..2 then 3, as rank 0's
  // and rank 1's blocks.
  cache.beginRound(1);
  for (auto [width, base] : {std::pair<int64_t, float>{2, 0.5f}, {4, 0.25f}}) {
    std::vector<float> mine = block(3, 1, width, base), out(2 * 4 * width);
    ASSERT_FALSE(
        cache.allGather(mine.data(), {2 * 3 * width, 2 * width}, out.data()));
    std::vector<float> expect = block(0, 3, width, base);
    expect.insert(expect.end(), mine.begin(), mine.end());
    EXPECT_EQ(out, expect);
  }
  ASSERT_FALSE(cache.endRound());
  EXPECT_EQ(cache.tokens(), 4);
}

TEST(KeyCache, CallsThatDoNotFitAreInternalErrors) {
  KeyCache cache;
  cache.beginRound(2);
  std::vector<float> mine = block(0, 2, 2, 0), out(mine.size());
  ASSERT_FALSE(cache.allGather(mine.data(), {0, 8}, out.data()));
  ASSERT_FALSE(cache.endRound());
  // A width the layer did not have.
  cache.beginRound(1);
  std::vector<float> wide = block(2, 1, 4, 0), big(2 * 3 * 4);
  llvm::Error e = cache.allGather(wide.data(), {2 * 2 * 4, 8}, big.data());
  ASSERT_TRUE(!!e);
  EXPECT_NE(llvm::toString(std::move(e)).find("internal error"),
            std::string::npos);
  // The round that failed clears the cache.
  llvm::Error end = cache.endRound();
  EXPECT_TRUE(!!end);
  llvm::consumeError(std::move(end));
  EXPECT_EQ(cache.tokens(), 0);
}

TEST(KeyCache, ARoundThatMissesALayerClearsIt) {
  KeyCache cache;
  cache.beginRound(1);
  std::vector<float> a = block(0, 1, 2, 0), out(a.size());
  ASSERT_FALSE(cache.allGather(a.data(), {0, 4}, out.data()));
  ASSERT_FALSE(cache.allGather(a.data(), {0, 4}, out.data()));
  ASSERT_FALSE(cache.endRound());
  cache.beginRound(1);
  std::vector<float> b = block(1, 1, 2, 0), two(8);
  ASSERT_FALSE(cache.allGather(b.data(), {4, 4}, two.data()));
  llvm::Error e = cache.endRound();
  ASSERT_TRUE(!!e);
  EXPECT_NE(llvm::toString(std::move(e)).find("1 of 2 all-gathers"),
            std::string::npos);
  EXPECT_EQ(cache.tokens(), 0);
  // Other collectives are not generation's.
  float x = 0;
  llvm::Error other = cache.allReduceSum(&x, 1);
  EXPECT_TRUE(!!other);
  llvm::consumeError(std::move(other));
}
