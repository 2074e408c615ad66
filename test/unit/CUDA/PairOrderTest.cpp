//===- PairOrderTest.cpp - Tagless point-to-point order checks ------------===//
//
// checkPairOrder must accept message lists whose per-pair orders agree
// (whatever the interleaving across peers) and name the first message a
// tagless transport would pair wrongly; the collective version must give
// every rank the same answer over the in-process Comm.
//
//===----------------------------------------------------------------------===//

#include "mllm/runtime/cuda/PairOrder.h"
#include "mllm/runtime/LocalComm.h"

#include "gtest/gtest.h"

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::cuda;

namespace {

P2PMessage msg(int from, int to, int64_t tag, int64_t bytes = 16) {
  P2PMessage m;
  m.from = from;
  m.to = to;
  m.tag = tag;
  m.bytes = bytes;
  return m;
}

std::string check(const std::vector<std::vector<P2PMessage>> &lists) {
  llvm::Error e = checkPairOrder(lists);
  return e ? llvm::toString(std::move(e)) : "";
}

TEST(PairOrder, AgreeingOrdersPass) {
  // A 1F1B-like exchange: activations 0->1 (even tags), gradients 1->0 (odd
  // tags), interleaved differently on the two ranks; rank 2 unrelated.
  std::vector<std::vector<P2PMessage>> lists(3);
  lists[0] = {msg(0, 1, 0), msg(0, 1, 2), msg(1, 0, 1),
              msg(0, 1, 4), msg(1, 0, 3), msg(1, 0, 5)};
  lists[1] = {msg(0, 1, 0), msg(1, 0, 1), msg(0, 1, 2),
              msg(1, 0, 3), msg(0, 1, 4), msg(1, 0, 5)};
  EXPECT_EQ(check(lists), "");
}

TEST(PairOrder, SwappedReceivesAreNamed) {
  // Megatron #5100: same-peer receives posted in another order than sent.
  std::vector<std::vector<P2PMessage>> lists(2);
  lists[0] = {msg(0, 1, 0, 100), msg(0, 1, 1, 200)};
  lists[1] = {msg(0, 1, 1, 200), msg(0, 1, 0, 100)};
  std::string e = check(lists);
  EXPECT_NE(e.find("message 0 from rank 0 to rank 1 (tag 0, 100 bytes)"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("tag 1, 200 bytes"), std::string::npos) << e;
}

TEST(PairOrder, SizesAndCountsMustAgree) {
  std::vector<std::vector<P2PMessage>> lists(2);
  lists[0] = {msg(0, 1, 0, 100)};
  lists[1] = {msg(0, 1, 0, 64)};
  EXPECT_NE(check(lists).find("64 bytes"), std::string::npos);
  lists[1] = {};
  EXPECT_NE(check(lists).find("sends 1 message(s) to rank 1, which receives 0"),
            std::string::npos)
      << check(lists);
  lists[0] = {};
  lists[1] = {msg(0, 1, 0)};
  EXPECT_NE(check(lists).find("which sends it none"), std::string::npos);
}

TEST(PairOrder, ForeignAndSelfMessagesAreRefused) {
  std::vector<std::vector<P2PMessage>> lists(3);
  lists[0] = {msg(1, 2, 0)};
  EXPECT_NE(check(lists).find("not its own"), std::string::npos);
  lists[0] = {msg(0, 0, 0)};
  EXPECT_NE(check(lists).find("to itself"), std::string::npos);
  lists[0] = {msg(0, 7, 0)};
  EXPECT_NE(check(lists).find("outside the world"), std::string::npos);
}

TEST(PairOrder, CollectiveCheckGivesEveryRankTheAnswer) {
  using namespace std::chrono_literals;
  // Ring 0 -> 1 -> 2 -> 0 with two messages per edge; rank 2 receives in
  // the wrong order in the second run.
  for (bool swap : {false, true}) {
    llvm::Error e = runLocalWorld(3, 10s, [&](Comm &comm) -> llvm::Error {
      int me = comm.worldRank(), next = (me + 1) % 3, prev = (me + 2) % 3;
      std::vector<P2PMessage> mine = {msg(me, next, 0), msg(prev, me, 0),
                                      msg(me, next, 1), msg(prev, me, 1)};
      if (swap && me == 2)
        std::swap(mine[1], mine[3]);
      return exchangeAndCheckPairOrder(comm, mine);
    });
    std::string text = e ? llvm::toString(std::move(e)) : "";
    if (!swap) {
      EXPECT_EQ(text, "");
      continue;
    }
    for (int r = 0; r < 3; ++r)
      EXPECT_NE(text.find("rank " + std::to_string(r) +
                          ": message 0 from "
                          "rank 1 to rank 2"),
                std::string::npos)
          << text;
  }
}

} // namespace
