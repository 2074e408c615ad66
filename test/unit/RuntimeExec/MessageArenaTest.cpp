//===- MessageArenaTest.cpp - a rank's message buffers in one arena -------===//
//
// The first stage of a two-stage 1F1B pipeline with four microbatches,
// written out by hand, and the lifetimes its sends get from the rule of
// SendRelease.h (each activation arrives by the time its gradient comes
// back): the arena holds two sent activations and one received gradient at
// once, and every misuse of a buffer is reported.
//
//===----------------------------------------------------------------------===//
#include "mllm/runtime/exec/MessageArena.h"

#include "gtest/gtest.h"

#include <map>

using namespace mllm;
using namespace mllm::runtime::exec;
using sched::Action;
using sched::ActionKind;

namespace {

Action act(ActionKind kind, int32_t mb) {
  Action a;
  a.kind = kind;
  a.microbatch = mb;
  if (sched::isComm(kind)) {
    a.peer = 1;
    a.bytes = 1000;
    a.tag = sched::messageTag(kind, mb);
  }
  return a;
}

// 0 F0  1 SA0  2 F1  3 SA1  4 RG0  5 BI0  6 BW0  7 F2  8 SA2  9 RG1 10 BI1
// 11 BW1  12 F3  13 SA3  14 RG2  15 BI2  16 BW2  17 RG3  18 BI3  19 BW3
// 20 optimizer step.
sched::Program firstStage() {
  using K = ActionKind;
  sched::Program p;
  p.stage = 0;
  p.actions = {act(K::Forward, 0), act(K::SendActivation, 0),
               act(K::Forward, 1), act(K::SendActivation, 1)};
  for (int32_t mb = 0; mb < 4; ++mb) {
    p.actions.push_back(act(K::RecvGrad, mb));
    p.actions.push_back(act(K::BackwardInput, mb));
    p.actions.push_back(act(K::BackwardWeight, mb));
    if (mb + 2 < 4) {
      p.actions.push_back(act(K::Forward, mb + 2));
      p.actions.push_back(act(K::SendActivation, mb + 2));
    }
  }
  p.actions.push_back(act(ActionKind::OptimizerStep, -1));
  return p;
}

/// Sends released at their microbatch's backward_input (where the gradient
/// that proves the activation arrived is waited for).
std::vector<int64_t> releases(const sched::Program &p) {
  std::vector<int64_t> r(p.actions.size(), -1);
  for (size_t i = 0; i < p.actions.size(); ++i)
    if (p.actions[i].kind == ActionKind::SendActivation)
      for (size_t j = i; j < p.actions.size(); ++j)
        if (p.actions[j].kind == ActionKind::BackwardInput &&
            p.actions[j].microbatch == p.actions[i].microbatch)
          r[i] = static_cast<int64_t>(j);
  return r;
}

std::vector<int64_t> floats(const sched::Program &p, int64_t n) {
  std::vector<int64_t> f(p.actions.size(), 0);
  for (size_t i = 0; i < p.actions.size(); ++i)
    if (sched::isComm(p.actions[i].kind))
      f[i] = n;
  return f;
}

/// Runs the program as the rank runner does: a send's buffer from its send
/// to its release, a received gradient's from its receive to its
/// backward_input (where it is copied out).
void runAll(MessageArena &arena, const sched::Program &p,
            const std::vector<int64_t> &rel) {
  std::map<int32_t, int64_t> recvOf;
  for (size_t i = 0; i < p.actions.size(); ++i) {
    const Action &a = p.actions[i];
    auto at = static_cast<int64_t>(i);
    if (sched::isComm(a.kind)) {
      auto buffer = arena.take(at, at, 1000);
      ASSERT_TRUE(static_cast<bool>(buffer)) << toString(buffer.takeError());
      // Every float of the buffer is writable (ASan would see an overrun).
      std::fill_n(*buffer, 4000 / sizeof(float), 1.0f);
    }
    if (a.kind == ActionKind::RecvGrad)
      recvOf[a.microbatch] = at;
    if (a.kind == ActionKind::BackwardInput)
      ASSERT_FALSE(static_cast<bool>(arena.release(recvOf[a.microbatch], at)));
    for (size_t s = 0; s < rel.size(); ++s)
      if (rel[s] == at)
        ASSERT_FALSE(static_cast<bool>(arena.release(s, at)));
  }
}

TEST(MessageArena, HoldsThreeMessagesOfOneFOneBAtOnce) {
  sched::Program p = firstStage();
  std::vector<int64_t> rel = releases(p);
  MessageArena arena;
  // 1000 floats: 4000 bytes, 4032 with the 64-byte granule.
  ASSERT_FALSE(static_cast<bool>(arena.plan(p, rel, floats(p, 1000))));
  // At action 4 (RG0): SA0 [0, 5] and SA1 [2, 10] are live, and so at
  // action 9 SA1, SA2 [7, 15] and RG1 [9, 11]: three buffers, never four.
  EXPECT_EQ(arena.layout().arenaBytes, 3 * 4032);
  EXPECT_EQ(arena.layout().buffers.size(), 8u);
  runAll(arena, p, rel);
  EXPECT_EQ(arena.measuredBytes(), 3 * 4032);
  EXPECT_EQ(arena.freedAt().size(), 8u);
  for (const auto &[action, freed] : arena.freedAt())
    EXPECT_GE(freed, action);

  // The next iteration with larger messages: laid out again, grown.
  ASSERT_FALSE(static_cast<bool>(arena.plan(p, rel, floats(p, 1500))));
  EXPECT_EQ(arena.layout().arenaBytes, 3 * 6016);
  EXPECT_EQ(arena.measuredBytes(), 0);
}

TEST(MessageArena, ReportsBuffersUsedOutsideThePlan) {
  sched::Program p = firstStage();
  std::vector<int64_t> rel = releases(p);
  MessageArena arena;
  ASSERT_FALSE(static_cast<bool>(arena.plan(p, rel, floats(p, 1000))));
  // Outside its lifetime: the receive of action 4 taken at action 20.
  auto late = arena.take(4, 20, 1000);
  ASSERT_FALSE(static_cast<bool>(late));
  EXPECT_NE(toString(late.takeError()).find("outside its lifetime 4..6"),
            std::string::npos);
  // Kept past its lifetime: SA0 ends at action 5.
  ASSERT_TRUE(static_cast<bool>(arena.take(1, 1, 1000)));
  llvm::Error kept = arena.release(1, 6);
  ASSERT_TRUE(static_cast<bool>(kept));
  EXPECT_NE(toString(std::move(kept)).find("after its lifetime ends"),
            std::string::npos);
  // Freed twice.
  ASSERT_FALSE(static_cast<bool>(arena.release(1, 5)));
  llvm::Error twice = arena.release(1, 5);
  ASSERT_TRUE(static_cast<bool>(twice));
  llvm::consumeError(std::move(twice));
  // A layout with a buffer still in use is refused.
  ASSERT_TRUE(static_cast<bool>(arena.take(3, 3, 1000)));
  llvm::Error busy = arena.plan(p, rel, floats(p, 1000));
  ASSERT_TRUE(static_cast<bool>(busy));
  EXPECT_NE(toString(std::move(busy)).find("still in use"), std::string::npos);
}

TEST(MessageArena, ReportsOverlapWithABufferStillInUse) {
  sched::Program p = firstStage();
  std::vector<int64_t> rel = releases(p);
  MessageArena arena;
  ASSERT_FALSE(static_cast<bool>(arena.plan(p, rel, floats(p, 1000))));
  // SA0 [0, 5] and SA2 [7, 15] share bytes; a runtime that kept SA0 to
  // action 7 would have SA2 write over it.
  std::map<int64_t, int64_t> offset;
  for (const sched::Buffer &b : arena.layout().buffers)
    offset[b.action] = b.offset;
  ASSERT_EQ(offset[1], offset[8]);
  ASSERT_TRUE(static_cast<bool>(arena.take(1, 1, 1000)));
  auto clash = arena.take(8, 8, 1000);
  ASSERT_FALSE(static_cast<bool>(clash));
  EXPECT_NE(toString(clash.takeError()).find("overlaps"), std::string::npos);
}

TEST(MessageArena, EmptyMessagesTakeNoRoom) {
  sched::Program p = firstStage();
  MessageArena arena;
  ASSERT_FALSE(static_cast<bool>(arena.plan(p, releases(p), floats(p, 0))));
  EXPECT_EQ(arena.layout().arenaBytes, 0);
  auto buffer = arena.take(1, 1, 0);
  ASSERT_TRUE(static_cast<bool>(buffer));
  EXPECT_NE(*buffer, nullptr);
  EXPECT_FALSE(static_cast<bool>(arena.release(1, 1)));
  // A message larger than its (here: absent) buffer is refused.
  auto big = arena.take(3, 3, 1);
  ASSERT_FALSE(static_cast<bool>(big));
  EXPECT_NE(toString(big.takeError()).find("no buffer for its 4 bytes"),
            std::string::npos);
}

TEST(MessageArena, RefusesAMessageLargerThanItsBuffer) {
  sched::Program p = firstStage();
  MessageArena arena;
  ASSERT_FALSE(static_cast<bool>(arena.plan(p, releases(p), floats(p, 1000))));
  // 1000 floats were planned (4032 bytes with the granule): 1008 fit,
  // 1009 do not.
  ASSERT_TRUE(static_cast<bool>(arena.take(1, 1, 1008)));
  auto over = arena.take(3, 3, 1009);
  ASSERT_FALSE(static_cast<bool>(over));
  EXPECT_NE(toString(over.takeError())
                .find("needs 4036 bytes, its buffer "
                      "holds 4032"),
            std::string::npos);
}

} // namespace
