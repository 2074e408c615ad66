//===- SemaTest.cpp - semantic analysis of small in-memory programs -------===//
//
// analyze() on programs held in memory: instance inheritance and overrides,
// defaults (kv_heads = heads, head_dim = hidden / heads), token counts
// derived from image sizes and audio durations, packing, projector widths,
// and DP derived from the world size.
//
//===----------------------------------------------------------------------===//
#include "TestUtil.h"

#include "llvm/ADT/StringExtras.h"

#include "gtest/gtest.h"

using namespace mllm;
using mllm::test::Harness;
using mllm::test::join;

namespace {

const char *kDecls = R"(
family fam : decoder {
  vocab = 1000;
  norm = layernorm;
  activation = gelu;
}
instance base : fam {
  layers = 4;
  hidden = 512;
  ffn = 2048;
  heads = 8;
}
instance derived : base {
  layers = 6;
  kv_heads = 2;
  head_dim = 128;
  norm = rmsnorm;
}
instance vit : vision_encoder {
  layers = 2; hidden = 64; ffn = 128; heads = 4;
  patch = 14;
  image = 384;
}
instance aud : audio_encoder {
  layers = 2; hidden = 64; ffn = 128; heads = 4;
}
hardware h {
  peak_bf16 = 312TFLOPS;
  memory = 80GB;
  memory_bandwidth = 2039GB/s;
  intra_node_bandwidth = 300GB/s;
}
)";

TEST(Sema, InheritanceOverridesAndDefaults) {
  Harness h;
  spec::Library lib;
  auto job = h.analyze(kDecls, /*requireJob=*/false, &lib);
  ASSERT_TRUE(job) << join(h.messages);
  EXPECT_TRUE(h.messages.empty()) << join(h.messages);

  ASSERT_TRUE(lib.instances.count("base"));
  const spec::ArchConfig &base = lib.instances.at("base");
  EXPECT_EQ(base.arch, spec::Arch::Decoder);
  EXPECT_EQ(base.layers, 4);
  EXPECT_EQ(base.hidden, 512);
  EXPECT_EQ(base.heads, 8);
  EXPECT_EQ(base.kvHeads, 8) << "kv_heads defaults to heads";
  EXPECT_EQ(base.headDim, 64) << "head_dim defaults to hidden / heads";
  EXPECT_EQ(base.vocab, 1000) << "inherited from the family";
  EXPECT_EQ(base.norm, spec::Norm::LayerNorm);
  EXPECT_EQ(base.activation, spec::Activation::GELU);
  EXPECT_EQ(base.position, spec::Position::RoPE);
  EXPECT_EQ(base.maxPositions, 131072);
  EXPECT_EQ(base.ropeTheta, 10000);
  EXPECT_FALSE(base.tieEmbeddings);

  const spec::ArchConfig &derived = lib.instances.at("derived");
  EXPECT_EQ(derived.layers, 6) << "overridden";
  EXPECT_EQ(derived.hidden, 512) << "inherited from an instance";
  EXPECT_EQ(derived.kvHeads, 2);
  EXPECT_EQ(derived.headDim, 128) << "explicit head_dim wins";
  EXPECT_EQ(derived.norm, spec::Norm::RMSNorm) << "overrides the family";
  EXPECT_EQ(derived.activation, spec::Activation::GELU);
  EXPECT_EQ(derived.vocab, 1000);

  const spec::ArchConfig &vit = lib.instances.at("vit");
  EXPECT_EQ(vit.arch, spec::Arch::VisionEncoder);
  EXPECT_EQ(vit.imageWidth, 384);
  EXPECT_EQ(vit.imageHeight, 384);
  EXPECT_EQ(vit.channels, 3);
  EXPECT_EQ(vit.headDim, 16);
  EXPECT_EQ(vit.norm, spec::Norm::LayerNorm);
  EXPECT_EQ(vit.position, spec::Position::Learned);

  const spec::ArchConfig &aud = lib.instances.at("aud");
  EXPECT_EQ(aud.arch, spec::Arch::AudioEncoder);
  EXPECT_EQ(aud.maxFrames, 1500);
  EXPECT_EQ(aud.downsample, 2);
  EXPECT_DOUBLE_EQ(aud.hopSeconds, 0.01);
  EXPECT_DOUBLE_EQ(aud.windowSeconds(), 30.0);
  EXPECT_EQ(aud.position, spec::Position::Sinusoidal);

  ASSERT_TRUE(lib.hardware.count("h"));
  const spec::Hardware &hw = lib.hardware.at("h");
  EXPECT_DOUBLE_EQ(hw.peakFlops, 312e12);
  EXPECT_EQ(hw.memory, 80000000000);
  EXPECT_DOUBLE_EQ(hw.memoryBandwidth, 2039e9);
  EXPECT_DOUBLE_EQ(hw.interNodeBandwidth, 200e9 / 8) << "default 200Gbps";
}

