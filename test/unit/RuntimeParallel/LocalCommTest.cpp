//===- LocalCommTest.cpp - the in-process Comm ----------------------------===//
//
// Every collective of LocalComm against a sequential reference, identical
// bits on every rank, groups that do not mix, FIFO messages per tag, and
// the failure modes: a deadline, a peer that exited, mismatched calls,
// wrong sizes, bad groups.
//
//===----------------------------------------------------------------------===//

#include "mllm/runtime/LocalComm.h"

#include "gtest/gtest.h"

#include <cstring>
#include <mutex>
#include <thread>

using namespace mllm::runtime;
using namespace std::chrono_literals;

namespace {

/// Runs `body(comm)` on `ranks` threads; a rank's error string ("" when it
/// succeeded) lands in the result.
std::vector<std::string>
errorsOf(int ranks, std::chrono::milliseconds timeout,
         const std::function<llvm::Error(Comm &)> &body) {
  std::vector<std::string> errors(ranks);
  llvm::Error e = runLocalWorld(ranks, timeout, [&](Comm &c) {
    if (llvm::Error f = body(c))
      errors[c.worldRank()] = llvm::toString(std::move(f));
    return llvm::Error::success();
  });
  EXPECT_FALSE(e) << llvm::toString(std::move(e));
  return errors;
}

/// A Group of all ranks, or a failure of the test.
std::unique_ptr<Group> world(Comm &c) {
  std::vector<int64_t> all;
  for (int i = 0; i < c.worldSize(); ++i)
    all.push_back(i);
  auto g = c.group(all);
  if (!g) {
    ADD_FAILURE() << llvm::toString(g.takeError());
    return nullptr;
  }
  return std::move(*g);
}

#define ASSERT_OK(expr)                                                        \
  do {                                                                         \
    if (llvm::Error e_ = (expr))                                               \
      return e_;                                                               \
  } while (0)

TEST(LocalComm, SumsInRankOrderWithIdenticalBits) {
  // Values whose float sum depends on the order: (1 + 1e8) - 1e8 = 0 in
  // rank order, while the reverse order or a tree (1e8 - 1e8) + 1 gives 1.
  const float in[3][2] = {{1.0f, 0.1f}, {1e8f, 0.2f}, {-1e8f, 0.3f}};
  std::vector<std::vector<float>> got(3);
  std::vector<std::vector<double>> gotD(3);
  llvm::Error e = runLocalWorld(3, 5s, [&](Comm &c) -> llvm::Error {
    auto g = world(c);
    int r = c.worldRank();
    got[r].assign(in[r], in[r] + 2);
    ASSERT_OK(g->allReduceSum(got[r].data(), 2));
    gotD[r] = {static_cast<double>(in[r][1]), 1.0 / (r + 1)};
    ASSERT_OK(g->allReduceSum(gotD[r].data(), 2));
    return llvm::Error::success();
  });
  ASSERT_FALSE(e) << llvm::toString(std::move(e));
  float expect0 = (in[0][0] + in[1][0]) + in[2][0];
  float expect1 = (in[0][1] + in[1][1]) + in[2][1];
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(got[r][0], 0.0f);
    EXPECT_EQ(got[r][0], expect0);
    EXPECT_EQ(std::memcmp(&got[r][1], &expect1, sizeof(float)), 0);
    EXPECT_EQ(std::memcmp(gotD[r].data(), gotD[0].data(), 16), 0);
  }
  EXPECT_DOUBLE_EQ(gotD[0][1], 1.0 + 0.5 + 1.0 / 3);
}

TEST(LocalComm, MaxGatherScatterWithUnevenCounts) {
  const std::vector<int64_t> counts = {2, 0, 3};
  std::vector<std::vector<float>> maxes(3), gathered(3), scattered(3);
  llvm::Error e = runLocalWorld(3, 5s, [&](Comm &c) -> llvm::Error {
    auto g = world(c);
    int r = c.worldRank();
    maxes[r] = {float(r), float(-r), r == 1 ? 7.0f : 0.0f};
    ASSERT_OK(g->allReduceMax(maxes[r].data(), 3));
    std::vector<float> mine(counts[r]);
    for (int64_t i = 0; i < counts[r]; ++i)
      mine[i] = 10.0f * r + i;
    gathered[r].resize(5);
    ASSERT_OK(g->allGather(mine.data(), counts, gathered[r].data()));
    std::vector<float> full(5);
    for (int i = 0; i < 5; ++i)
      full[i] = float(100 * r + i);
    scattered[r].resize(counts[r]);
    ASSERT_OK(g->reduceScatterSum(full.data(), counts, scattered[r].data()));
    return llvm::Error::success();
  });
  ASSERT_FALSE(e) << llvm::toString(std::move(e));
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(maxes[r], (std::vector<float>{2, 0, 7}));
    EXPECT_EQ(gathered[r], (std::vector<float>{0, 1, 20, 21, 22}));
  }
  // Element i sums 100 r + i over r = 0..2: 300 + 3 i.
  EXPECT_EQ(scattered[0], (std::vector<float>{300, 303}));
  EXPECT_TRUE(scattered[1].empty());
  EXPECT_EQ(scattered[2], (std::vector<float>{306, 309, 312}));
}

