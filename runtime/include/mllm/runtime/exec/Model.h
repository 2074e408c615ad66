//===- Model.h - the model of a plan on the CPU backend ---------*- C++ -*-===//
//
// Builds, from a plan alone, every layer of every part with its parameters
// (named `PART.GROUP[.INDEX].PARAM`, deterministic initialisation from the
// seed), the chains the layers run in, and the geometry of a microbatch (the
// LLM sequence's layout and mask, every encoder's items). What the CPU
// backend cannot run is refused here, before anything runs, with the name
// of the layer group and the reason.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_EXEC_MODEL_H
#define MLLM_RUNTIME_EXEC_MODEL_H

#include "mllm/runtime/exec/Chain.h"

#include "mllm/kernels/SequenceLayout.h"

#include "llvm/Support/Error.h"

#include <functional>
#include <map>

namespace mllm::runtime::exec {

/// Why the CPU backend refuses a plan, and the part it concerns (empty when
/// it concerns the whole plan; kDataBlock: the data layout), so a tool can
/// point at the spec.
class RefusalError : public llvm::ErrorInfo<RefusalError> {
public:
  static char ID;
  RefusalError(std::string part, std::string message)
      : part(std::move(part)), message(std::move(message)) {}
  void log(llvm::raw_ostream &os) const override { os << message; }
  std::error_code convertToErrorCode() const override {
    return llvm::inconvertibleErrorCode();
  }
  std::string part, message;
  /// RefusalError::part of a refusal of the data layout (no part's name: it
  /// is no identifier).
  static constexpr const char *kDataBlock = "@data";
};

/// What one microbatch is to an encoder.
struct EncoderGeometry {
  std::string name;
  int64_t itemsPerSample = 0; ///< Items in one sample (the data layout).
  int64_t items = 0;          ///< Items per microbatch.
  /// Sequences the encoder's layers see per item (audio: 30 s windows).
  int64_t windows = 1;
  /// Floats of media per sequence the input layer reads.
  int64_t mediaPerSequence = 0;
  /// LLM tokens each item becomes.
  int64_t llmTokensPerItem = 0;
};

/// A named parameter of the model.
struct NamedParam {
  std::string name;
  cpu::Param<float> *param;
};

class Model {
public:
  /// Which partition units of which part this process runs (a rank of a
  /// parallel run: its stage's); null: all.
  using Keep = std::function<bool(llvm::StringRef part, int64_t unit)>;

  /// How a rank of a parallel run splits the layers it runs.
  struct Sharding {
    /// Per part (by name), this rank's TP shard; parts not named are whole.
    std::map<std::string, cpu::TensorShard> tp;
    /// The LLM's context parallelism: the CP group and every CP rank's
    /// tokens of a sequence (no group: none).
    cpu::ContextParallel cp;
  };

  /// The model of `plan`, parameters initialised from `seed`. Fails, naming
  /// the layer group, for what the CPU backend does not run. Every layer is
  /// built (the chains and their geometry are the same on every rank), but
  /// the parameters of layers `keep` rejects are released right after
  /// construction, so a rank holds only its stage's weights.
  static llvm::Expected<std::unique_ptr<Model>>
  build(const Plan &plan, uint64_t seed, const Keep &keep = nullptr,
        const Sharding *sharding = nullptr);

  /// Under CP: the shares of the LLM's sequences (Batch::cp of its layers)
  /// and this rank's tokens of a sequence; empty otherwise. The LLM's
  /// activations, token ids and targets are then those tokens' rows.
  cpu::ContextParallel contextParallel;
  std::vector<int64_t> localTokens;

  /// Parameters of the whole model, and those that train (counted before
  /// any were released, a TP shard as its whole parameter): the same on
  /// every rank as in one process.
  int64_t totalParams = 0, trainableParams = 0;

  const Plan &plan() const { return *thePlan; }
  /// One chain per part: encoders in model order, then the LLM.
  std::vector<std::unique_ptr<Chain>> chains;
  Chain &llm() { return *chains.back(); }
  /// Per chain, the partition unit (PlanPart::blocks) of each step: its
  /// block, or the block it rides with (layers before the first block with
  /// the first, the rest, the projector included, with the last), the rule
  /// the compiler's partitioner cuts by.
  std::vector<std::vector<int64_t>> stepUnits;
  /// The steps [first, last) of chain `chain` that partition units
  /// [begin, end) hold (a pipeline stage's share of the part).
  std::pair<size_t, size_t> stepsOfUnits(size_t chain, int64_t begin,
                                         int64_t end) const;
  /// The LLM chain's fan-in step (encoders' tokens enter), -1 when none.
  int64_t fanInStep = -1;
  /// The token embedding's matrix when the LM head shares it (tied), else
  /// null. A pipeline puts the two on different stages; their gradients
  /// are summed before the optimizer step so both copies stay equal.
  cpu::Param<float> *tiedEmbedding = nullptr;
  /// Every parameter the model holds, in a fixed order.
  std::vector<NamedParam> params;
  cpu::Param<float> *findParam(llvm::StringRef name) const;

  /// The LLM sequence: its bitfield layout, its spans, RoPE positions.
  kernels::TokenLayout layout;
  std::vector<kernels::LayoutSpan> spans;
  std::vector<int64_t> positions;
  std::vector<EncoderGeometry> encoders;
  int64_t sequences = 1; ///< LLM sequences per microbatch.
  int64_t seqLen = 0;
  int64_t vocab = 0;
  /// Tokens with a next-token target in one sequence.
  int64_t countedTokensPerSequence = 0;

private:
  explicit Model(const Plan &plan) : thePlan(&plan) {}
  const Plan *thePlan;
};

} // namespace mllm::runtime::exec

#endif // MLLM_RUNTIME_EXEC_MODEL_H