/// The declarations plus a job; `parallel` and `data` replace the defaults.
std::string program(llvm::StringRef parallel, llvm::StringRef data = "",
                    llvm::StringRef cluster = "nodes = 2; gpus_per_node = 8;") {
  std::string d = data.empty() ? R"(
  text_tokens = 1k;
  packing = 2;
  microbatches = 16;
  vision { placement = at(0.5); }
  audio { duration = 2min; }
)"
                               : data.str();
  return std::string(kDecls) + R"(
model vlm {
  encoder vision : vit {
    frozen = true;
    projector mlp { }
  }
  encoder audio : aud {
    projector linear { merge = 2; }
  }
  llm : derived { layers = 8; }
}
data {)" +
         d + R"(}
cluster { )" +
         cluster.str() + R"( gpu = h; inter_node_bandwidth = 400Gbps; }
parallel {
)" + parallel.str() +
         R"(
}
)";
}

const char *kPlan =
    "vision { tp = 2; } audio { tp = 2; } llm { tp = 2; pp = 2; }";

TEST(Sema, JobModelAndProjectors) {
  Harness h;
  auto job = h.analyze(program(kPlan), /*requireJob=*/true);
  ASSERT_TRUE(job) << join(h.messages);
  const spec::Model &m = job->model;
  EXPECT_EQ(m.name, "vlm");
  ASSERT_EQ(m.encoders.size(), 2u);
  EXPECT_EQ(m.encoders[0].name, "vision");
  EXPECT_TRUE(m.encoders[0].frozen);
  EXPECT_EQ(m.encoders[1].name, "audio");
  EXPECT_FALSE(m.encoders[1].frozen);
  // The use site overrides the instance.
  EXPECT_EQ(m.llm.name, "llm");
  EXPECT_EQ(m.llm.config.layers, 8);
  EXPECT_EQ(m.llm.config.kvHeads, 2);
  EXPECT_EQ(m.llm.config.instance, "derived");

  const spec::Projector &pv = m.encoders[0].projector;
  EXPECT_EQ(pv.kind, spec::ProjectorKind::MLP);
  EXPECT_EQ(pv.in, 64);
  EXPECT_EQ(pv.hidden, 512) << "MLP hidden defaults to the LLM width";
  EXPECT_EQ(pv.out, 512);
  const spec::Projector &pa = m.encoders[1].projector;
  EXPECT_EQ(pa.kind, spec::ProjectorKind::Linear);
  EXPECT_EQ(pa.merge, 2);
  EXPECT_EQ(pa.in, 128) << "encoder width x merge";
  EXPECT_EQ(pa.out, 512);
}

