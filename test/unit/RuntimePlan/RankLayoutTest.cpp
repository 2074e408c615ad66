//===- RankLayoutTest.cpp - the rank formula and the groups ---------------===//
#include "mllm/runtime/RankLayout.h"

#include "gtest/gtest.h"

using mllm::runtime::RankLayout;

namespace {

TEST(RankLayout, TpInnermost) {
  // dp 2 x cp 2 x tp 2 from rank 4, replicas 16 apart.
  RankLayout l = RankLayout::tpInnermost(4, 2, 16, 2, 2);
  EXPECT_EQ(l.size(), 8);
  EXPECT_EQ(l.ranks(), (std::vector<int64_t>{4, 5, 6, 7, 20, 21, 22, 23}));
  EXPECT_EQ(l.end(), 24);
  EXPECT_EQ(l.tpGroups(), (std::vector<std::vector<int64_t>>{
                              {4, 5}, {6, 7}, {20, 21}, {22, 23}}));
  EXPECT_EQ(l.cpGroups(), (std::vector<std::vector<int64_t>>{
                              {4, 6}, {5, 7}, {20, 22}, {21, 23}}));
  EXPECT_EQ(l.gradSyncGroups(), (std::vector<std::vector<int64_t>>{
                                    {4, 6, 20, 22}, {5, 7, 21, 23}}));
  EXPECT_EQ(l.replicaGroups(), (std::vector<std::vector<int64_t>>{
                                   {4, 5, 6, 7}, {20, 21, 22, 23}}));
}

TEST(RankLayout, CoordOfInvertsRank) {
  RankLayout l;
  l.first = 3;
  l.dp = 3;
  l.cp = 2;
  l.tp = 2;
  l.dpStride = 1; // Interleaved replicas.
  l.cpStride = 6;
  l.tpStride = 3;
  for (int64_t d = 0; d < l.dp; ++d)
    for (int64_t c = 0; c < l.cp; ++c)
      for (int64_t t = 0; t < l.tp; ++t) {
        auto coord = l.coordOf(l.rank(d, c, t));
        ASSERT_TRUE(coord.has_value());
        EXPECT_EQ(coord->d, d);
        EXPECT_EQ(coord->c, c);
        EXPECT_EQ(coord->t, t);
      }
  EXPECT_FALSE(l.coordOf(0).has_value());
  EXPECT_FALSE(l.coordOf(l.end()).has_value());
}

} // namespace