TEST(LocalComm, GroupsAndTheirInstancesDoNotMix) {
  // Ranks {0, 2} and {1, 3} reduce at once, and two groups of the same
  // ranks are called in opposite orders.
  std::vector<float> a(4), b(4);
  llvm::Error e = runLocalWorld(4, 5s, [&](Comm &c) -> llvm::Error {
    int r = c.worldRank();
    std::vector<int64_t> mine =
        r % 2 ? std::vector<int64_t>{1, 3} : std::vector<int64_t>{0, 2};
    auto g1 = c.group(mine);
    auto g2 = c.group(mine);
    if (!g1 || !g2)
      return llvm::joinErrors(g1.takeError(), g2.takeError());
    a[r] = float(r);
    b[r] = float(10 * r);
    ASSERT_OK((*g1)->allReduceSum(&a[r], 1));
    ASSERT_OK((*g2)->allReduceSum(&b[r], 1));
    return llvm::Error::success();
  });
  ASSERT_FALSE(e) << llvm::toString(std::move(e));
  EXPECT_EQ(a, (std::vector<float>{2, 4, 2, 4}));
  EXPECT_EQ(b, (std::vector<float>{20, 40, 20, 40}));
}

TEST(LocalComm, GatherBytesAndBarrier) {
  std::vector<std::vector<int64_t>> got(2, std::vector<int64_t>(4));
  llvm::Error e = runLocalWorld(2, 5s, [&](Comm &c) -> llvm::Error {
    auto g = world(c);
    int64_t mine[2] = {c.worldRank(), 5 + c.worldRank()};
    ASSERT_OK(g->allGatherBytes(mine, sizeof(mine), got[c.worldRank()].data()));
    return c.barrier();
  });
  ASSERT_FALSE(e) << llvm::toString(std::move(e));
  EXPECT_EQ(got[0], (std::vector<int64_t>{0, 5, 1, 6}));
  EXPECT_EQ(got[1], got[0]);
}

TEST(LocalComm, MessagesArriveInSendOrderPerTag) {
  std::vector<int> got;
  auto errors = errorsOf(2, 5s, [&](Comm &c) -> llvm::Error {
    if (c.worldRank() == 0) {
      // Tag 2 first, then two tag-1 messages.
      for (auto [tag, value] : {std::pair{2, 30}, {1, 10}, {1, 20}}) {
        auto req = c.isend(&value, sizeof(int), 1, tag);
        if (!req)
          return req.takeError();
        ASSERT_OK((*req)->wait());
      }
      return llvm::Error::success();
    }
    int v[3];
    // Posted before the sends may have happened; matched by tag, FIFO.
    auto r1 = c.irecv(&v[0], sizeof(int), 0, 1);
    auto r2 = c.irecv(&v[1], sizeof(int), 0, 1);
    auto r3 = c.irecv(&v[2], sizeof(int), 0, 2);
    if (!r1 || !r2 || !r3)
      return llvm::createStringError("irecv failed");
    ASSERT_OK((*r3)->wait());
    ASSERT_OK((*r2)->wait());
    ASSERT_OK((*r1)->wait());
    got.assign(v, v + 3);
    return llvm::Error::success();
  });
  EXPECT_EQ(errors, (std::vector<std::string>{"", ""}));
  EXPECT_EQ(got, (std::vector<int>{10, 20, 30}));
}