TEST(Sema, DerivedTokenCounts) {
  Harness h;
  auto job = h.analyze(program(kPlan), /*requireJob=*/true);
  ASSERT_TRUE(job) << join(h.messages);
  const spec::Data &d = job->data;
  ASSERT_EQ(d.inputs.size(), 2u);
  // 384 px in 14 px patches: 27 x 27.
  EXPECT_EQ(d.inputs[0].encoder, "vision");
  EXPECT_EQ(d.inputs[0].encoderTokens, 729);
  EXPECT_EQ(d.inputs[0].tokens, 729);
  EXPECT_EQ(d.inputs[0].placement, spec::Placement::At);
  ASSERT_EQ(d.inputs[0].positions.size(), 1u);
  EXPECT_DOUBLE_EQ(d.inputs[0].positions[0], 0.5);
  // 2 min in 30 s windows of 1500 frames, merged in pairs.
  EXPECT_EQ(d.inputs[1].encoder, "audio");
  EXPECT_EQ(d.inputs[1].encoderTokens, 4 * 1500);
  EXPECT_EQ(d.inputs[1].tokens, 3000);
  EXPECT_EQ(d.inputs[1].placement, spec::Placement::Prepend);
  // Two samples packed per sequence.
  EXPECT_EQ(d.textTokens, 1024);
  EXPECT_EQ(d.packing, 2);
  EXPECT_EQ(d.seqLen, 2 * (1024 + 729 + 3000));
  EXPECT_EQ(d.microbatches, 16);
  EXPECT_EQ(d.microbatchSize, 1);
  EXPECT_EQ(d.textMask, spec::Mask::Causal);
}

TEST(Sema, PartialAudioWindowsRoundUpAndImagesOverride) {
  Harness h;
  auto job = h.analyze(program(kPlan, R"(
  text_tokens = 100;
  microbatches = 16;
  vision { image = [448, 224]; items = 2; }
  audio { duration = 31s; }
)"),
                       /*requireJob=*/true);
  ASSERT_TRUE(job) << join(h.messages);
  const spec::Data &d = job->data;
  EXPECT_EQ(d.inputs[0].encoderTokens, 32 * 16) << "448/14 x 224/14";
  EXPECT_EQ(d.inputs[0].items, 2);
  EXPECT_EQ(d.inputs[1].encoderTokens, 2 * 1500) << "31 s needs two windows";
  EXPECT_EQ(d.inputs[1].tokens, 1500);
  EXPECT_EQ(d.seqLen, 100 + 2 * 512 + 1500);
}

TEST(Sema, DataParallelismIsDerived) {
  Harness h;
  auto job = h.analyze(program(kPlan), /*requireJob=*/true);
  ASSERT_TRUE(job) << join(h.messages);
  const spec::Parallel &p = job->parallel;
  // 2 + 2 + 2 x 2 = 8 GPUs per replica on 2 x 8.
  EXPECT_EQ(job->cluster.worldSize(), 16);
  EXPECT_EQ(p.dp, 2);
  EXPECT_TRUE(p.dpDerived);
  EXPECT_EQ(p.layout, spec::Layout::Parallel);
  EXPECT_EQ(p.partition, spec::Partition::FrozenAware);
  ASSERT_EQ(p.parts.size(), 3u);
  EXPECT_EQ(p.parts[0].part, "vision");
  EXPECT_EQ(p.parts[1].part, "audio");
  EXPECT_EQ(p.parts[2].part, "llm");
  EXPECT_EQ(p.parts[2].gpus(), 4);
  // The cluster's override of the profile's inter-node bandwidth.
  EXPECT_DOUBLE_EQ(job->cluster.interNodeBandwidth, 400e9 / 8);
  EXPECT_DOUBLE_EQ(job->cluster.intraNodeBandwidth, 300e9);
}

TEST(Sema, ColocatedEncodersShareGPUs) {
  Harness h;
  // Encoders share 2 GPUs, the LLM takes 4: 6 per replica on 3 x 8.
  auto job =
      h.analyze(program(std::string("layout = encoders_colocated; ") + kPlan,
                        "", "nodes = 3; gpus_per_node = 8;"),
                /*requireJob=*/true);
  ASSERT_TRUE(job) << join(h.messages);
  EXPECT_EQ(job->parallel.layout, spec::Layout::Colocated);
  EXPECT_EQ(job->parallel.dp, 4);
}

