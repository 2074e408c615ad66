//===- ShardTest.cpp - TP shards: initial values, refusals, comm errors ---===//
//
// A shard's initParam values are exactly the full parameter's at the
// shard's indices (so a TP run starts from the one-process run's weights);
// the shard runs place a gated w_in's [gate | up] halves; what does not
// divide over the TP group is refused with the reason; and a collective
// that fails inside a layer comes back through takeCommError instead of a
// hang.
//
//===----------------------------------------------------------------------===//

#include "ParallelHarness.h"

#include "mllm/kernels/cpu/Threads.h"

#include "gtest/gtest.h"

#include <cstring>

using namespace mllm::runtime;
using namespace mllm::runtime::cpu;
using namespace mllm::runtime::cpu::test;
using namespace std::chrono_literals;

namespace {

LayerConfig gatedGqaBlock() {
  LayerConfig c;
  c.hidden = 16;
  c.ffn = 24;
  c.heads = 4;
  c.kvHeads = 2;
  c.headDim = 4;
  c.activation = "swiglu";
  c.gated = true;
  c.qkvBias = c.bias = true;
  c.position = "rope";
  c.ropeTheta = 10000;
  return c;
}

TEST(ShardInit, ShardValuesAreTheFullParametersSlice) {
  LayerConfig embed;
  embed.hidden = 16;
  embed.vocab = 23;
  embed.position = "learned";
  embed.positions = 9;
  LayerConfig conformer = gatedGqaBlock();
  conformer.activation = "gelu";
  conformer.gated = false;
  conformer.position = "alibi";
  conformer.convKernel = 3;
  const std::pair<const char *, LayerConfig> kinds[] = {
      {"transformer_block", gatedGqaBlock()},
      {"conformer_block", conformer},
      {"token_embedding", embed},
      {"lm_head", embed}};
  for (const auto &[kind, config] : kinds) {
    PartKind part = llvm::StringRef(kind) == "conformer_block"
                        ? PartKind::Encoder
                        : PartKind::LLM;
    auto whole = makeLayer<float>(kind, config, part, true);
    ASSERT_TRUE(static_cast<bool>(whole)) << llvm::toString(whole.takeError());
    std::map<std::string, Param<float> *> full;
    for (Param<float> *p : (*whole)->params()) {
      initParam(*p, "llm.blocks.3." + p->name, 2026);
      full[p->name] = p;
    }
    for (int tp : {2, 3}) {
      if (tp == 3 && llvm::StringRef(kind).ends_with("block"))
        continue; // 3 divides neither the heads nor the kv heads
      auto world = makeLocalWorld(tp, 1s);
      for (int r = 0; r < tp; ++r) {
        auto group = world[r]->group(iota(tp));
        ASSERT_TRUE(static_cast<bool>(group));
        auto shard = makeLayer<float>(kind, config, part, true,
                                      TensorShard{r, tp, group->get()});
        ASSERT_TRUE(static_cast<bool>(shard))
            << llvm::toString(shard.takeError());
        int split = 0;
        for (Param<float> *p : (*shard)->params()) {
          initParam(*p, "llm.blocks.3." + p->name, 2026);
          const Param<float> &f = *full.at(p->name);
          ASSERT_EQ(fullShape(p->shard, p->value.shape), f.value.shape);
          int64_t covered = 0;
          for (const ShardRun &run : shardRuns(p->shard, p->value.shape)) {
            EXPECT_EQ(std::memcmp(p->value.ptr() + run.local,
                                  f.value.ptr() + run.full,
                                  run.length * sizeof(float)),
                      0)
                << kind << " " << p->name << " tp " << tp << " rank " << r;
            covered += run.length;
          }
          EXPECT_EQ(covered, p->value.numel()) << p->name;
          split += p->shard.dim >= 0;
        }
        EXPECT_GT(split, 0) << kind << ": nothing split";
      }
    }
  }
}

TEST(ShardInit, GatedInputRowsTakeASliceOfEachHalf) {
  // w_in [2 ffn, hidden] = [gate | up]: rank 1 of 2 holds gate rows
  // [12, 24) and up rows [36, 48) of ffn 24.
  auto world = makeLocalWorld(2, 1s);
  auto group = world[1]->group({0, 1});
  ASSERT_TRUE(static_cast<bool>(group));
  auto shard =
      makeLayer<float>("transformer_block", gatedGqaBlock(), PartKind::LLM,
                       true, TensorShard{1, 2, group->get()});
  ASSERT_TRUE(static_cast<bool>(shard));
  for (Param<float> *p : (*shard)->params()) {
    if (p->name != "ffn.w_in")
      continue;
    EXPECT_EQ(p->value.shape, (std::vector<int64_t>{24, 16}));
    std::vector<ShardRun> runs = shardRuns(p->shard, p->value.shape);
    ASSERT_EQ(runs.size(), 2u);
    EXPECT_EQ(runs[0].local, 0);
    EXPECT_EQ(runs[0].full, 12 * 16);
    EXPECT_EQ(runs[0].length, 12 * 16);
    EXPECT_EQ(runs[1].local, 12 * 16);
    EXPECT_EQ(runs[1].full, 36 * 16);
    return;
  }
  FAIL() << "no ffn.w_in";
}

TEST(ShardCheck, RefusesWhatDoesNotDivide) {
  auto world = makeLocalWorld(4, 1s);
  auto four = world[0]->group(iota(4));
  auto two = world[0]->group({0, 1});
  ASSERT_TRUE(four && two);
  auto check = [&](const char *kind, LayerConfig c, TensorShard tp) {
    std::string why = checkLayer(kind, c, PartKind::LLM, tp);
    auto made = makeLayer<float>(kind, c, PartKind::LLM, true, tp);
    EXPECT_EQ(made ? std::string() : llvm::toString(made.takeError()), why);
    return why;
  };
  TensorShard tp4{0, 4, four->get()};
  LayerConfig block = gatedGqaBlock();
  EXPECT_EQ(check("transformer_block", block, tp4),
            "transformer_block: tp 4 does not divide kv_heads 2 (tensor "
            "parallelism splits them evenly)");
  block.heads = 6;
  block.kvHeads = 6;
  EXPECT_EQ(check("transformer_block", block, tp4),
            "transformer_block: tp 4 does not divide heads 6 (tensor "
            "parallelism splits them evenly)");
  block.heads = block.kvHeads = 4;
  block.ffn = 30;
  EXPECT_EQ(check("transformer_block", block, tp4),
            "transformer_block: tp 4 does not divide ffn 30 (tensor "
            "parallelism splits them evenly)");
  LayerConfig head;
  head.hidden = 16;
  head.vocab = 3;
  EXPECT_EQ(check("lm_head", head, tp4),
            "lm_head: vocab 3 is smaller than tp 4");
  EXPECT_EQ(check("lm_head", head, TensorShard{0, 2, nullptr}),
            "lm_head: a TP shard (tp 2) needs its group");
  EXPECT_EQ(check("lm_head", head, TensorShard{1, 2, two->get()}),
            "lm_head: the TP group has rank 0 of 2, the shard says rank 1 "
            "of 2");
  EXPECT_EQ(check("lm_head", head, TensorShard{2, 2, two->get()}),
            "lm_head: TP rank 2 of a group of 2");
  // Layers that do not split accept any TP group (they run whole).
  LayerConfig mlp;
  mlp.in = 7;
  mlp.hidden = 5;
  mlp.out = 3;
  mlp.activation = "gelu";
  EXPECT_EQ(check("mlp", mlp, tp4), "");
}

TEST(ShardComm, AFailedCollectiveIsReportedNotHung) {
  // Rank 1 exits without running its shard; rank 0's forward and backward
  // return (their outputs meaningless) and takeCommError names the call.
  std::string error, second;
  double seconds = 0;
  llvm::Error e = runLocalWorld(2, 30s, [&](Comm &comm) -> llvm::Error {
    mllm::kernels::cpu::setNumThreads(1);
    if (comm.worldRank() == 1)
      return llvm::Error::success();
    auto group = comm.group({0, 1});
    if (!group)
      return group.takeError();
    LayerCase c;
    for (LayerCase &lc : layerCases())
      if (lc.name == "block_rms_swiglu_gqa_rope_packed")
        c = lc;
    auto layer = makeLayer<float>(c.kind, c.config, c.part, true,
                                  TensorShard{0, 2, group->get()});
    if (!layer)
      return layer.takeError();
    TestRng rng(3);
    CaseData<float> d;
    makeCaseData(c, **layer, rng, d);
    auto start = std::chrono::steady_clock::now();
    Tensor<float> out, dIn;
    auto state = (*layer)->forward(d.batch, d.in, out);
    (*layer)->backwardInput(d.batch, *state, d.dOut, dIn);
    (*layer)->backwardWeight(d.batch, *state, d.dOut);
    seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    error = llvm::toString((*layer)->takeCommError());
    second = llvm::toString((*layer)->takeCommError());
    return llvm::Error::success();
  });
  ASSERT_FALSE(e) << llvm::toString(std::move(e));
  EXPECT_NE(error.find("transformer_block: TP all-reduce of the attention "
                       "output: allReduceSum(float x 384) on group [0, 1]"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("world rank [1] exited before joining"),
            std::string::npos)
      << error;
  EXPECT_EQ(second, ""); // taken once
  EXPECT_LT(seconds, 10.0) << "a later collective waited";
}

} // namespace
