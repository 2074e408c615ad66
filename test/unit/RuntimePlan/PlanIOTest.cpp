//===- PlanIOTest.cpp - the plan reader and writer ------------------------===//
#include "mllm/runtime/PlanIO.h"
#include "mllm/runtime/PlanMemory.h"

#include "gtest/gtest.h"

#include <set>

using namespace mllm;
using namespace mllm::runtime;

namespace {

/// A two-stage pipeline (an encoder stage feeding an LLM stage), one
/// microbatch, written out by hand.
Plan smallPlan() {
  Plan p;
  p.specHash = "abc";
  p.job.spec = "small.mllm";
  p.job.model = "m";
  p.job.worldSize = 2;
  p.job.nodes = 1;
  p.job.gpusPerNode = 2;
  p.job.gpu = "a40";
  p.job.gpuMemoryBytes = 48000000000;
  p.job.peakFlops = 1.497e14;
  p.job.memoryBandwidth = 6.96e11;
  p.job.intraNodeBandwidth = 5.625e10;
  p.job.interNodeBandwidth = 2.5e10;
  p.job.layout = "encoders_parallel";
  p.job.partition = "frozen_aware";
  p.job.cpBalance = "lpt";
  p.data.textTokens = 12;
  p.data.seqLen = 16;
  p.data.inputs.push_back({"vision", 4, 1, "prepend", {}, "bidirectional"});
  PlanPart vision;
  vision.name = "vision";
  vision.instance = "vit";
  vision.modality = "image";
  vision.width = 8;
  vision.blocks = 1;
  vision.frozen = true; // Its programs run forwards only.
  PlanLayerGroup blocks;
  blocks.name = "blocks";
  blocks.kind = "transformer_block";
  blocks.config.hidden = 8;
  blocks.config.ffn = 16;
  blocks.config.heads = blocks.config.kvHeads = 2;
  blocks.config.headDim = 4;
  blocks.config.activation = "gelu";
  blocks.config.ropeTheta = 0.1; // Not a representable binary fraction.
  vision.groups.push_back(blocks);
  PlanPart llm;
  llm.name = "llm";
  llm.isLLM = true;
  llm.instance = "lm";
  llm.width = 8;
  llm.blocks = 1;
  llm.frozen = true;
  llm.groups.push_back(blocks);
  p.parts = {vision, llm};
  PlanStage s0;
  s0.name = "vision_s0";
  s0.part = "vision";
  s0.end = 1;
  s0.fwdMs = 1.0 / 3;
  PlanStage s1 = s0;
  s1.name = "llm_s0";
  s1.part = "llm";
  p.stages = {s0, s1};

  PlanSchedule sch;
  sch.kind = "multimodal_1f1b";
  sched::PipelineGraph &g = sch.graph;
  g.microbatches = 1;
  // The schedule's copies of the job's figures.
  g.gpusPerNode = p.job.gpusPerNode;
  g.peakFlops = p.job.peakFlops;
  g.intraNodeBandwidth = p.job.intraNodeBandwidth;
  g.interNodeBandwidth = p.job.interNodeBandwidth;
  sched::StageInfo a, b;
  a.memoryCapacity = b.memoryCapacity = p.job.gpuMemoryBytes;
  a.name = "vision_s0";
  a.part = "vision";
  a.next = {1};
  a.fwd = 1e-3 / 3;
  sched::TensorShape t;
  t.dims = {4, 8};
  a.outputShape = {t};
  a.outputBytes = 64;
  b.name = "llm_s0";
  b.part = "llm";
  b.isLLM = true;
  b.prev = {0};
  b.gradToPrev = {false};
  b.firstRank = 1;
  g.stages = {a, b};
  using K = sched::ActionKind;
  sched::Program pa, pb;
  pa.stage = 0;
  pa.maxInFlight = 1;
  pa.actions = {{K::Forward, 0, -1, 0, -1, {}},
                {K::SendActivation, 0, 1, 64, 0, {t}}};
  pb.stage = 1;
  pb.maxInFlight = 1;
  pb.actions = {{K::RecvActivation, 0, 0, 64, 0, {t}},
                {K::Forward, 0, -1, 0, -1, {}}};
  sch.programs = {pa, pb};
  p.schedule = sch;
  return p;
}

std::string readError(llvm::StringRef text) {
  auto plan = readPlan(text, "plan.yaml");
  if (plan)
    return "";
  return llvm::toString(plan.takeError());
}

/// `text` with the first occurrence of `from` replaced by `to`, and the
/// hash line dropped (the edit would not match it).
std::string edit(std::string text, llvm::StringRef from, llvm::StringRef to) {
  size_t at = text.find(from.str());
  EXPECT_NE(at, std::string::npos) << from.str();
  if (at != std::string::npos)
    text.replace(at, from.size(), to.str());
  size_t hash = text.find("\nhash:");
  if (hash != std::string::npos)
    text.erase(hash + 1, text.find('\n', hash + 1) - hash);
  return text;
}

TEST(PlanIO, RoundTripIsByteIdentical) {
  std::string first = writePlan(smallPlan());
  auto read = readPlan(first, "plan.yaml");
  ASSERT_TRUE(static_cast<bool>(read)) << llvm::toString(read.takeError());
  EXPECT_EQ(writePlan(*read), first);
  EXPECT_DOUBLE_EQ(read->parts[0].groups[0].config.ropeTheta, 0.1);
  EXPECT_EQ(read->stages[0].fwdMs, 1.0 / 3);
  EXPECT_EQ(read->schedule->graph.stages[0].fwd, 1e-3 / 3);
  EXPECT_EQ(read->schedule->programs[1].actions[0].peer, 0);
  EXPECT_EQ(read->planHash, planContentHash(smallPlan()));
  EXPECT_EQ(read->specHash, "abc");
}

TEST(PlanIO, TheHashFollowsTheContent) {
  Plan p = smallPlan();
  std::string h = planContentHash(p);
  p.train.lr *= 2;
  EXPECT_NE(planContentHash(p), h);
  p.train.lr /= 2;
  p.specHash = "other"; // Not part of the content.
  EXPECT_EQ(planContentHash(p), h);
}

TEST(PlanIO, ErrorsAreLocated) {
  std::string text = writePlan(smallPlan());
  EXPECT_EQ(readError(edit(text, "version: 3", "version: 2")),
            "plan.yaml:2:10: error: plan version 2 is not supported: this "
            "build reads version 3; compile the spec again with this build's "
            "mllmc");
  EXPECT_NE(readError(edit(text, "  world_size: 2\n", ""))
                .find("error: 'job' has no 'world_size'"),
            std::string::npos);
  std::string wrongType = readError(edit(text, "dp: 1\n", "dp: one\n"));
  EXPECT_NE(wrongType.find("plan.yaml:15:7: error: 'dp' must be an integer"),
            std::string::npos)
      << wrongType;
  EXPECT_NE(readError(edit(text, "peer: \"vision_s0\"", "peer: \"nobody\""))
                .find("'nobody' is not a program of the schedule"),
            std::string::npos);
  // A send without its receive.
  std::string unmatched = readError(
      edit(text,
           "- {op: recv_act, mb: 0, peer: \"vision_s0\", tag: 0, shape: "
           "[{dims: [4, 8], dtype: bf16}], bytes: 64}\n",
           ""));
  EXPECT_NE(unmatched.find("the schedule is inconsistent: stage 'vision_s0' "
                           "sends the activation of microbatch 0"),
            std::string::npos)
      << unmatched;
  EXPECT_NE(
      readError(edit(text, "rank_program: [0, 1]", "rank_program: [1, 0]"))
          .find("'rank_program' does not match"),
      std::string::npos);
  EXPECT_NE(readError(edit(text, "replicas: [[1]]", "replicas: [[0]]"))
                .find("the 'replicas' groups do not match"),
            std::string::npos);
  EXPECT_NE(readError(edit(text, "world_size: 2", "world_size: 1"))
                .find("world size 1 is not nodes x gpus_per_node = 2"),
            std::string::npos);
  EXPECT_NE(
      readError(edit(text, "kind: transformer_block", "kind: transformer_blok"))
          .find("unknown layer kind 'transformer_blok'"),
      std::string::npos);
  EXPECT_NE(readError("version: [3"), "");
  EXPECT_NE(readError(std::string(100, '[')).find("nests deeper than 64"),
            std::string::npos);
  // An edit under the hash is caught.
  std::string edited = text;
  edited.replace(edited.find("lr: 0.0001"), 10, "lr: 0.0002");
  EXPECT_NE(readError(edited).find("does not match its recorded hash"),
            std::string::npos);
}

// A hand-edited plan (its hash line dropped, as the reader's message
// suggests) is held to the spec's bounds and rules: values that crashed,
// hung or trained silently wrong are errors at their line.
TEST(PlanIO, HandEditsAreBoundedAndConsistent) {
  std::string text = writePlan(smallPlan());
  auto expectError = [&](llvm::StringRef from, llvm::StringRef to,
                         llvm::StringRef message) {
    std::string error = readError(edit(text, from, to));
    EXPECT_NE(error.find(message.str()), std::string::npos)
        << from.str() << " -> " << to.str() << ": " << error;
  };
  expectError("lr: 0.0001", "lr: -0.0001", "'lr' must be a finite number > 0");
  expectError("weight_decay: 0.0", "weight_decay: -5.0",
              "'weight_decay' must be a finite number >= 0");
  // yaml-cpp keeps the first of two copies of a key: the second was ignored.
  expectError("lr: 0.0001", "lr: 0.0001\n  lr: 100.0",
              "error: a second 'lr' in 'train'");
  expectError("ffn: 16", "ffn: 4611686018427387904",
              "'ffn' must be in [0, 2147483648]");
  expectError("rope_theta: 0.1", "rope_theta: inf",
              "'rope_theta' must be a finite number, at least 0");
  expectError("rope_theta: 0.1", "rope_theta: -0.1",
              "'rope_theta' must be a finite number, at least 0");
  expectError("rope_theta: 0.1", "rope_theta: 0.1, hop: 5",
              "'hop' must be between 0.0001 and 1");
  expectError("hidden: 8,", "hidden: 100000,",
              "group 'blocks' has hidden 100000 but its part 'vision' is 8 "
              "wide");
  expectError("count: 1", "count: 4611686018427387904",
              "'count' may be at most 4096");
  expectError("microbatch_size: 1", "microbatch_size: 9223372036854775807",
              "'microbatch_size' may be at most 65536");
  expectError("seq_len: 16", "seq_len: 1099511627777",
              "'seq_len' may be at most 1099511627776");
  std::string twice = text;
  size_t group = twice.find("      - {name: \"blocks\"");
  ASSERT_NE(group, std::string::npos);
  size_t end = twice.find('\n', group);
  twice.insert(end + 1, twice.substr(group, end + 1 - group));
  EXPECT_NE(readError(edit(twice, "version: 3", "version: 3"))
                .find("a second group named 'blocks'"),
            std::string::npos);
}

// A CP assignment's token weight (what its balancer weighed a token in
// tiles) survives the round trip, is left out at 0, and is bounded.
TEST(PlanIO, CPTokenWeight) {
  Plan p = smallPlan();
  PlanCPAssignment a;
  a.part = "vision";
  a.cp = 2;
  a.policy = "lpt";
  a.tokens = 16;
  a.block = 8;
  a.keyTile = 8;
  a.tokenWeight = 0.375;
  a.ranks = {{{0, 8}}, {{8, 16}}};
  a.workload = {1, 2};
  a.imbalance = 1.3333;
  p.cpAssignments = {a};
  std::string text = writePlan(p);
  EXPECT_NE(text.find("token_weight: 0.375"), std::string::npos) << text;
  auto read = readPlan(text, "plan.yaml");
  ASSERT_TRUE(static_cast<bool>(read)) << llvm::toString(read.takeError());
  ASSERT_EQ(read->cpAssignments.size(), 1u);
  EXPECT_EQ(read->cpAssignments[0].tokenWeight, 0.375);
  EXPECT_EQ(writePlan(*read), text);
  EXPECT_NE(readError(edit(text, "token_weight: 0.375", "token_weight: -1"))
                .find("'token_weight' must be a finite number >= 0"),
            std::string::npos);
  EXPECT_NE(readError(edit(text, "token_weight: 0.375", "token_weight: 1e9"))
                .find("'token_weight' must be at most"),
            std::string::npos);
  p.cpAssignments[0].tokenWeight = 0;
  EXPECT_EQ(writePlan(p).find("token_weight"), std::string::npos);
}

// Values a plan keeps twice, which different tools read from different
// copies: an edit of one copy was simulated by one tool and run by another.
TEST(PlanIO, CopiesOfAValueAgree) {
  std::string text = writePlan(smallPlan());
  std::string capacity =
      readError(edit(text, "capacity: 48000000000", "capacity: 3000000"));
  EXPECT_NE(capacity.find("program 'vision_s0' has a capacity of 3000000 "
                          "bytes but the job's GPUs have 48000000000 "
                          "('gpu_memory_bytes'): the plan keeps both copies"),
            std::string::npos)
      << capacity;
  std::string memory = readError(
      edit(text, "gpu_memory_bytes: 48000000000", "gpu_memory_bytes: 3000000"));
  EXPECT_NE(memory.find("has a capacity of 48000000000 bytes but the job's "
                        "GPUs have 3000000"),
            std::string::npos)
      << memory;
  size_t schedule = text.find("\nschedule:");
  ASSERT_NE(schedule, std::string::npos);
  std::string flops = text;
  size_t peak = flops.find("peak_flops: ", schedule);
  ASSERT_NE(peak, std::string::npos);
  flops.replace(peak, 12, "peak_flops: 1");
  std::string peakError = readError(edit(flops, "version: 3", "version: 3"));
  EXPECT_NE(peakError.find("the schedule's 'peak_flops' is "),
            std::string::npos)
      << peakError;
  EXPECT_NE(peakError.find("but the job's is 149700000000000"),
            std::string::npos)
      << peakError;
  // A part's blocks: the stages cut it by the count its groups give.
  std::string blocks = readError(edit(text, "count: 1", "count: 3"));
  EXPECT_NE(blocks.find("part 'vision' has 3 blocks in its groups but "
                        "'blocks' is 1"),
            std::string::npos)
      << blocks;
  // A part unfrozen by hand whose groups still compute no weight gradient
  // trained nothing.
  std::string unfrozen = readError(edit(text, "frozen: true", "frozen: false"));
  EXPECT_NE(unfrozen.find("'vision' is not frozen, but none of its groups "
                          "computes weight gradients"),
            std::string::npos)
      << unfrozen;
}

TEST(PlanIO, ArenasOnEveryProgramOrNone) {
  Plan p = smallPlan();
  recordArenas(p);
  ASSERT_EQ(p.schedule->arenaBytes.size(), 2u);
  // The programs' messages (64 bytes each, 64-byte aligned).
  EXPECT_EQ(p.schedule->arenaBytes[0], programMemoryPlan(p, 0).arenaBytes);
  EXPECT_EQ(p.schedule->arenaBytes[0], 64);
  std::string text = writePlan(p);
  EXPECT_NE(text.find("arena_bytes: 64"), std::string::npos);
  auto read = readPlan(text, "plan.yaml");
  ASSERT_TRUE(static_cast<bool>(read)) << llvm::toString(read.takeError());
  EXPECT_EQ(read->schedule->arenaBytes, p.schedule->arenaBytes);
  EXPECT_EQ(writePlan(*read), text);
  // Without arenas the key is absent; a plan with some is refused.
  EXPECT_EQ(writePlan(smallPlan()).find("arena_bytes"), std::string::npos);
  std::string some = readError(edit(text, "      arena_bytes: 64\n", ""));
  EXPECT_NE(some.find("program 'vision_s0' has no 'arena_bytes' but others do"),
            std::string::npos)
      << some;
  EXPECT_NE(readError(edit(text, "arena_bytes: 64", "arena_bytes: -1"))
                .find("'arena_bytes' must be at least 0"),
            std::string::npos);
}

TEST(PlanIO, SequenceSpecFollowsTheParts) {
  auto spec = sequenceSpec(smallPlan());
  ASSERT_TRUE(static_cast<bool>(spec));
  EXPECT_EQ(spec->textTokens, 12);
  ASSERT_EQ(spec->modalities.size(), 1u);
  EXPECT_EQ(spec->modalities[0].tokensPerItem, 4);
  EXPECT_EQ(kernels::sequenceLength(*spec), 16);
}

TEST(LayerConfig, KeysAreUniqueAndTyped) {
  std::set<std::string> names;
  for (const LayerConfigKey &k : layerConfigKeys()) {
    EXPECT_TRUE(names.insert(k.name).second) << k.name;
    EXPECT_EQ(findLayerConfigKey(k.name), &k);
  }
  for (llvm::StringRef kind : layerKindNames())
    for (llvm::StringRef key : requiredLayerConfigKeys(kind)) {
      const LayerConfigKey *k = findLayerConfigKey(key);
      ASSERT_NE(k, nullptr) << key.str();
      EXPECT_EQ(k->type, LayerConfigKey::Int);
    }
  EXPECT_TRUE(requiredLayerConfigKeys("no_such_kind").empty());
}

} // namespace
