//===- Steps.h - the kinds of step a chain is made of -----------*- C++ -*-===//
//
// A layer of the plan (LayerStep), an encoder's hand-over to its projector
// (ProjectorInputStep: drop the class token, merge neighbouring tokens), and
// the LLM's fan-in (FanInStep: the encoders' tokens take their places in the
// sequence the token embedding produced).
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_EXEC_STEPS_H
#define MLLM_RUNTIME_EXEC_STEPS_H

#include "mllm/kernels/SequenceLayout.h"
#include "mllm/runtime/exec/Chain.h"

namespace mllm::runtime::exec {

/// One layer of a layer group.
class LayerStep : public Step {
public:
  struct Flags {
    bool weightGrad = false, inputGrad = false, recompute = false;
  };
  /// `batch` gives the geometry of the layer's input (sequences, tokens,
  /// mask, positions); the data pointers are filled from the microbatch.
  LayerStep(std::string name, std::unique_ptr<cpu::Layer<float>> layer,
            cpu::Batch<float> batch, Flags flags)
      : stepName(std::move(name)), theLayer(std::move(layer)),
        batch(std::move(batch)), flags(flags) {}

  std::string name() const override { return stepName; }
  cpu::Layer<float> *layer() override { return theLayer.get(); }
  bool weightGrad() const override { return flags.weightGrad; }
  bool inputGrad() const override { return flags.inputGrad; }
  bool recompute() const override { return flags.recompute; }
  const cpu::Batch<float> &geometry() const { return batch; }
  const cpu::Batch<float> *layerGeometry() const override { return &batch; }
  void setGeometry(cpu::Batch<float> b) { batch = std::move(b); }

  std::unique_ptr<cpu::LayerState> forward(MicrobatchContext &ctx,
                                           const Activation &in,
                                           Activation &out) override;
  void backwardInput(MicrobatchContext &ctx, cpu::LayerState *state,
                     const Activation &dOut, Activation &dIn) override;
  void backwardWeight(MicrobatchContext &ctx, cpu::LayerState *state,
                      const Activation &dOut) override;

  /// The encoder whose media an input layer reads ("" for the LLM).
  std::string mediaOf;
  /// An LLM layer: a microbatch with its own layout (BatchLayout) replaces
  /// the declared mask and positions.
  bool followsBatchLayout = false;

private:
  cpu::Batch<float> filled(const MicrobatchContext &ctx) const;
  /// Moves a failed collective of the layer into ctx.commError.
  void keepCommError(MicrobatchContext &ctx);

  std::string stepName;
  std::unique_ptr<cpu::Layer<float>> theLayer;
  cpu::Batch<float> batch;
  Flags flags;
};

/// An encoder's output becomes its projector's input: per item, the class
/// token (if any) is dropped, the tokens are padded to a multiple of
/// `merge` and every `merge` neighbours are concatenated.
class ProjectorInputStep : public Step {
public:
  ProjectorInputStep(std::string name, int64_t items, int64_t tokensPerItem,
                     int64_t width, int64_t merge, bool dropFirst,
                     bool inputGrad)
      : stepName(std::move(name)), items(items), tokensPerItem(tokensPerItem),
        width(width), merge(merge), dropFirst(dropFirst),
        needsInputGrad(inputGrad) {}
  std::string name() const override { return stepName; }
  bool inputGrad() const override { return needsInputGrad; }
  /// Tokens per item after the merge.
  int64_t outputTokens() const {
    return (tokensPerItem - (dropFirst ? 1 : 0) + merge - 1) / merge;
  }
  int64_t inputTokens() const { return tokensPerItem; }
  int64_t mergeFactor() const { return merge; }
  bool dropsFirst() const { return dropFirst; }
  std::unique_ptr<cpu::LayerState> forward(MicrobatchContext &ctx,
                                           const Activation &in,
                                           Activation &out) override;
  void backwardInput(MicrobatchContext &ctx, cpu::LayerState *state,
                     const Activation &dOut, Activation &dIn) override;

private:
  std::string stepName;
  int64_t items, tokensPerItem, width, merge;
  bool dropFirst, needsInputGrad;
};

/// The LLM's fan-in: the token embedding produced a row for every token of
/// the microbatch's sequences; the rows of modality items are replaced by
/// the projected tokens of their encoder (MicrobatchContext::encoderOut).
/// Backward: those rows' gradients go to the encoders that need them
/// (encoderGrad), and the embedding gets none for them.
class FanInStep : public Step {
public:
  /// `encoders[m]` is the encoder of modality m (the layout's word bit
  /// order); `needsGrad[m]` whether its gradient is wanted.
  FanInStep(std::string name, int64_t sequences, int64_t seqLen,
            std::vector<kernels::LayoutSpan> spans,
            std::vector<std::string> encoders, std::vector<int64_t> items,
            std::vector<bool> needsGrad, bool embeddingGrad)
      : stepName(std::move(name)), sequences(sequences), seqLen(seqLen),
        spans(std::move(spans)), encoders(std::move(encoders)),
        itemsPerSample(std::move(items)), needsGrad(std::move(needsGrad)),
        embeddingGrad(embeddingGrad) {}
  std::string name() const override { return stepName; }
  bool inputGrad() const override;
  /// Context parallelism: this rank's tokens of each sequence (ascending
  /// positions); its rows are those tokens, sequence after sequence.
  void setLocalTokens(const std::vector<int64_t> &tokens);
  /// LLM tokens of one item of each encoder (a BatchLayout's items).
  void setTokensPerItem(std::vector<int64_t> tokens) {
    tokensPerItem = std::move(tokens);
  }
  std::unique_ptr<cpu::LayerState> forward(MicrobatchContext &ctx,
                                           const Activation &in,
                                           Activation &out) override;
  void backwardInput(MicrobatchContext &ctx, cpu::LayerState *state,
                     const Activation &dOut, Activation &dIn) override;
  /// What forward() copies for microbatch `data` (null: the declared
  /// layout): `length` rows of encoder `encoder`'s output from row `src`
  /// to the sequences' row `row`. For executors that copy on their own.
  struct Run {
    int64_t encoder, row, src, length;
  };
  std::vector<Run> runs(const MicrobatchData *data) const;
  /// Whether encoder m's gradient is wanted.
  bool encoderNeedsGrad(size_t m) const { return needsGrad[m]; }

private:
  /// Calls fn(encoder, rowInSequenceBatch, rowInEncoderOutput, length) for
  /// every item span of every sequence.
  template <typename F>
  void forEachItem(F fn) const;
  /// forEachItem() in this rank's rows: under CP, one call per token of an
  /// item that the rank holds.
  template <typename F>
  void forEachRun(const MicrobatchContext &ctx, F fn) const;

  std::string stepName;
  int64_t sequences, seqLen;
  std::vector<kernels::LayoutSpan> spans;
  std::vector<std::string> encoders;
  std::vector<int64_t> itemsPerSample;
  std::vector<bool> needsGrad;
  bool embeddingGrad;
  /// Under CP: per position of a sequence, this rank's row of it or -1.
  std::vector<int64_t> localOf;
  int64_t localCount = 0;
  std::vector<int64_t> tokensPerItem;
};

} // namespace mllm::runtime::exec

#endif // MLLM_RUNTIME_EXEC_STEPS_H
