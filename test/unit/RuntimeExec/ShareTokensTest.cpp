//===- ShareTokensTest.cpp - generation's tokens across the ranks ---------===//
#include "mllm/runtime/LocalComm.h"
#include "mllm/runtime/exec/RankRunner.h"

#include <gtest/gtest.h>

#include <numeric>

using namespace mllm::runtime;
using namespace mllm::runtime::exec;
using namespace std::chrono_literals;

namespace {

/// Runs shareTokens on 3 ranks, rank r offering `offers[r]`, for queries
/// of slots `slots` (4 slots); each rank's ids, or its error.
std::vector<std::vector<int64_t>>
share(const std::vector<std::map<int64_t, int64_t>> &offers,
      const std::vector<int64_t> &slots, std::vector<std::string> &errors) {
  const int ranks = static_cast<int>(offers.size());
  std::vector<std::vector<int64_t>> ids(ranks);
  errors.assign(ranks, "");
  llvm::Error e = runLocalWorld(ranks, 60s, [&](Comm &comm) -> llvm::Error {
    const int r = comm.worldRank();
    std::vector<int64_t> all(ranks);
    std::iota(all.begin(), all.end(), 0);
    auto world = comm.group(all);
    if (!world)
      return world.takeError();
    std::vector<TokenQuery> queries;
    for (int64_t slot : slots)
      queries.push_back({slot, nullptr, 0});
    ids[r].assign(slots.size(), -7);
    if (llvm::Error e = shareTokens(**world, 4, offers[r], queries, ids[r]))
      errors[r] = llvm::toString(std::move(e));
    return llvm::Error::success();
  });
  EXPECT_FALSE(e) << llvm::toString(std::move(e));
  return ids;
}

} // namespace

// Each slot's token comes from the one rank that offers it, to every rank
// (-1, a row of NaN, included); a slot not asked for (its sample done) is
// not read.
TEST(ShareTokens, EveryRankReadsEachSlotsOneOffer) {
  std::vector<std::string> errors;
  auto ids =
      share({{{0, 17}, {3, -1}}, {{1, 0}}, {{2, 255}}}, {0, 1, 3, 2}, errors);
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(errors[r], "") << "rank " << r;
    EXPECT_EQ(ids[r], (std::vector<int64_t>{17, 0, -1, 255})) << "rank " << r;
  }
  ids = share({{{0, 4}}, {{3, 9}}, {}}, {3, 0}, errors);
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(errors[r], "") << "rank " << r;
    EXPECT_EQ(ids[r], (std::vector<int64_t>{9, 4})) << "rank " << r;
  }
}

// A slot that no rank answered, or two did, is an internal error on every
// rank, never a token (the sum of the offers would read as one).
TEST(ShareTokens, ASlotWithNoneOrTwoOffersIsAnError) {
  std::vector<std::string> errors;
  share({{{0, 5}}, {}, {}}, {0, 1}, errors);
  for (int r = 0; r < 3; ++r)
    EXPECT_EQ(errors[r], "0 ranks gave slot 1 a token, not one (internal "
                         "error)")
        << "rank " << r;
  share({{{0, 5}, {1, 2}}, {{1, 2}}, {}}, {0, 1}, errors);
  for (int r = 0; r < 3; ++r)
    EXPECT_EQ(errors[r], "2 ranks gave slot 1 a token, not one (internal "
                         "error)")
        << "rank " << r;
}
