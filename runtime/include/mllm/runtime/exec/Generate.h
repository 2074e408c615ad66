//===- Generate.h - greedy decoding after a sample's media ------*- C++ -*-===//
//
// What a trained model says about an image or a clip (`mllm-run
// --generate`): each sample of a prompt manifest is laid out as for
// training (its media at their markers or the spec's placement, its text
// tokenised without the end id), then the model continues the text one
// token at a time, always the argmax of the logits at the sample's last
// token, until the tokenizer's end id, `maxTokens`, or the end of the
// plan's sequence.
//
// On the CPU the encoders run once per sample and the LLM once on the
// prompt, then per round on the new token only, its attention reading the
// earlier tokens' keys and values from a cache (KeyCache.h: the same
// layers, masks and positions training uses), in one process and on the
// ranks of a parallel run whose LLM is not context parallel; the CUDA
// backend keeps them on the GPUs the same way (DeviceKeyCache.h). A
// NextToken may continue several samples at once: a parallel run's ranks
// give each microbatch of each replica one.
//
// An item placed at the end of the prompt (`append`, or a marker at its
// end) stays where the prompt put it, and the generated text follows it;
// an `at(f)` item stays at the fraction of the prompt. Generation stops at
// the end id, after `maxTokens`, when the sequence is full, or ("nan")
// when every logit of the row is NaN.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_EXEC_GENERATE_H
#define MLLM_RUNTIME_EXEC_GENERATE_H

#include "mllm/runtime/data/DataSet.h"
#include "mllm/runtime/exec/KeyCache.h"
#include "mllm/runtime/exec/Model.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/STLFunctionalExtras.h"

#include <optional>

namespace mllm::runtime::exec {

struct Generation {
  int64_t line = 0;   ///< The sample's line in the prompt manifest.
  std::string prompt; ///< The manifest's text (markers included).
  /// Per encoder with items, the sample's media paths.
  std::vector<std::pair<std::string, std::string>> media;
  std::vector<int64_t> tokens; ///< Generated ids (without the end id).
  std::string text;            ///< Those ids decoded.
  /// Why it stopped: "end" (the end id), "max-tokens", "sequence full",
  /// "nan" (every logit of the row was NaN).
  std::string stop;
};

/// One sample a NextToken continues by a token.
struct TokenQuery {
  int64_t slot = 0; ///< In [0, NextToken::width()).
  /// The sample's layout with its text so far, every target ignored; null
  /// where this process does not run the slot (NextToken::runs).
  const MicrobatchData *batch = nullptr;
  int64_t row = 0; ///< The sample's last token (its logits choose).
};

/// What a NextToken's rounds ran: the rounds (each chooses a sample's next
/// token or its stop), the LLM's rows they laid out, whether the key cache
/// was used, the rounds that dropped a sample's cache and ran its whole
/// prefix, and the forwards of an encoder's layers this process ran (one
/// per encoder, or encoder stage, and sample or round).
struct GenerationWork {
  int64_t rounds = 0, rows = 0, dropped = 0, encoderRuns = 0;
  bool keyCache = false;
};

/// What runs the model for a Generator: per round, one new token for each
/// of up to width() samples at once.
class NextToken {
public:
  virtual ~NextToken();
  /// Samples continued at once.
  virtual int64_t width() const { return 1; }
  /// Whether this process runs `slot` (reads its sample's media); the
  /// others only learn its tokens.
  virtual bool runs(int64_t /*slot*/) const { return true; }
  /// A new sample in `slot` (one this process runs): `batch` holds its
  /// media (what does not change while its text grows).
  virtual llvm::Error startSample(int64_t slot, const MicrobatchData &batch);
  /// For each query (distinct slots), the first largest logit among ids
  /// [0, choices) at its row, -1 when all are NaN: `ids[i]` for
  /// `queries[i]`, the same in every process.
  virtual llvm::Error choose(llvm::ArrayRef<TokenQuery> queries,
                             int64_t choices,
                             llvm::MutableArrayRef<int64_t> ids) = 0;
  /// What ran so far, where this NextToken counts it (the CPU backend's:
  /// in a parallel run, the samples of this process's replica).
  virtual std::optional<GenerationWork> work() const { return std::nullopt; }
};

/// The CPU backend's in one process: the encoders once per sample, the LLM
/// on the tokens new since the last round with the earlier ones' keys and
/// values cached (or, `cacheKeys` false, over the whole padded sequence
/// every round: the reference the cache is tested against), the logits of
/// the one row from the LM head's weight. A model whose LLM is context
/// parallel (a rank's share), or whose LLM holds a layer that takes no CP
/// share (conformer blocks), recomputes.
class CPUNextToken final : public NextToken {
public:
  explicit CPUNextToken(Model &model, bool cacheKeys = true);
  llvm::Error startSample(int64_t slot, const MicrobatchData &batch) override;
  llvm::Error choose(llvm::ArrayRef<TokenQuery> queries, int64_t choices,
                     llvm::MutableArrayRef<int64_t> ids) override;
  std::optional<GenerationWork> work() const override {
    GenerationWork w = done;
    w.dropped = keys.dropped();
    w.keyCache = cacheKeys;
    return w;
  }

private:
  Model &model;
  bool cacheKeys;
  kernels::MaskPolicy policy; ///< The LLM's attention's.
  SampleKeys keys;            ///< The sample's, with cacheKeys.
  MicrobatchData round;
  GenerationWork done;
  MicrobatchContext ctx;
  Activation hidden;
  std::vector<float> logits;
};

class Generator {
public:
  /// Opens the prompt manifest for `model`'s plan; `options.tokenizer` says
  /// how text is tokenised (the end id is never appended to a prompt), and
  /// each sample is laid out alone in a sequence.
  static llvm::Expected<std::unique_ptr<Generator>>
  open(const Model &model, llvm::StringRef manifest, data::DataOptions options);

  /// Generates up to `maxTokens` tokens for every sample, each chosen by
  /// `next`: the samples in manifest order, `next.width()` at a time,
  /// calling `emit` for each in that order.
  llvm::Error run(int64_t maxTokens, NextToken &next,
                  llvm::function_ref<void(const Generation &)> emit);

  const data::DataSet &dataSet() const { return *set; }

private:
  Generator(const Model &model, std::unique_ptr<data::DataSet> set)
      : model(model), set(std::move(set)) {}

  const Model &model;
  std::unique_ptr<data::DataSet> set;
};

} // namespace mllm::runtime::exec

#endif // MLLM_RUNTIME_EXEC_GENERATE_H
