//===- ParamCountTest.cpp - stdlib parameter counts vs published ----------===//
//
// Loads every stdlib file, expands each instance with mllm::model::expand and
// compares the total against the figure its authors published (each cited
// below). Real models must agree within 2%. The synthetic S/M/L models of the
// Cornstarch paper (Table 1) are given there only to one or two significant
// digits, rounded or truncated we cannot tell, so they must agree within one
// unit of the last printed digit (e.g. "3.9b": +-0.1B).
//
// Where a published figure covers more than an `instance` describes, the
// test adds the rest explicitly: the Qwen2-VL patch merger (our projector)
// and the Whisper text decoder.
//
// A second suite runs semantic analysis on every example.
//
//===----------------------------------------------------------------------===//
#include "mllm/Model/Layers.h"
#include "mllm/Sema/Sema.h"
#include "mllm/Sema/Spec.h"
#include "mllm/Support/Diagnostics.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"

#include "gtest/gtest.h"

#include <cmath>
#include <functional>
#include <optional>
#include <string>

using namespace mllm;

namespace {

/// Loads `buffer` (named `name`) and analyzes it. Every error diagnostic
/// fails the calling test and is returned in `errors`.
std::optional<spec::Job>
analyzeBuffer(std::unique_ptr<llvm::MemoryBuffer> buffer, bool requireJob,
              spec::Library *library, std::string &errors) {
  llvm::SourceMgr srcMgr;
  mlir::MLIRContext context;
  mlir::ScopedDiagnosticHandler handler(&context, [&](mlir::Diagnostic &d) {
    if (d.getSeverity() == mlir::DiagnosticSeverity::Error) {
      std::string text;
      llvm::raw_string_ostream os(text);
      os << d.getLocation() << ": " << d.str();
      for (const mlir::Diagnostic &note : d.getNotes())
        os << "\n  note: " << note.str();
      ADD_FAILURE() << text;
      errors += text + "\n";
    }
    return mlir::success();
  });
  Diagnostics diags(srcMgr, context);
  unsigned id = srcMgr.AddNewSourceBuffer(std::move(buffer), llvm::SMLoc());
  LoadOptions options;
  options.stdlibDir = MLLM_STDLIB_DIR;
  std::unique_ptr<Program> program = loadProgram(id, options, diags);
  if (!program) {
    errors += "could not parse the main buffer\n";
    return std::nullopt;
  }
  std::optional<spec::Job> job = analyze(*program, diags, requireJob, library);
  if (diags.numErrors() && errors.empty())
    errors = "analysis reported errors";
  return job;
}

const char *kAllStdlib = R"(
import llama;
import qwen;
import mistral;
import siglip;
import clip;
import internvit;
import qwen2vl;
import pixtral;
import whisper;
import qwen2audio;
import synthetic;
import hardware;
)";

struct Loaded {
  spec::Library library;
  std::string errors;
};

/// Every stdlib file, loaded once.
const Loaded &stdlib() {
  static Loaded loaded = [] {
    Loaded l;
    analyzeBuffer(llvm::MemoryBuffer::getMemBuffer(kAllStdlib, "<test>"),
                  /*requireJob=*/false, &l.library, l.errors);
    return l;
  }();
  return loaded;
}

int64_t projectorParams(spec::ProjectorKind kind, int64_t in, int64_t hidden,
                        int64_t out) {
  spec::Projector p;
  p.kind = kind;
  p.in = in;
  p.hidden = hidden;
  p.out = out;
  return model::totalParams(model::expand(p));
}

/// The Qwen2-VL patch merger: 2x2 tokens concatenated, MLP 4h -> 4h -> out.
/// (Its LayerNorm over h is the encoder's post-norm.)
std::function<int64_t(const spec::ArchConfig &)> merger(int64_t out) {
  return [out](const spec::ArchConfig &c) {
    return projectorParams(spec::ProjectorKind::MLP, 4 * c.hidden, 4 * c.hidden,
                           out);
  };
}

/// A Whisper text decoder as in Hugging Face's WhisperDecoder, same width and
/// depth as the encoder: per layer self- and cross-attention (q, v and out
/// projections biased, k not), a 4h GELU MLP with biases and three
/// LayerNorms; a final LayerNorm, 448 learned positions, and a token
/// embedding shared with the output projection.
std::function<int64_t(const spec::ArchConfig &)> whisperDecoder(int64_t vocab) {
  return [vocab](const spec::ArchConfig &c) {
    int64_t h = c.hidden, f = c.ffn;
    int64_t attention = 4 * h * h + 3 * h;
    int64_t mlp = h * f + f + f * h + h;
    int64_t perLayer = 2 * attention + mlp + 3 * 2 * h;
    return c.layers * perLayer + 2 * h + vocab * h + 448 * h;
  };
}