TEST(LocalComm, TimeoutNamesTheOperationAndThePeer) {
  auto start = std::chrono::steady_clock::now();
  auto errors = errorsOf(3, 100ms, [&](Comm &c) -> llvm::Error {
    auto g = world(c);
    if (c.worldRank() == 2) {
      // Late: the others give up first.
      std::this_thread::sleep_for(600ms);
      return llvm::Error::success();
    }
    float x = 1;
    return g->allReduceSum(&x, 1);
  });
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  // Both waiting ranks fail, naming the call, the group and the missing
  // rank; the first to time out fails the other through the slot.
  for (int r : {0, 1}) {
    EXPECT_NE(errors[r].find("allReduceSum(float x 1) on group [0, 1, 2]"),
              std::string::npos)
        << errors[r];
    EXPECT_NE(errors[r].find("timed out after 100 ms waiting for world ranks "
                             "[2]"),
              std::string::npos)
        << errors[r];
  }
  EXPECT_EQ(errors[2], "");
  EXPECT_LT(seconds, 5.0);
}

TEST(LocalComm, ReceiveTimesOut) {
  auto errors = errorsOf(2, 50ms, [&](Comm &c) -> llvm::Error {
    if (c.worldRank() == 0) {
      std::this_thread::sleep_for(300ms);
      return llvm::Error::success();
    }
    int v;
    auto r = c.irecv(&v, sizeof(v), 0, 7);
    if (!r)
      return r.takeError();
    return (*r)->wait();
  });
  EXPECT_EQ(errors[1], "receive on world rank 1 from world rank 0 (tag 7, 4 "
                       "bytes): timed out after 50 ms");
}

TEST(LocalComm, AnExitedPeerFailsWaitsAtOnce) {
  auto start = std::chrono::steady_clock::now();
  auto errors = errorsOf(2, 60s, [&](Comm &c) -> llvm::Error {
    auto g = world(c);
    if (c.worldRank() == 1)
      return llvm::Error::success(); // exits without joining
    float x = 1;
    llvm::Error first = g->allReduceSum(&x, 1);
    int v;
    auto r = c.irecv(&v, sizeof(v), 1, 3);
    if (!r)
      return llvm::joinErrors(std::move(first), r.takeError());
    return llvm::joinErrors(std::move(first), (*r)->wait());
  });
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  EXPECT_NE(errors[0].find("world rank [1] exited before joining"),
            std::string::npos)
      << errors[0];
  EXPECT_NE(errors[0].find("the peer exited without sending it"),
            std::string::npos)
      << errors[0];
  EXPECT_LT(seconds, 30.0);
}

TEST(LocalComm, MismatchedCallsAndSizesAreErrors) {
  auto errors = errorsOf(2, 5s, [&](Comm &c) -> llvm::Error {
    auto g = world(c);
    std::vector<float> x(5, 1.0f);
    llvm::Error e = c.worldRank() == 0 ? g->allReduceSum(x.data(), 4)
                                       : g->allReduceSum(x.data(), 5);
    if (e)
      return e;
    return llvm::createStringError("the mismatch went unnoticed");
  });
  for (const std::string &e : errors)
    EXPECT_NE(e.find("mismatched collectives on group [0, 1] (call 0)"),
              std::string::npos)
        << e;
  auto sizes = errorsOf(2, 5s, [&](Comm &c) -> llvm::Error {
    if (c.worldRank() == 0) {
      int64_t big = 1;
      auto s = c.isend(&big, sizeof(big), 1, 0);
      return s ? (*s)->wait() : s.takeError();
    }
    int small;
    auto r = c.irecv(&small, sizeof(small), 0, 0);
    return r ? (*r)->wait() : r.takeError();
  });
  EXPECT_EQ(sizes[1], "receive on world rank 1 from world rank 0 (tag 0, 4 "
                      "bytes): the message has 8 bytes");
}

TEST(LocalComm, BadGroupsAndCounts) {
  auto errors = errorsOf(2, 5s, [&](Comm &c) -> llvm::Error {
    if (c.worldRank() != 0)
      return llvm::Error::success();
    auto other = c.group({1});
    auto twice = c.group({0, 0});
    auto outside = c.group({0, 2});
    llvm::Error e =
        llvm::joinErrors(llvm::joinErrors(other.takeError(), twice.takeError()),
                         outside.takeError());
    auto self = c.group({0});
    if (!self)
      return llvm::joinErrors(std::move(e), self.takeError());
    float x = 0;
    return llvm::joinErrors(std::move(e), (*self)->allGather(&x, {1, 1}, &x));
  });
  EXPECT_NE(errors[0].find("group [1] does not include world rank 0"),
            std::string::npos);
  EXPECT_NE(errors[0].find("group [0, 0]: ranks must be distinct"),
            std::string::npos);
  EXPECT_NE(errors[0].find("group [0, 2]: ranks must be distinct"),
            std::string::npos);
  EXPECT_NE(errors[0].find("allGather: 2 counts for a group of 1 ranks"),
            std::string::npos)
      << errors[0];
}

} // namespace
