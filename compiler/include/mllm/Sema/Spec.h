//===- Spec.h - a checked, fully resolved .mllm job -------------*- C++ -*-===//
//
// What semantic analysis produces: every default applied, every unit
// converted (bytes, bytes/s, FLOP/s, seconds), every name resolved, every
// derived quantity (token counts, sequence length, DP degree) computed.
// MLIRGen turns it into the `mllm` dialect; the driver's summary prints it.
// Source positions stay attached so later checks can point at the spec.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_SEMA_SPEC_H
#define MLLM_SEMA_SPEC_H

#include "mllm/Dialect/MLLM/IR/MLLMEnums.h"

#include "llvm/Support/SMLoc.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mllm::spec {

enum class Arch { Decoder, VisionEncoder, AudioEncoder };
enum class Norm { RMSNorm, LayerNorm };
enum class Activation { SwiGLU, GeGLU, GELU, ReLU, SiLU };
enum class Position { RoPE, Learned, Sinusoidal, ALiBi, None };
enum class Block { Transformer, Conformer };
enum class Recompute { None, Full, Selective };
enum class ProjectorKind { Linear, MLP };
enum class Placement { Prepend, Append, At };
enum class Mask { Causal, Bidirectional, PrefixLM };
// The job-wide policies and training settings are the mllm dialect's enums
// (one definition and one spelling for the language, the IR and the plan).
using Layout = mllm::EncoderLayout;
using Partition = mllm::PartitionPolicy;
using CPBalance = mllm::CPBalance;
using Optimizer = mllm::Optimizer;
using Precision = mllm::Precision;

const char *toString(Arch);
const char *toString(Norm);
const char *toString(Activation);
const char *toString(Position);
const char *toString(Recompute);

/// Hyperparameters of one network (an `instance`, with any overrides made
/// where the model uses it).
struct ArchConfig {
  Arch arch = Arch::Decoder;
  std::string instance; ///< Name of the instance it came from.
  int64_t layers = 0, hidden = 0, ffn = 0, heads = 0, kvHeads = 0, headDim = 0;
  Norm norm = Norm::RMSNorm;
  Activation activation = Activation::SwiGLU;
  Position position = Position::RoPE;
  bool qkvBias = false; ///< Biases on the q/k/v projections.
  bool bias = false;    ///< Biases on the other linear layers.
  // Decoder.
  int64_t vocab = 0;
  int64_t maxPositions = 0;
  double ropeTheta = 0;
  bool tieEmbeddings = false;
  // Vision encoder.
  int64_t patch = 0, imageWidth = 0, imageHeight = 0, channels = 0;
  int64_t temporalPatch = 1;
  bool classToken = false, poolingHead = false;
  // Audio encoder.
  int64_t melBins = 0, maxFrames = 0, downsample = 1, convKernel = 0;
  double hopSeconds = 0;
  Block block = Block::Transformer;

  bool gated() const {
    return activation == Activation::SwiGLU || activation == Activation::GeGLU;
  }
  /// Seconds of audio one encoder window covers (Whisper: 30 s).
  double windowSeconds() const { return maxFrames * downsample * hopSeconds; }
};

struct Projector {
  ProjectorKind kind = ProjectorKind::MLP;
  int64_t in = 0, hidden = 0, out = 0;
  int64_t merge = 1; ///< Encoder tokens concatenated into one LLM token.
  Activation activation = Activation::GELU;
  bool frozen = false;
  llvm::SMRange loc;
};

struct Encoder {
  std::string name; ///< Also the modality key used by `data` and `parallel`.
  ArchConfig config;
  bool frozen = false;
  Recompute recompute = Recompute::None;
  Projector projector;
  llvm::SMRange loc;
};

struct LLM {
  std::string name;
  ArchConfig config;
  bool frozen = false;
  Recompute recompute = Recompute::None;
  llvm::SMRange loc;
};

struct Model {
  std::string name;
  std::vector<Encoder> encoders; ///< In declaration order (= modality bits).
  LLM llm;
  llvm::SMRange loc;
};

struct ModalityInput {
  std::string encoder;
  int64_t encoderTokens = 0; ///< Per item, as the encoder sees them.
  int64_t tokens = 0;        ///< Per item, as the LLM sees them.
  int64_t items = 1;
  Placement placement = Placement::Prepend;
  std::vector<double> positions;
  Mask mask = Mask::Bidirectional;
  llvm::SMRange loc;
};

struct Data {
  int64_t textTokens = 0;
  int64_t packing = 1;
  int64_t microbatchSize = 1;
  int64_t microbatches = 1;
  Mask textMask = Mask::Causal;
  std::vector<ModalityInput> inputs; ///< One per encoder, model order.
  int64_t seqLen = 0;                ///< LLM tokens per sequence.
  llvm::SMRange loc;
};

struct Hardware {
  std::string name;
  double peakFlops = 0;       ///< Dense bf16, FLOP/s.
  int64_t memory = 0;         ///< Bytes.
  double memoryBandwidth = 0; ///< Bytes/s.
  double intraNodeBandwidth = 0;
  double interNodeBandwidth = 0;
};

struct Cluster {
  int64_t nodes = 0, gpusPerNode = 0;
  Hardware gpu;
  double intraNodeBandwidth = 0, interNodeBandwidth = 0; ///< Bytes/s.
  llvm::SMRange loc;
  int64_t worldSize() const { return nodes * gpusPerNode; }
};

struct PartParallel {
  std::string part;
  /// pp 0 means `pp = auto`: the partitioner chooses the stage count.
  int64_t tp = 1, pp = 1, cp = 1;
  std::vector<int64_t> stages; ///< Explicit layers per stage, or empty.
  llvm::SMRange loc;
  bool autoStages() const { return pp == 0; }
  /// GPUs per replica; for `pp = auto`, those of a single stage.
  int64_t gpus() const { return tp * (autoStages() ? 1 : pp) * cp; }
};

struct Parallel {
  int64_t dp = 1;
  bool dpDerived = true;
  Layout layout = Layout::Parallel;
  Partition partition = Partition::FrozenAware;
  CPBalance cpBalance = CPBalance::LPT;
  std::vector<PartParallel> parts; ///< Encoders in model order, then LLM.
  llvm::SMRange loc;
};

struct Train {
  int64_t steps = 1;
  Optimizer optimizer = Optimizer::AdamW;
  double lr = 1e-4, weightDecay = 0.0;
  Precision precision = Precision::BF16;
  int64_t seed = 0;
  llvm::SMRange loc;
};

/// Every instance and hardware profile of a program, resolved.
struct Library {
  std::map<std::string, ArchConfig> instances;
  std::map<std::string, Hardware> hardware;
};

struct Job {
  std::string file;
  Model model;
  Data data;
  Cluster cluster;
  Parallel parallel;
  Train train;
};

} // namespace mllm::spec

#endif // MLLM_SEMA_SPEC_H