struct Case {
  std::string instance;
  double published;
  double tolerance; ///< Absolute, in parameters.
  std::function<int64_t(const spec::ArchConfig &)> extra;
};

Case real(std::string name, double published,
          std::function<int64_t(const spec::ArchConfig &)> extra = {}) {
  return {std::move(name), published, 0.02 * published, std::move(extra)};
}

Case synthetic(std::string name, double published, double lastDigit,
               std::function<int64_t(const spec::ArchConfig &)> extra = {}) {
  return {std::move(name), published, lastDigit, std::move(extra)};
}

void PrintTo(const Case &c, std::ostream *os) { *os << c.instance; }

class ParamCount : public ::testing::TestWithParam<Case> {};

TEST_P(ParamCount, MatchesPublished) {
  const Loaded &lib = stdlib();
  ASSERT_TRUE(lib.errors.empty()) << lib.errors;
  const Case &c = GetParam();
  auto it = lib.library.instances.find(c.instance);
  ASSERT_NE(it, lib.library.instances.end())
      << "no instance '" << c.instance << "' in the stdlib";
  int64_t computed = model::totalParams(model::expand(it->second));
  if (c.extra)
    computed += c.extra(it->second);
  double diff = double(computed) - c.published;
  EXPECT_LE(std::fabs(diff), c.tolerance)
      << c.instance << ": computed " << computed << ", published "
      << int64_t(c.published) << " (" << 100.0 * diff / c.published << "%)";
  // Shown with --gtest_also_run_disabled_tests / in the XML output.
  RecordProperty("computed", std::to_string(computed));
  RecordProperty("published", std::to_string(int64_t(c.published)));
}

constexpr double M = 1e6, B = 1e9;

// clang-format off
INSTANTIATE_TEST_SUITE_P(Stdlib, ParamCount, ::testing::Values(
    // Meta Llama 3.2 model card: 1.23B and 3.21B; the 1B safetensors hold
    // exactly 1,235,814,400. Hugging Face model pages: Llama-3.1-8B 8.03B,
    // Llama-3.1-70B 70.6B.
    real("llama3_2_1b", 1235814400),
    real("llama3_2_3b", 3.21 * B),
    real("llama3_1_8b", 8.03 * B),
    real("llama3_1_70b", 70.6 * B),
    // Qwen2.5 model cards ("Number of Parameters").
    real("qwen2_5_0_5b", 0.49 * B),
    real("qwen2_5_1_5b", 1.54 * B),
    real("qwen2_5_3b", 3.09 * B),
    real("qwen2_5_7b", 7.61 * B),
    real("qwen2_5_14b", 14.7 * B),
    real("qwen2_5_32b", 32.5 * B),
    real("qwen2_5_72b", 72.7 * B),
    // Hugging Face model page of Mistral-7B-v0.3: 7.25B.
    real("mistral_7b", 7.25 * B),
    // Alabdulmohsin et al., "Getting ViT in Shape" (SoViT-400m/14): 428M.
    real("siglip_so400m", 428 * M),
    // CLIP ViT-L/14 image tower, 304M (timm/OpenCLIP model tables).
    real("clip_vit_l14_336", 304 * M),
    // InternViT model cards, "Params (M)": 304 and 5540 (V1-5, 45 blocks).
    real("internvit_300m", 304 * M),
    real("internvit_6b", 5540 * M),
    // Qwen2-VL paper, Table 1: 675M vision encoder, merger included
    // (Qwen2-VL-7B: into a 3584-wide LLM).
    real("qwen2_vl_vision", 675 * M, merger(3584)),
    // Mistral's Pixtral 12B announcement: a 400M vision encoder.
    real("pixtral_vision", 400 * M),
    // Whisper paper (Radford et al. 2022), Table 1, whole encoder-decoder:
    // base 74M, small 244M, medium 769M, large 1550M. Vocabulary 51865
    // (large-v3: 51866).
    real("whisper_base", 74 * M, whisperDecoder(51865)),
    real("whisper_small", 244 * M, whisperDecoder(51865)),
    real("whisper_medium", 769 * M, whisperDecoder(51865)),
    real("whisper_large_v3", 1550 * M, whisperDecoder(51866)),
    // Qwen-Audio paper (Chu et al. 2023): its Whisper-large encoder has
    // "approximately 640M" parameters; Qwen2-Audio keeps the shape.
    real("qwen2_audio_encoder", 640 * M),
    // Cornstarch (ICML'26) Table 1. Vision counts include the 2x2 merger into
    // the same-size LLM (2048 / 4096 / 5120 wide).
    synthetic("llm_s", 1 * B, 1 * B),
    synthetic("llm_m", 8 * B, 1 * B),
    synthetic("llm_l", 32 * B, 1 * B),
    synthetic("vision_s", 0.6 * B, 0.1 * B, merger(2048)),
    synthetic("vision_m", 3.9 * B, 0.1 * B, merger(4096)),
    synthetic("vision_l", 11.6 * B, 0.1 * B, merger(5120)),
    synthetic("audio_s", 0.5 * B, 0.1 * B),
    synthetic("audio_m", 3.4 * B, 0.1 * B),
    synthetic("audio_l", 12.4 * B, 0.1 * B)),
    [](const ::testing::TestParamInfo<Case> &info) {
      return info.param.instance;
    });
