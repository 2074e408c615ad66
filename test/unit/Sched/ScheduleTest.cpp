//===- ScheduleTest.cpp - schedule generation and the deadlock verifier ---===//
//
// Exact programs for a small multimodal pipeline, the warm-up and memory
// rules, frozen stages, every schedule kind verified on random pipelines,
// and the verifier rejecting broken programs.
//
//===----------------------------------------------------------------------===//
#include "mllm/Sched/Generate.h"

#include "llvm/Support/Error.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

using namespace mllm::sched;

namespace {

/// One stage of a test pipeline: its part, whether it trains (weight
/// gradients) and its predecessors.
struct Spec {
  std::string name, part;
  bool isLLM;
  std::vector<int> prev;
  bool trains;
};

/// A pipeline with frozen flags derived as mllmc derives them: a stage
/// computes weight gradients iff it trains, input gradients iff a stage
/// strictly upstream trains, and an edge carries a gradient iff the
/// predecessor has a backward.
PipelineGraph makeGraph(const std::vector<Spec> &specs, int64_t m) {
  PipelineGraph g;
  g.microbatches = m;
  std::vector<bool> trainsAtOrAbove;
  for (size_t i = 0; i < specs.size(); ++i) {
    const Spec &sp = specs[i];
    StageInfo s;
    s.name = sp.name;
    s.part = sp.part;
    s.isLLM = sp.isLLM;
    s.prev = sp.prev;
    s.needsWeightGrad = sp.trains;
    bool upstream = false;
    for (int p : sp.prev) {
      upstream = upstream || trainsAtOrAbove[p];
      g.stages[p].next.push_back(static_cast<int>(i));
    }
    s.needsInputGrad = upstream;
    for (int p : sp.prev)
      s.gradToPrev.push_back(trainsAtOrAbove[p]);
    trainsAtOrAbove.push_back(upstream || sp.trains);
    s.outputBytes = 1000 + static_cast<int64_t>(i);
    s.trainableParams = sp.trains ? 100 : 0;
    s.fwd = 1;
    s.bwdInput = s.needsInputGrad ? 1 : 0;
    s.bwdWeight = s.needsWeightGrad ? 1 : 0;
    g.stages.push_back(s);
  }
  g.stages.back().outputBytes = 0; // The loss.
  return g;
}

/// "F0 sA0>l0 rG1<l1 Bd1 Bw1 AR Opt": kind, microbatch, peer.
std::string compact(const PipelineGraph &g, const Program &p) {
  std::string out;
  for (const Action &a : p.actions) {
    if (!out.empty())
      out += ' ';
    switch (a.kind) {
    case ActionKind::Forward:
      out += "F";
      break;
    case ActionKind::BackwardInput:
      out += "Bd";
      break;
    case ActionKind::BackwardWeight:
      out += "Bw";
      break;
    case ActionKind::SendActivation:
      out += "sA";
      break;
    case ActionKind::RecvActivation:
      out += "rA";
      break;
    case ActionKind::SendGrad:
      out += "sG";
      break;
    case ActionKind::RecvGrad:
      out += "rG";
      break;
    case ActionKind::AllReduceGrads:
      out += "AR";
      break;
    case ActionKind::OptimizerStep:
      out += "Opt";
      break;
    }
    if (a.microbatch >= 0)
      out += std::to_string(a.microbatch);
    if (a.kind == ActionKind::SendActivation || a.kind == ActionKind::SendGrad)
      out += ">" + g.stages[a.peer].name;
    if (a.kind == ActionKind::RecvActivation || a.kind == ActionKind::RecvGrad)
      out += "<" + g.stages[a.peer].name;
  }
  return out;
}

std::string verifyMessage(const PipelineGraph &g,
                          const std::vector<Program> &programs) {
  llvm::Error err = verifySchedule(g, programs);
  return err ? llvm::toString(std::move(err)) : std::string();
}

int count(const Program &p, ActionKind kind) {
  int n = 0;
  for (const Action &a : p.actions)
    n += a.kind == kind;
  return n;
}

/// Forwards before the first backward action.
int64_t forwardsBeforeBackward(const Program &p) {
  int64_t n = 0;
  for (const Action &a : p.actions) {
    if (a.kind == ActionKind::BackwardInput ||
        a.kind == ActionKind::BackwardWeight)
      break;
    n += a.kind == ActionKind::Forward;
  }
  return n;
}

/// SigLIP-like vision (frozen encoder, trainable projector: weight grads
/// only), a frozen audio encoder, and a frozen 2-stage LLM that passes input
/// gradients back to the projector. Vision trains with dp 2.
PipelineGraph twoEncodersTwoLLMStages(int64_t m) {
  PipelineGraph g = makeGraph({{"v0", "vision", false, {}, true},
                               {"a0", "audio", false, {}, false},
                               {"l0", "llm", true, {0, 1}, false},
                               {"l1", "llm", true, {2}, false}},
                              m);
  g.stages[0].dp = 2;
  return g;
}

TEST(Schedule, ExactOrderTwoEncodersTwoLLMStages) {
  PipelineGraph g = twoEncodersTwoLLMStages(4);
  std::vector<Program> p =
      generateSchedule(g, ScheduleKind::MultimodalOneFOneB);
  ASSERT_EQ(p.size(), 4u);
  // Vision: warm-up 2 (stages to the loss), weight gradients only, the
  // gradient all-reduce over dp 2 and the optimizer step at the end.
  EXPECT_EQ(compact(g, p[0]),
            "F0 sA0>l0 F1 sA1>l0 F2 sA2>l0 rG0<l0 Bw0 F3 sA3>l0 rG1<l0 Bw1 "
            "rG2<l0 Bw2 rG3<l0 Bw3 AR Opt");
  // Audio: frozen with nothing trainable upstream: forwards only.
  EXPECT_EQ(compact(g, p[1]), "F0 sA0>l0 F1 sA1>l0 F2 sA2>l0 F3 sA3>l0");
  // LLM stage 0: fan-in in predecessor order, warm-up 1, input gradients
  // back to vision only; frozen, so no Bw, no optimizer. Textbook steady
  // state: receive and run F(j + 1), send its output, then take the
  // gradient of j and run its backward (sends never block, so the forward
  // does not wait for l1's backward).
  EXPECT_EQ(compact(g, p[2]), "rA0<v0 rA0<a0 F0 sA0>l1 "
                              "rA1<v0 rA1<a0 F1 sA1>l1 rG0<l1 Bd0 sG0>v0 "
                              "rA2<v0 rA2<a0 F2 sA2>l1 rG1<l1 Bd1 sG1>v0 "
                              "rA3<v0 rA3<a0 F3 sA3>l1 rG2<l1 Bd2 sG2>v0 "
                              "rG3<l1 Bd3 sG3>v0");
  // LLM stage 1 (the loss): no warm-up; per microbatch receive, F, B, send
  // the gradient back.
  EXPECT_EQ(compact(g, p[3]), "rA0<l0 F0 Bd0 sG0>l0 rA1<l0 F1 Bd1 sG1>l0 "
                              "rA2<l0 F2 Bd2 sG2>l0 rA3<l0 F3 Bd3 sG3>l0");
  EXPECT_EQ(p[0].warmup, 2);
  EXPECT_EQ(p[2].warmup, 1);
  EXPECT_EQ(p[3].warmup, 0);
  EXPECT_EQ(p[0].maxInFlight, 3);
  EXPECT_EQ(p[1].maxInFlight, 1);
  EXPECT_EQ(p[2].maxInFlight, 2);
  EXPECT_EQ(p[3].maxInFlight, 1);
  EXPECT_EQ(verifyMessage(g, p), "");
}

TEST(Schedule, MessageSizes) {
  PipelineGraph g = twoEncodersTwoLLMStages(3);
  g.stages[0].dp = 4;
  g.stages[0].cp = 1;
  std::vector<Program> p =
      generateSchedule(g, ScheduleKind::MultimodalOneFOneB);
  for (const Program &prog : p)
    for (const Action &a : prog.actions) {
      switch (a.kind) {
      case ActionKind::SendActivation:
      case ActionKind::SendGrad:
        // Activations carry the sender's output, gradients the receiver's.
        EXPECT_EQ(
            a.bytes,
            g.stages[a.kind == ActionKind::SendActivation ? prog.stage : a.peer]
                .outputBytes);
        break;
      case ActionKind::AllReduceGrads:
        EXPECT_EQ(prog.stage, 0);
        EXPECT_EQ(a.bytes, 100 * kGradBytesPerParam);
        break;
      default:
        break;
      }
    }
  // A colocated stage whose only some encoders train gets only their
  // slice of the gradient back.
  g.stages[0].outputGradBytes = 7;
  p = generateSchedule(g, ScheduleKind::MultimodalOneFOneB);
  for (const Action &a : p[2].actions)
    if (a.kind == ActionKind::SendGrad)
      EXPECT_EQ(a.bytes, 7);
  EXPECT_EQ(verifyMessage(g, p), "");
}

// Every send/recv carries the tag 2 x mb (+ 1 for gradients) and the
// tensors of its edge: the sender's outputShape (the gradient subset of a
// colocated stage going back), or [bytes] x i8 when the stage has none.
TEST(Schedule, MessageTagsAndShapes) {
  PipelineGraph g = twoEncodersTwoLLMStages(3);
  TensorShape v{{25, 20}, "bf16", 2}; // 1000 bytes.
  TensorShape f{{1001}, "i8", 1};
  g.stages[0].outputShape = {v};
  EXPECT_EQ(formatShape({v, f}), "[25, 20] x bf16 + [1001] x i8");
  EXPECT_EQ(messageBytes({v, f}), 2001);
  EXPECT_EQ(messageTag(ActionKind::SendActivation, 3), 6);
  EXPECT_EQ(messageTag(ActionKind::RecvGrad, 3), 7);
  std::vector<Program> p =
      generateSchedule(g, ScheduleKind::MultimodalOneFOneB);
  int messages = 0;
  for (const Program &prog : p)
    for (const Action &a : prog.actions) {
      bool send = a.kind == ActionKind::SendActivation ||
                  a.kind == ActionKind::SendGrad;
      bool recv = a.kind == ActionKind::RecvActivation ||
                  a.kind == ActionKind::RecvGrad;
      if (!send && !recv) {
        EXPECT_EQ(a.tag, -1);
        EXPECT_TRUE(a.shape.empty());
        continue;
      }
      ++messages;
      EXPECT_EQ(a.tag, messageTag(a.kind, a.microbatch));
      EXPECT_EQ(messageBytes(a.shape), a.bytes);
      bool activation = a.kind == ActionKind::SendActivation ||
                        a.kind == ActionKind::RecvActivation;
      int sender = activation == send ? prog.stage : a.peer;
      if (activation == send ? prog.stage == 0 : a.peer == 0)
        EXPECT_EQ(a.shape, MessageShape{v}) << sender;
      else
        EXPECT_EQ(a.shape, opaqueShape(a.bytes)) << sender;
    }
  EXPECT_GT(messages, 0);
  EXPECT_EQ(verifyMessage(g, p), "");

  // Only the first tensor's gradient comes back.
  TensorShape half{{25, 10}, "bf16", 2};
  g.stages[0].outputGradBytes = half.bytes();
  g.stages[0].outputGradShape = {half};
  p = generateSchedule(g, ScheduleKind::MultimodalOneFOneB);
  for (const Action &a : p[0].actions)
    if (a.kind == ActionKind::RecvGrad)
      EXPECT_EQ(a.shape, MessageShape{half});
  EXPECT_EQ(verifyMessage(g, p), "");

  // The linear baseline's cut after a0 carries both encoders' tensors.
  p = generateSchedule(g, ScheduleKind::LinearOneFOneB);
  for (const Action &a : p[1].actions)
    if (a.kind == ActionKind::SendActivation)
      EXPECT_EQ(formatShape(a.shape), "[25, 20] x bf16 + [1001] x i8");
}

// The stage naming every tool reads: PART_sINDEX, the index after the last
// "_s" of a merged name.
TEST(Schedule, StageNames) {
  EXPECT_EQ(partStageName("llm", 3), "llm_s3");
  EXPECT_EQ(partStageName("vision+audio", 0), "vision+audio_s0");
  EXPECT_EQ(partStageIndex("llm_s3"), 3);
  EXPECT_EQ(partStageIndex("vision+audio_s12"), 12);
  EXPECT_EQ(partStageIndex("vision_s1+llm_s0"), 0);
  EXPECT_EQ(partStageIndex("video_small_s2"), 2);
  for (const char *none : {"llm", "llm_s", "llm_sx", "llm_s1b", "llm_s-1"})
    EXPECT_EQ(partStageIndex(none), std::nullopt) << none;
}

TEST(Schedule, WarmupIsDepthToTheLoss) {
  // Vision: 3 stages, audio: 1, LLM: 4; everything trains.
  std::vector<Spec> specs = {
      {"v0", "vision", false, {}, true},  {"v1", "vision", false, {0}, true},
      {"v2", "vision", false, {1}, true}, {"a0", "audio", false, {}, true},
      {"l0", "llm", true, {2, 3}, true},  {"l1", "llm", true, {4}, true},
      {"l2", "llm", true, {5}, true},     {"l3", "llm", true, {6}, true}};
  std::vector<int64_t> depth = {6, 5, 4, 4, 3, 2, 1, 0};
  PipelineGraph g = makeGraph(specs, 16);
  EXPECT_EQ(stageDepths(g), depth);
  std::vector<Program> p =
      generateSchedule(g, ScheduleKind::MultimodalOneFOneB);
  for (size_t s = 0; s < p.size(); ++s) {
    EXPECT_EQ(p[s].warmup, depth[s]) << g.stages[s].name;
    EXPECT_EQ(p[s].maxInFlight, depth[s] + 1) << g.stages[s].name;
    EXPECT_EQ(forwardsBeforeBackward(p[s]), depth[s] + 1) << g.stages[s].name;
  }
  EXPECT_EQ(verifyMessage(g, p), "");

  // Fewer microbatches than the depth: the warm-up is all of them.
  g.microbatches = 3;
  p = generateSchedule(g, ScheduleKind::MultimodalOneFOneB);
  for (size_t s = 0; s < p.size(); ++s) {
    EXPECT_EQ(p[s].warmup, std::min<int64_t>(depth[s], 3));
    EXPECT_EQ(p[s].maxInFlight, std::min<int64_t>(depth[s] + 1, 3));
    EXPECT_EQ(forwardsBeforeBackward(p[s]), std::min<int64_t>(depth[s] + 1, 3));
  }
  EXPECT_EQ(verifyMessage(g, p), "");

  // The linear baseline: one chain of 8 stages.
  g.microbatches = 16;
  p = generateSchedule(g, ScheduleKind::LinearOneFOneB);
  for (size_t s = 0; s < p.size(); ++s)
    EXPECT_EQ(p[s].warmup, static_cast<int64_t>(p.size() - s - 1));
  EXPECT_EQ(verifyMessage(g, p), "");

  // GPipe: every forward first.
  p = generateSchedule(g, ScheduleKind::GPipe);
  for (const Program &prog : p) {
    EXPECT_EQ(forwardsBeforeBackward(prog), 16);
    EXPECT_EQ(prog.maxInFlight, 16);
  }
  EXPECT_EQ(verifyMessage(g, p), "");
}

TEST(Schedule, FrozenStagesRunNoBackward) {
  PipelineGraph g = twoEncodersTwoLLMStages(6);
  std::vector<Program> p =
      generateSchedule(g, ScheduleKind::MultimodalOneFOneB);
  // Audio: frozen with nothing upstream: no backward, no gradient traffic,
  // no optimizer.
  for (ActionKind k : {ActionKind::BackwardInput, ActionKind::BackwardWeight,
                       ActionKind::RecvGrad, ActionKind::SendGrad,
                       ActionKind::AllReduceGrads, ActionKind::OptimizerStep})
    EXPECT_EQ(count(p[1], k), 0) << toString(k);
  // LLM stage 0 sends gradients to vision only.
  for (const Action &a : p[2].actions)
    if (a.kind == ActionKind::SendGrad)
      EXPECT_EQ(a.peer, 0);
  EXPECT_EQ(count(p[2], ActionKind::SendGrad), 6);
  // Vision: weight gradients, no input gradients (nothing upstream).
  EXPECT_EQ(count(p[0], ActionKind::BackwardWeight), 6);
  EXPECT_EQ(count(p[0], ActionKind::BackwardInput), 0);
  EXPECT_EQ(count(p[0], ActionKind::SendGrad), 0);
  // The frozen LLM: input gradients only, no optimizer.
  for (int s : {2, 3}) {
    EXPECT_EQ(count(p[s], ActionKind::BackwardInput), 6);
    EXPECT_EQ(count(p[s], ActionKind::BackwardWeight), 0);
    EXPECT_EQ(count(p[s], ActionKind::OptimizerStep), 0);
  }

  // Everything frozen: a forward-only pipeline.
  PipelineGraph frozen = makeGraph({{"v0", "vision", false, {}, false},
                                    {"l0", "llm", true, {0}, false},
                                    {"l1", "llm", true, {1}, false}},
                                   5);
  p = generateSchedule(frozen, ScheduleKind::MultimodalOneFOneB);
  for (const Program &prog : p) {
    EXPECT_EQ(count(prog, ActionKind::Forward), 5);
    EXPECT_EQ(count(prog, ActionKind::BackwardInput) +
                  count(prog, ActionKind::BackwardWeight) +
                  count(prog, ActionKind::RecvGrad) +
                  count(prog, ActionKind::SendGrad),
              0);
    EXPECT_EQ(prog.maxInFlight, 1);
  }
  EXPECT_EQ(verifyMessage(frozen, p), "");

  // The Megatron-like baseline runs a full backward everywhere.
  p = generateSchedule(g, ScheduleKind::LinearOneFOneB);
  for (const Program &prog : p) {
    EXPECT_EQ(count(prog, ActionKind::BackwardInput), 6);
    EXPECT_EQ(count(prog, ActionKind::BackwardWeight), 6);
  }
  EXPECT_EQ(verifyMessage(g, p), "");
}

TEST(Schedule, LinearChainCarriesEverythingAcrossEachCut) {
  PipelineGraph g = twoEncodersTwoLLMStages(2);
  std::vector<Program> p = generateSchedule(g, ScheduleKind::LinearOneFOneB);
  // Chain v0 -> a0 -> l0 -> l1; the cut after a0 carries both encoders'
  // outputs.
  auto sent = [&](int s) {
    for (const Action &a : p[s].actions)
      if (a.kind == ActionKind::SendActivation) {
        EXPECT_EQ(a.peer, s + 1);
        return a.bytes;
      }
    return int64_t(-1);
  };
  EXPECT_EQ(sent(0), 1000);
  EXPECT_EQ(sent(1), 1000 + 1001);
  EXPECT_EQ(sent(2), 1002);
  EXPECT_EQ(verifyMessage(g, p), "");
}

TEST(Schedule, MemoryCapReducesInFlight) {
  // Vision (2 stages) -> LLM (3 stages), all trainable, 8 microbatches.
  PipelineGraph g = makeGraph({{"v0", "vision", false, {}, true},
                               {"v1", "vision", false, {0}, true},
                               {"l0", "llm", true, {1}, true},
                               {"l1", "llm", true, {2}, true},
                               {"l2", "llm", true, {3}, true}},
                              8);
  for (StageInfo &s : g.stages) {
    s.staticBytes = 10'000;
    s.activationBytesPerMicrobatch = 1'000;
    s.memoryCapacity = 100'000; // Room for 90 microbatches: no cap.
  }
  std::vector<Program> p =
      generateSchedule(g, ScheduleKind::MultimodalOneFOneB);
  std::vector<int64_t> uncapped = {5, 4, 3, 2, 1};
  for (size_t s = 0; s < p.size(); ++s)
    EXPECT_EQ(p[s].maxInFlight, uncapped[s]);

  // v1 fits 2 microbatches (12.5 KB - 10 KB static): its warm-up drops to 1,
  // and the LLM's first stage cannot run further ahead than v1. The stages
  // after v1 hold their share (WarmupShare): a microbatch's round trip
  // (F + Bd, 2 per stage) from v1 takes 8, from l0 6 (2 x 6/8 -> 2), from
  // l1 4 (2 x 4/8 = 1: at v1's pace l1 needs one).
  g.stages[1].memoryCapacity = 12'500;
  p = generateSchedule(g, ScheduleKind::MultimodalOneFOneB);
  std::vector<int64_t> capped = {5, 2, 2, 1, 1};
  for (size_t s = 0; s < p.size(); ++s) {
    EXPECT_EQ(p[s].maxInFlight, capped[s]) << g.stages[s].name;
    EXPECT_EQ(p[s].warmup, capped[s] - 1) << g.stages[s].name;
  }
  EXPECT_EQ(verifyMessage(g, p), ""); // Also checks the cap is held.

  // No room at all: still one microbatch at a time.
  g.stages[0].memoryCapacity = 5'000;
  p = generateSchedule(g, ScheduleKind::MultimodalOneFOneB);
  for (const Program &prog : p)
    EXPECT_EQ(prog.maxInFlight, 1);
  EXPECT_EQ(verifyMessage(g, p), "");

  // The baselines ignore the cap.
  p = generateSchedule(g, ScheduleKind::LinearOneFOneB);
  EXPECT_EQ(p[0].maxInFlight, 5);
  EXPECT_EQ(verifyMessage(g, p), "");
}

// Below a capped stage the warm-ups step down with the round trip left, not
// all at the cap: neighbours with equal warm-ups run in lockstep.
TEST(Schedule, CappedStageSharesItsCapDownstream) {
  // Nine trainable LLM stages, each F = 1 and Bd = 1 (round trip 2 per
  // stage), 16 microbatches; l0 fits 3 microbatches of the 9 it wants.
  std::vector<Spec> specs = {{"v0", "vision", false, {}, true}};
  for (int s = 0; s < 9; ++s)
    specs.push_back({"l" + std::to_string(s), "llm", true, {s}, true});
  PipelineGraph g = makeGraph(specs, 16);
  for (StageInfo &s : g.stages) {
    s.staticBytes = 10'000;
    s.activationBytesPerMicrobatch = 1'000;
    s.memoryCapacity = 100'000;
  }
  g.stages[1].memoryCapacity = 13'000;
  std::vector<Program> p =
      generateSchedule(g, ScheduleKind::MultimodalOneFOneB);
  // l_s holds ceil(3 x (9 - s) / 9); carried flat it would be 3 down to l6.
  std::vector<int64_t> held = {10, 3, 3, 3, 2, 2, 2, 1, 1, 1};
  for (size_t s = 0; s < p.size(); ++s)
    EXPECT_EQ(p[s].maxInFlight, held[s]) << g.stages[s].name;
  EXPECT_EQ(verifyMessage(g, p), "");
}

// Every schedule kind is checked against the GPU with one rule: static +
// activations x the program's most microbatches in flight. The memory-aware
// multimodal 1F1B fits by construction; the baselines, which ignore the cap,
// may not, and the error names the stage and its figures.
TEST(Schedule, EveryKindIsCheckedAgainstMemory) {
  PipelineGraph g = makeGraph({{"l0", "llm", true, {}, true},
                               {"l1", "llm", true, {0}, true},
                               {"l2", "llm", true, {1}, true}},
                              8);
  for (StageInfo &s : g.stages) {
    s.staticBytes = int64_t(10) << 30;
    s.activationBytesPerMicrobatch = int64_t(2) << 30;
    s.memoryCapacity = int64_t(16) << 30; // Room for 3 microbatches.
  }
  auto check = [&](ScheduleKind kind) {
    llvm::Error e = checkMemory(g, generateSchedule(g, kind), kind);
    return e ? llvm::toString(std::move(e)) : std::string();
  };
  EXPECT_EQ(check(ScheduleKind::MultimodalOneFOneB), "");
  EXPECT_EQ(check(ScheduleKind::LinearOneFOneB), "");
  // GPipe holds all 8: 10 + 2 x 8 = 26 GiB on every stage.
  EXPECT_EQ(check(ScheduleKind::GPipe),
            "stage 'l0' needs 26.00 GiB per GPU under the gpipe schedule but "
            "a GPU has 16.00 GiB: static 10.00 GiB + activations 16.00 GiB "
            "(2.00 GiB x 8 microbatches in flight); 3 of 3 stages do not fit");
  // Room for 2 only: linear 1F1B's first stage wants 3.
  for (StageInfo &s : g.stages)
    s.memoryCapacity = int64_t(14) << 30;
  EXPECT_EQ(check(ScheduleKind::MultimodalOneFOneB), "");
  EXPECT_EQ(check(ScheduleKind::LinearOneFOneB),
            "stage 'l0' needs 16.00 GiB per GPU under the linear_1f1b "
            "schedule but a GPU has 14.00 GiB: static 10.00 GiB + "
            "activations 6.00 GiB (2.00 GiB x 3 microbatches in flight)");
}

TEST(Schedule, AllReduceOnlyWithDataOrContextParallelism) {
  PipelineGraph g = makeGraph(
      {{"v0", "vision", false, {}, true}, {"l0", "llm", true, {0}, true}}, 2);
  g.stages[1].cp = 2;
  std::vector<Program> p =
      generateSchedule(g, ScheduleKind::MultimodalOneFOneB);
  EXPECT_EQ(count(p[0], ActionKind::AllReduceGrads), 0);
  EXPECT_EQ(count(p[0], ActionKind::OptimizerStep), 1);
  EXPECT_EQ(count(p[1], ActionKind::AllReduceGrads), 1);
  EXPECT_EQ(p[1].actions.back().kind, ActionKind::OptimizerStep);
  EXPECT_EQ(verifyMessage(g, p), "");
}

/// Random multimodal pipelines: 1-3 encoders of 1-4 stages, an LLM of 1-4
/// stages, 1-8 microbatches, random trainable stages, sometimes memory caps,
/// sometimes encoders colocated (one chain).
PipelineGraph randomGraph(std::mt19937 &rng, bool independentFlags) {
  auto pick = [&](int lo, int hi) {
    return std::uniform_int_distribution<int>(lo, hi)(rng);
  };
  std::vector<Spec> specs;
  int encoders = pick(1, 3);
  bool colocated = pick(0, 3) == 0;
  std::vector<int> lasts;
  if (colocated) {
    int stages = pick(1, 4);
    for (int s = 0; s < stages; ++s)
      specs.push_back({"e" + std::to_string(s), "enc", false,
                       s ? std::vector<int>{s - 1} : std::vector<int>{},
                       pick(0, 2) == 0});
    lasts.push_back(stages - 1);
  } else {
    for (int e = 0; e < encoders; ++e) {
      int stages = pick(1, 4);
      for (int s = 0; s < stages; ++s) {
        int idx = static_cast<int>(specs.size());
        specs.push_back({"e" + std::to_string(e) + "_" + std::to_string(s),
                         "enc" + std::to_string(e), false,
                         s ? std::vector<int>{idx - 1} : std::vector<int>{},
                         pick(0, 2) == 0});
      }
      lasts.push_back(static_cast<int>(specs.size()) - 1);
    }
  }
  int llm = pick(1, 4);
  for (int s = 0; s < llm; ++s) {
    int idx = static_cast<int>(specs.size());
    specs.push_back({"l" + std::to_string(s), "llm", true,
                     s ? std::vector<int>{idx - 1} : lasts, pick(0, 2) == 0});
  }
  PipelineGraph g = makeGraph(specs, pick(1, 8));
  if (independentFlags)
    for (StageInfo &s : g.stages) {
      s.needsInputGrad = pick(0, 1);
      s.needsWeightGrad = pick(0, 1);
      for (size_t k = 0; k < s.gradToPrev.size(); ++k)
        s.gradToPrev[k] = pick(0, 1);
    }
  for (StageInfo &s : g.stages) {
    s.dp = pick(1, 2);
    if (pick(0, 2) == 0) {
      s.staticBytes = 1000;
      s.activationBytesPerMicrobatch = 100;
      s.memoryCapacity = 1000 + 100 * pick(0, 6);
    }
  }
  return g;
}

TEST(Schedule, RandomPipelinesAreDeadlockFree) {
  std::mt19937 rng(20260424);
  for (int iter = 0; iter < 600; ++iter) {
    PipelineGraph g = randomGraph(rng, /*independentFlags=*/iter % 3 == 2);
    for (ScheduleKind kind :
         {ScheduleKind::MultimodalOneFOneB, ScheduleKind::LinearOneFOneB,
          ScheduleKind::GPipe}) {
      std::vector<Program> p = generateSchedule(g, kind);
      ASSERT_EQ(verifyMessage(g, p), "")
          << "iteration " << iter << ", "
          << mllm::sched_ir::stringifyScheduleKind(kind).str();
      for (size_t s = 0; s < p.size(); ++s) {
        EXPECT_EQ(count(p[s], ActionKind::Forward), g.microbatches);
        const StageInfo &st = g.stages[s];
        bool frozenAware = kind != ScheduleKind::LinearOneFOneB;
        if (frozenAware && iter % 3 != 2) {
          EXPECT_EQ(count(p[s], ActionKind::BackwardWeight),
                    st.needsWeightGrad ? g.microbatches : 0);
          EXPECT_EQ(count(p[s], ActionKind::BackwardInput),
                    st.needsInputGrad ? g.microbatches : 0);
        }
        if (kind == ScheduleKind::MultimodalOneFOneB && st.memoryCapacity > 0 &&
            p[s].warmup < g.microbatches)
          EXPECT_LE(p[s].maxInFlight,
                    std::max<int64_t>(1, (st.memoryCapacity - st.staticBytes) /
                                             st.activationBytesPerMicrobatch));
      }
    }
  }
}

//===----------------------------------------------------------------------===//
// The verifier on broken programs
//===----------------------------------------------------------------------===//

class ScheduleBroken : public ::testing::Test {
protected:
  void SetUp() override {
    g = twoEncodersTwoLLMStages(4);
    p = generateSchedule(g, ScheduleKind::MultimodalOneFOneB);
    ASSERT_EQ(verifyMessage(g, p), "");
  }
  /// Index of the first action of `stage` matching kind and microbatch.
  size_t find(int stage, ActionKind kind, int32_t mb, int peer = -1) {
    std::vector<Action> &acts = p[stage].actions;
    for (size_t i = 0; i < acts.size(); ++i)
      if (acts[i].kind == kind && acts[i].microbatch == mb &&
          (peer < 0 || acts[i].peer == peer))
        return i;
    ADD_FAILURE() << "no such action";
    return 0;
  }
  PipelineGraph g;
  std::vector<Program> p;
};

TEST_F(ScheduleBroken, SwappedReceiveOrder) {
  // l1 receives microbatch 2 before microbatch 1.
  std::vector<Action> &acts = p[3].actions;
  size_t a = find(3, ActionKind::RecvActivation, 1);
  size_t b = find(3, ActionKind::RecvActivation, 2);
  std::swap(acts[a].microbatch, acts[b].microbatch);
  std::string msg = verifyMessage(g, p);
  EXPECT_NE(msg.find("stage 'l1' receives the activation of microbatch 2 as "
                     "message 1 from 'l0', which sends microbatch 1"),
            std::string::npos)
      << msg;
}

TEST_F(ScheduleBroken, SwappedSendAndReceiveDeadlocks) {
  // l0 waits for the gradient of microbatch 0 before sending the
  // activation that l1 needs to compute it: the two receives wait for each
  // other, even though sends never block.
  std::vector<Action> &acts = p[2].actions;
  size_t send = find(2, ActionKind::SendActivation, 0);
  size_t recv = find(2, ActionKind::RecvGrad, 0);
  ASSERT_LT(send, recv);
  Action moved = acts[recv];
  acts.erase(acts.begin() + recv);
  acts.insert(acts.begin() + send, moved);
  std::string msg = verifyMessage(g, p);
  EXPECT_NE(msg.find("deadlock: stage 'l0' is stuck at action 3 "
                     "(recv_grad microbatch 0 from 'l1', 1002 bytes) waiting "
                     "for 'l1'"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("'l1' waits at action 0 (recv_activation microbatch 0 "
                     "from 'l0'"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("a cycle of receives"), std::string::npos) << msg;
}

TEST_F(ScheduleBroken, EarlyReceiveOfAPostedSendIsFine) {
  // Sends never wait for their receiver: l1 may take activation 1 before
  // its backward of microbatch 0, since l0 posts it before it waits for
  // gradient 0.
  std::vector<Action> &acts = p[3].actions;
  size_t recv = find(3, ActionKind::RecvActivation, 1);
  size_t bd = find(3, ActionKind::BackwardInput, 0);
  ASSERT_LT(bd, recv);
  Action moved = acts[recv];
  acts.erase(acts.begin() + recv);
  acts.insert(acts.begin() + bd, moved);
  EXPECT_EQ(verifyMessage(g, p), "");
}

TEST_F(ScheduleBroken, FanInOrderIsFree) {
  // The encoders do not wait for each other: l0 may take their outputs in
  // either order.
  std::vector<Action> &acts = p[2].actions;
  std::swap(acts[find(2, ActionKind::RecvActivation, 0, 0)],
            acts[find(2, ActionKind::RecvActivation, 0, 1)]);
  EXPECT_EQ(verifyMessage(g, p), "");
}

TEST_F(ScheduleBroken, MissingSend) {
  std::vector<Action> &acts = p[1].actions;
  acts.erase(acts.begin() + find(1, ActionKind::SendActivation, 3));
  std::string msg = verifyMessage(g, p);
  EXPECT_NE(msg.find("stage 'l0' waits for the activation of microbatch 3 "
                     "from 'a0', which never sends it"),
            std::string::npos)
      << msg;
}

TEST_F(ScheduleBroken, MissingReceive) {
  std::vector<Action> &acts = p[0].actions;
  acts.erase(acts.begin() + find(0, ActionKind::RecvGrad, 2));
  std::string msg = verifyMessage(g, p);
  EXPECT_NE(msg.find("stage 'l0' sends the gradient of microbatch 2 to 'v0', "
                     "which never receives it (4 sends, 3 receives)"),
            std::string::npos)
      << msg;
}

TEST_F(ScheduleBroken, SizeMismatch) {
  // A receive of another size than its send (its shape of the same size).
  Action &recv = p[2].actions[find(2, ActionKind::RecvActivation, 1, 0)];
  recv.bytes = 4;
  recv.shape = opaqueShape(4);
  std::string msg = verifyMessage(g, p);
  EXPECT_NE(msg.find("stage 'l0' receives 4 bytes for the activation of "
                     "microbatch 1 from 'v0', which sends 1000 bytes"),
            std::string::npos)
      << msg;
}

TEST_F(ScheduleBroken, TagMismatch) {
  p[2].actions[find(2, ActionKind::RecvActivation, 1, /*peer=*/0)].tag = 9;
  std::string msg = verifyMessage(g, p);
  EXPECT_NE(msg.find("stage 'l0' receives the activation of microbatch 1 "
                     "from 'v0' with tag 9, which sends it with tag 2 (tag "
                     "mismatch)"),
            std::string::npos)
      << msg;
}

TEST_F(ScheduleBroken, ShapeMismatch) {
  p[0].actions[find(0, ActionKind::SendActivation, 1)].shape = {
      TensorShape{{500}, "bf16", 2}};
  std::string msg = verifyMessage(g, p);
  EXPECT_NE(msg.find("stage 'l0' receives the activation of microbatch 1 "
                     "from 'v0' as [1000] x i8, which sends it as [500] x "
                     "bf16 (shape mismatch)"),
            std::string::npos)
      << msg;
}

TEST_F(ScheduleBroken, DependencyOrder) {
  // l1 sends the gradient of microbatch 0 before computing it.
  std::vector<Action> &acts = p[3].actions;
  size_t bd = find(3, ActionKind::BackwardInput, 0);
  size_t send = find(3, ActionKind::SendGrad, 0);
  std::swap(acts[bd], acts[send]);
  std::string msg = verifyMessage(g, p);
  EXPECT_NE(msg.find("stage 'l1': action"), std::string::npos) << msg;
  EXPECT_NE(msg.find("comes before the backward_input that computes it"),
            std::string::npos)
      << msg;
}

TEST_F(ScheduleBroken, InFlightCap) {
  p[0].maxInFlight = 2; // The program holds 3.
  std::string msg = verifyMessage(g, p);
  EXPECT_NE(msg.find("stage 'v0': holds 3 microbatches"), std::string::npos)
      << msg;
}

// The checks the sched ops' verifiers make on IR, made on the programs too
// (a schedule generated in memory for --emit=plan never becomes IR).
TEST_F(ScheduleBroken, ActivationFromALaterStage) {
  p[2].actions[find(2, ActionKind::RecvActivation, 1, /*peer=*/0)].peer = 3;
  std::string msg = verifyMessage(g, p);
  EXPECT_NE(msg.find("names 'l1', a later stage; activations go to later "
                     "stages and gradients to earlier ones"),
            std::string::npos)
      << msg;
}

TEST_F(ScheduleBroken, ShapeOfAnotherSize) {
  p[0].actions[find(0, ActionKind::SendActivation, 1)].shape = {
      TensorShape{{100}, "bf16", 2}};
  std::string msg = verifyMessage(g, p);
  EXPECT_NE(msg.find("has a shape of 200 bytes but transfers 1000 bytes"),
            std::string::npos)
      << msg;
}

TEST_F(ScheduleBroken, RepeatedMessage) {
  // v0 sends the activation of microbatch 1 twice and l0 takes both: the
  // links match, but a message is one microbatch.
  std::vector<Action> &out = p[0].actions;
  size_t send = find(0, ActionKind::SendActivation, 1);
  out.insert(out.begin() + send + 1, out[send]);
  std::vector<Action> &in = p[2].actions;
  size_t recv = find(2, ActionKind::RecvActivation, 1, /*peer=*/0);
  in.insert(in.begin() + recv + 1, in[recv]);
  std::string msg = verifyMessage(g, p);
  EXPECT_NE(msg.find("stage 'v0' sends the activation of microbatch 1 to "
                     "'l0' twice"),
            std::string::npos)
      << msg;
}

TEST_F(ScheduleBroken, RepeatedOptimizerStep) {
  ASSERT_EQ(count(p[0], ActionKind::OptimizerStep), 1);
  p[0].actions.push_back({ActionKind::OptimizerStep, -1, -1, 0, -1, {}});
  std::string msg = verifyMessage(g, p);
  EXPECT_NE(msg.find("repeats the optimizer step"), std::string::npos) << msg;
}

TEST_F(ScheduleBroken, AllReduceWithoutWeightGradients) {
  ASSERT_EQ(count(p[2], ActionKind::BackwardWeight), 0);
  p[2].actions.push_back({ActionKind::AllReduceGrads, -1, -1, 8, -1, {}});
  std::string msg = verifyMessage(g, p);
  EXPECT_NE(msg.find("stage 'l0': all-reduces gradients but computes no "
                     "weight gradients"),
            std::string::npos)
      << msg;
}

TEST(Schedule, ToString) {
  EXPECT_STREQ(toString(ActionKind::SendGrad), "send_grad");
  EXPECT_EQ(
      mllm::sched_ir::stringifyScheduleKind(ScheduleKind::MultimodalOneFOneB),
      "multimodal_1f1b");
  PipelineGraph g = twoEncodersTwoLLMStages(1);
  EXPECT_EQ(describeAction(g, {ActionKind::RecvActivation, 0, 1, 1001, 0, {}}),
            "recv_activation microbatch 0 from 'a0', 1001 bytes");
  EXPECT_EQ(describeAction(g, {ActionKind::OptimizerStep, -1, -1, 0, -1, {}}),
            "optimizer_step");
}

} // namespace
