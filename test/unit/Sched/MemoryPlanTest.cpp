//===- MemoryPlanTest.cpp - the static memory plan on random schedules ----===//
//
// Plans of every schedule kind on random pipelines, checked by brute force
// (no two live buffers share a byte, every operand live at its action)
// independently of verifyMemoryPlan, and the verifier rejecting broken
// plans.
//
//===----------------------------------------------------------------------===//
#include "mllm/runtime/MemoryPlan.h"
#include "mllm/Sched/Generate.h"

#include "llvm/Support/Error.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>

using namespace mllm::sched;

namespace {

/// A random pipeline: 1-3 encoders of 1-3 stages fanning into an LLM of 1-3
/// stages, random frozen flags, 1-12 microbatches.
PipelineGraph randomGraph(std::mt19937 &rng) {
  auto pick = [&](int lo, int hi) {
    return std::uniform_int_distribution<int>(lo, hi)(rng);
  };
  PipelineGraph g;
  g.microbatches = pick(1, 12);
  std::vector<int> lasts;
  std::vector<bool> trainsAbove;
  auto add = [&](const std::string &name, const std::string &part, bool llm,
                 std::vector<int> prev) {
    StageInfo s;
    s.name = name;
    s.part = part;
    s.isLLM = llm;
    s.prev = prev;
    bool trains = pick(0, 2) == 0, upstream = false;
    for (int p : prev) {
      upstream = upstream || trainsAbove[p];
      g.stages[p].next.push_back(static_cast<int>(g.stages.size()));
      s.gradToPrev.push_back(trainsAbove[p]);
    }
    s.needsWeightGrad = trains;
    s.needsInputGrad = upstream;
    s.outputBytes = 64 * pick(1, 50) + pick(0, 63);
    s.trainableParams = trains ? 1000 : 0;
    s.fwd = 1;
    s.bwdInput = upstream ? 1 : 0;
    s.bwdWeight = trains ? 1 : 0;
    s.dp = pick(1, 2);
    trainsAbove.push_back(upstream || trains);
    g.stages.push_back(s);
  };
  int encoders = pick(1, 3);
  for (int e = 0; e < encoders; ++e) {
    int stages = pick(1, 3);
    for (int s = 0; s < stages; ++s) {
      int idx = static_cast<int>(g.stages.size());
      add("e" + std::to_string(e) + "_" + std::to_string(s),
          "enc" + std::to_string(e), false,
          s ? std::vector<int>{idx - 1} : std::vector<int>{});
    }
    lasts.push_back(static_cast<int>(g.stages.size()) - 1);
  }
  int llm = pick(1, 3);
  for (int s = 0; s < llm; ++s) {
    int idx = static_cast<int>(g.stages.size());
    add("l" + std::to_string(s), "llm", true,
        s ? std::vector<int>{idx - 1} : lasts);
  }
  g.stages.back().outputBytes = 0;
  return g;
}

StageSizes randomSizes(std::mt19937 &rng) {
  auto pick = [&](int lo, int hi) {
    return std::uniform_int_distribution<int>(lo, hi)(rng);
  };
  StageSizes s;
  s.weights = pick(0, 3) * 1000;
  s.grads = pick(0, 3) * 500;
  s.optimizer = pick(0, 3) * 700;
  s.savedPerMicrobatch = pick(0, 4) * 333;
  s.workspace = pick(0, 2) * 250;
  return s;
}

/// Checks a plan by brute force, not through verifyMemoryPlan.
void checkByBruteForce(const Program &program, const MemoryPlan &plan) {
  const auto &bufs = plan.buffers;
  for (size_t i = 0; i < bufs.size(); ++i) {
    ASSERT_GE(bufs[i].offset, 0);
    ASSERT_LE(bufs[i].offset + bufs[i].bytes, plan.arenaBytes);
    ASSERT_EQ(bufs[i].offset % kArenaAlignment, 0);
    for (size_t j = i + 1; j < bufs.size(); ++j) {
      bool time =
          bufs[i].first <= bufs[j].last && bufs[j].first <= bufs[i].last;
      bool space = bufs[i].offset < bufs[j].offset + bufs[j].bytes &&
                   bufs[j].offset < bufs[i].offset + bufs[i].bytes;
      ASSERT_FALSE(time && space) << "buffers " << i << " and " << j;
    }
  }
  // Every byte live at action i belongs to one buffer: the sum of the live
  // buffers at any action fits the arena.
  for (size_t a = 0; a < program.actions.size(); ++a) {
    int64_t live = 0;
    for (const Buffer &b : bufs)
      if (b.first <= static_cast<int64_t>(a) &&
          static_cast<int64_t>(a) <= b.last)
        live += b.bytes;
    ASSERT_LE(live, plan.arenaBytes);
    for (size_t o : actionOperands(program, plan, a)) {
      ASSERT_LE(bufs[o].first, static_cast<int64_t>(a));
      ASSERT_GE(bufs[o].last, static_cast<int64_t>(a));
    }
    const Action &act = program.actions[a];
    if (isComm(act.kind) && act.bytes > 0) {
      // The message's own buffer is among the operands and large enough.
      bool found = false;
      for (size_t o : actionOperands(program, plan, a))
        found |= bufs[o].action == static_cast<int64_t>(a) &&
                 bufs[o].bytes >= act.bytes;
      ASSERT_TRUE(found) << "action " << a;
    }
  }
}

TEST(MemoryPlan, RandomSchedulesPackWithoutOverlap) {
  std::mt19937 rng(20260501);
  int shared = 0;
  for (int iter = 0; iter < 300; ++iter) {
    PipelineGraph g = randomGraph(rng);
    for (ScheduleKind kind :
         {ScheduleKind::MultimodalOneFOneB, ScheduleKind::LinearOneFOneB,
          ScheduleKind::GPipe}) {
      std::vector<Program> programs = generateSchedule(g, kind);
      ASSERT_FALSE(static_cast<bool>(verifySchedule(g, programs)));
      for (const Program &p : programs) {
        StageSizes sizes = randomSizes(rng);
        MemoryPlan plan = planMemory(p, sizes);
        llvm::Error e = verifyMemoryPlan(p, plan);
        ASSERT_FALSE(static_cast<bool>(e))
            << "iteration " << iter << ": " << llvm::toString(std::move(e));
        checkByBruteForce(p, plan);
        // No packing beats the peak of live bytes; none is worse than
        // giving every buffer its own bytes (plus alignment).
        EXPECT_GE(plan.arenaBytes, plan.peakLiveBytes());
        EXPECT_LE(plan.arenaBytes,
                  plan.unsharedBytes() +
                      static_cast<int64_t>(plan.buffers.size()) *
                          kArenaAlignment);
        shared += plan.arenaBytes < plan.unsharedBytes();
      }
    }
  }
  // Disjoint lifetimes do share memory.
  EXPECT_GT(shared, 100);
}

/// One trained stage between two others: 1F1B with 6 microbatches.
class MemoryPlanBroken : public ::testing::Test {
protected:
  void SetUp() override {
    g.microbatches = 6;
    for (int s = 0; s < 3; ++s) {
      StageInfo st;
      st.name = "s" + std::to_string(s);
      st.part = "llm";
      st.isLLM = true;
      if (s > 0) {
        st.prev = {s - 1};
        st.gradToPrev = {true};
      }
      if (s < 2)
        st.next = {s + 1};
      st.needsWeightGrad = true;
      st.needsInputGrad = s > 0;
      st.outputBytes = s < 2 ? 4096 : 0;
      st.trainableParams = 100;
      st.dp = 2;
      st.fwd = st.bwdWeight = 1;
      st.bwdInput = s > 0 ? 1 : 0;
      g.stages.push_back(st);
    }
    programs = generateSchedule(g, ScheduleKind::MultimodalOneFOneB);
    ASSERT_FALSE(static_cast<bool>(verifySchedule(g, programs)));
    sizes.weights = 10000;
    sizes.grads = 10000;
    sizes.optimizer = 20000;
    sizes.savedPerMicrobatch = 8192;
    plan = planMemory(programs[1], sizes);
    ASSERT_EQ(message(), "");
  }
  std::string message() {
    llvm::Error e = verifyMemoryPlan(programs[1], plan);
    return e ? llvm::toString(std::move(e)) : std::string();
  }
  Buffer &find(BufferKind kind, int32_t mb) {
    for (Buffer &b : plan.buffers)
      if (b.kind == kind && b.microbatch == mb)
        return b;
    ADD_FAILURE() << "no such buffer";
    return plan.buffers.front();
  }
  PipelineGraph g;
  std::vector<Program> programs;
  StageSizes sizes;
  MemoryPlan plan;
};

TEST_F(MemoryPlanBroken, SavedActivationsAreReused) {
  // 1F1B holds at most max_in_flight microbatches: the saved buffers of
  // the six microbatches share that many slots.
  int64_t inFlight = programs[1].maxInFlight;
  ASSERT_LT(inFlight, 6);
  std::set<int64_t> offsets;
  for (const Buffer &b : plan.buffers)
    if (b.kind == BufferKind::Saved)
      offsets.insert(b.offset);
  EXPECT_EQ(static_cast<int64_t>(offsets.size()), inFlight);
  EXPECT_LT(plan.arenaBytes, plan.unsharedBytes());
}

TEST_F(MemoryPlanBroken, Overlap) {
  Buffer &a = find(BufferKind::Saved, 0);
  Buffer &b = find(BufferKind::Saved, 1);
  b.offset = a.offset;
  EXPECT_NE(message().find("share bytes of the arena while both are live"),
            std::string::npos)
      << message();
}

TEST_F(MemoryPlanBroken, OperandNotLive) {
  Buffer &saved = find(BufferKind::Saved, 2);
  saved.last = saved.first; // Freed before the backward.
  // Give it its own bytes so that only the lifetime is wrong.
  saved.offset = plan.arenaBytes;
  plan.arenaBytes += saved.bytes;
  EXPECT_NE(message().find("uses buffer saved of microbatch 2"),
            std::string::npos)
      << message();
}

TEST_F(MemoryPlanBroken, MessageTooLarge) {
  for (Buffer &b : plan.buffers)
    if (b.kind == BufferKind::RecvAct && b.microbatch == 3)
      b.bytes = 100;
  EXPECT_NE(message().find("holds 100 bytes but its message has 4096"),
            std::string::npos)
      << message();
}

TEST_F(MemoryPlanBroken, OutsideTheArena) {
  plan.arenaBytes -= kArenaAlignment;
  EXPECT_NE(message().find("lies outside the arena"), std::string::npos)
      << message();
}

TEST_F(MemoryPlanBroken, MissingMessageBuffer) {
  for (size_t i = 0; i < plan.buffers.size(); ++i)
    if (plan.buffers[i].kind == BufferKind::SendGrad) {
      plan.buffers.erase(plan.buffers.begin() + static_cast<long>(i));
      break;
    }
  EXPECT_NE(message().find("has no buffer for its message"), std::string::npos)
      << message();
}

TEST(MemoryPlan, KindNamesRoundTrip) {
  for (int k = 0; k <= static_cast<int>(BufferKind::Workspace); ++k) {
    auto kind = static_cast<BufferKind>(k);
    EXPECT_EQ(parseBufferKind(bufferKindName(kind)), kind);
  }
  EXPECT_FALSE(parseBufferKind("nope"));
}

} // namespace