// clang-format on

TEST(Stdlib, HardwareProfiles) {
  const Loaded &lib = stdlib();
  ASSERT_TRUE(lib.errors.empty()) << lib.errors;
  for (const char *name : {"a40", "a100_80gb", "h100_sxm", "h200"}) {
    auto it = lib.library.hardware.find(name);
    ASSERT_NE(it, lib.library.hardware.end()) << name;
    EXPECT_GT(it->second.peakFlops, 1e14) << name;
    EXPECT_GT(it->second.memory, int64_t(40) * 1000 * 1000 * 1000) << name;
    EXPECT_GT(it->second.memoryBandwidth, 5e11) << name;
    EXPECT_GT(it->second.intraNodeBandwidth, 1e10) << name;
  }
  // The Cornstarch testbed's A40 (datasheet): 149.7 TFLOPS, 48 GB, 696 GB/s,
  // NVLink bridge 112.5 GB/s both ways.
  const spec::Hardware &a40 = lib.library.hardware.at("a40");
  EXPECT_DOUBLE_EQ(a40.peakFlops, 149.7e12);
  EXPECT_EQ(a40.memory, int64_t(48) * 1000 * 1000 * 1000);
  EXPECT_DOUBLE_EQ(a40.memoryBandwidth, 696e9);
  EXPECT_DOUBLE_EQ(a40.intraNodeBandwidth, 56.25e9);
  EXPECT_DOUBLE_EQ(a40.interNodeBandwidth, 200e9 / 8);
}

//===----------------------------------------------------------------------===//
// Examples
//===----------------------------------------------------------------------===//

struct Example {
  const char *file;
  int64_t worldSize;
  int64_t dp;
};

void PrintTo(const Example &e, std::ostream *os) { *os << e.file; }

class Examples : public ::testing::TestWithParam<Example> {};

TEST_P(Examples, Analyzes) {
  const Example &e = GetParam();
  llvm::SmallString<256> path(MLLM_EXAMPLES_DIR);
  llvm::sys::path::append(path, e.file);
  auto buffer = llvm::MemoryBuffer::getFile(path);
  ASSERT_TRUE(bool(buffer)) << "cannot read " << path.str().str();
  std::string errors;
  std::optional<spec::Job> job =
      analyzeBuffer(std::move(*buffer), /*requireJob=*/true, nullptr, errors);
  ASSERT_TRUE(errors.empty()) << errors;
  ASSERT_TRUE(job.has_value());
  EXPECT_EQ(job->cluster.worldSize(), e.worldSize);
  EXPECT_EQ(job->parallel.dp, e.dp);
}

// clang-format off
INSTANTIATE_TEST_SUITE_P(Stdlib, Examples, ::testing::Values(
    Example{"vlm_siglip_llama1b.mllm", 4, 1},
    Example{"audio_lm.mllm", 16, 2},
    Example{"three_modality_colocated.mllm", 24, 4},
    Example{"llama70b_vlm_512gpus.mllm", 512, 4},
    Example{"largest.mllm", 1024, 4}),
    [](const ::testing::TestParamInfo<Example> &info) {
      std::string name = info.param.file;
      name = name.substr(0, name.find('.'));
      return name;
    });
// clang-format on

} // namespace
