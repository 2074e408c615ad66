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
// The encoders run once per sample; the LLM recomputes its whole forward
// for every new token (no KV cache): fine for the CPU's tiny models, and it
// keeps generation on exactly the layers, masks and positions training
// uses. An item placed at the end of the prompt (`append`, or a marker at
// its end) stays where the prompt put it, and the generated text follows
// it; an `at(f)` item stays at the fraction of the prompt.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_EXEC_GENERATE_H
#define MLLM_RUNTIME_EXEC_GENERATE_H

#include "mllm/runtime/data/DataSet.h"
#include "mllm/runtime/exec/Model.h"

#include "llvm/ADT/STLFunctionalExtras.h"

namespace mllm::runtime::exec {

struct Generation {
  int64_t line = 0;   ///< The sample's line in the prompt manifest.
  std::string prompt; ///< The manifest's text (markers included).
  /// Per encoder with items, the sample's media paths.
  std::vector<std::pair<std::string, std::string>> media;
  std::vector<int64_t> tokens; ///< Generated ids (without the end id).
  std::string text;            ///< Those ids decoded.
  /// Why it stopped: "end" (the end id), "max-tokens", "sequence full".
  std::string stop;
};

/// What runs the model for a Generator: the forward of a sample, then,
/// per new token, the id of the largest logit at one row.
class NextToken {
public:
  virtual ~NextToken();
  /// A new sample: `batch` holds its media (what does not change while its
  /// text grows).
  virtual llvm::Error startSample(const MicrobatchData &batch) = 0;
  /// The first largest logit among ids [0, choices) at row `row` (the
  /// sample's last token) of `batch` (the sample's layout with its text so
  /// far, every target ignored).
  virtual llvm::Expected<int64_t> choose(const MicrobatchData &batch,
                                         int64_t row, int64_t choices) = 0;
};

/// The CPU backend's: the encoders once per sample, the LLM per token, the
/// logits of the one row from the LM head's weight.
class CPUNextToken final : public NextToken {
public:
  explicit CPUNextToken(Model &model) : model(model) {}
  llvm::Error startSample(const MicrobatchData &batch) override;
  llvm::Expected<int64_t> choose(const MicrobatchData &batch, int64_t row,
                                 int64_t choices) override;

private:
  Model &model;
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
  open(Model &model, llvm::StringRef manifest, data::DataOptions options);

  /// Generates up to `maxTokens` tokens for every sample, in manifest
  /// order, each chosen by `next` (the CPU backend's when null), calling
  /// `emit` after each sample.
  llvm::Error run(int64_t maxTokens,
                  llvm::function_ref<void(const Generation &)> emit,
                  NextToken *next = nullptr);

  const data::DataSet &dataSet() const { return *set; }

private:
  Generator(Model &model, std::unique_ptr<data::DataSet> set)
      : model(model), set(std::move(set)) {}

  Model &model;
  std::unique_ptr<data::DataSet> set;
};

} // namespace mllm::runtime::exec

#endif // MLLM_RUNTIME_EXEC_GENERATE_H