TEST(Sema, ExplicitDPAndStages) {
  Harness h;
  auto job = h.analyze(program("dp = 2; vision { tp = 2; } audio { tp = 2; } "
                               "llm { tp = 2; pp = 2; stages = [5, 3]; }"),
                       /*requireJob=*/true);
  ASSERT_TRUE(job) << join(h.messages);
  EXPECT_EQ(job->parallel.dp, 2);
  EXPECT_FALSE(job->parallel.dpDerived);
  // Stages without a policy make the partition explicit.
  EXPECT_EQ(job->parallel.partition, spec::Partition::Explicit);
  EXPECT_EQ(job->parallel.parts[2].stages, (std::vector<int64_t>{5, 3}));
}

TEST(Sema, TrainDefaults) {
  Harness h;
  auto job = h.analyze(program(kPlan), /*requireJob=*/true);
  ASSERT_TRUE(job) << join(h.messages);
  EXPECT_EQ(job->train.steps, 1);
  EXPECT_EQ(job->train.optimizer, spec::Optimizer::AdamW);
  EXPECT_DOUBLE_EQ(job->train.lr, 1e-4);
  EXPECT_EQ(job->train.precision, spec::Precision::BF16);
}

TEST(Sema, WarningsDoNotFailTheJob) {
  Harness h;
  // 4 stages, 2 microbatches: a warning at the data block (column 1).
  std::string text = program("vision { tp = 2; } audio { tp = 2; } "
                             "llm { tp = 1; pp = 4; }",
                             "text_tokens = 1k; microbatches = 2;");
  auto job = h.analyze(text, /*requireJob=*/true);
  ASSERT_TRUE(job) << join(h.messages);
  ASSERT_EQ(h.messages.size(), 1u) << join(h.messages);
  unsigned dataLine =
      1 + llvm::count(
              llvm::StringRef(text).substr(0, text.find("\ndata {") + 1), '\n');
  EXPECT_EQ(h.messages[0],
            std::to_string(dataLine) +
                ":1: warning: 2 microbatches cannot fill the LLM's 4 pipeline "
                "stages; the pipeline will mostly idle");
}

TEST(Sema, ErrorsAreLocatedAndIndependentOnesAllReported) {
  Harness h;
  auto job = h.analyze(R"(instance a : decoder {
  layers = 2; hidden = 64; ffn = 8; vocab = 10;
  heads = 8; kv_heads = 3;
}
instance b : decoder {
  layers = 2; hidden = 64; ffn = 8; vocab = 10; heads = 4;
  norm = batchnorm;
}
)",
                       /*requireJob=*/false);
  EXPECT_FALSE(job);
  ASSERT_EQ(h.messages.size(), 2u) << join(h.messages);
  EXPECT_EQ(h.messages[0],
            "3:25: error: kv_heads 3 does not divide heads 8; grouped-query "
            "attention shares each kv head among a whole number of query "
            "heads");
  EXPECT_EQ(h.messages[1], "7:10: error: 'batchnorm' is not a valid norm; "
                           "expected 'rmsnorm' or 'layernorm'");
}

TEST(Sema, NotesFollowTheirError) {
  Harness h;
  auto job = h.analyze("family f : decoder { }\n"
                       "instance i : decoder { layers = 1; hidden = 8; ffn = 8;"
                       " heads = 1; vocab = 2; }\n"
                       "family f : decoder { }\n",
                       /*requireJob=*/false);
  EXPECT_FALSE(job);
  ASSERT_EQ(h.messages.size(), 2u) << join(h.messages);
  EXPECT_EQ(h.messages[0], "3:8: error: redefinition of 'f'");
  EXPECT_EQ(h.messages[1], "  1:8: note: previous definition is here");
}

} // namespace
