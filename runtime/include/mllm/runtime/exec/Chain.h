//===- Chain.h - the steps of one model part, run per microbatch -*- C++
//-*-===//
//
// A part of the model (an encoder with its projector, or the LLM) runs as a
// chain of steps: its layers, in order, and the reshapes between them (an
// encoder drops its class token and merges neighbouring tokens before its
// projector; the LLM places the encoders' tokens into its sequence after
// the token embedding). A pipeline stage runs a contiguous range of a
// chain; the one-process run runs whole chains.
//
// Forward, input backward and weight backward are separate calls, as the
// schedule's actions are: backwardInput() propagates the gradient through
// the range (keeping every step's output gradient), backwardWeight()
// accumulates the weight gradients from them (propagating itself when no
// input backward ran, e.g. a trainable projector behind a frozen encoder).
// Which step computes what follows the plan's frozen analysis.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_EXEC_CHAIN_H
#define MLLM_RUNTIME_EXEC_CHAIN_H

#include "mllm/kernels/SequenceLayout.h"
#include "mllm/runtime/Plan.h"
#include "mllm/runtime/cpu/Layer.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace mllm::runtime::exec {

using Activation = cpu::Tensor<float>;

/// The layout of a microbatch's LLM sequence when it is its own (real data:
/// every batch packs other samples) rather than the plan's declared one.
struct BatchLayout {
  /// The sequence's bitfield words and segments, and RoPE/learned positions.
  kernels::TokenLayout tokens;
  std::vector<int64_t> positions;
  /// Per encoder (model order): where each of its items' tokens go, as
  /// (first row of the sequence, index of the item in the encoder's media),
  /// for the items this microbatch has (the rest of the encoder's media is
  /// padding up to the plan's static item count).
  struct Item {
    int64_t row = 0, media = 0;
    bool operator==(const Item &o) const {
      return row == o.row && media == o.media;
    }
  };
  std::vector<std::vector<Item>> items;
  /// A context-parallel LLM: every CP rank's tokens of the sequence, balanced
  /// for this layout (BatchSplit.h), the split's max/mean workload, the
  /// plan's split's on this layout, and the seconds the balancing took.
  /// Empty without CP.
  std::vector<std::vector<int64_t>> cpTokens;
  double cpImbalance = 0, cpDeclaredImbalance = 0, cpSeconds = 0;
};

/// The data of one microbatch.
struct MicrobatchData {
  /// LLM: token ids and next-token targets (-100: no loss), [sequences *
  /// seq_len].
  std::vector<int64_t> tokenIds, targets;
  /// Per encoder: its media, [items, ...] as the encoder's input layer reads
  /// it (images [items, channels, temporal, height, width], log-mel windows
  /// [windows, frames, mel_bins]).
  std::map<std::string, std::vector<float>> media;
  /// The loss scale: 1 / (counted tokens of the whole global batch).
  double lossScale = 1.0;
  /// Null: the plan's declared layout (the model's).
  std::shared_ptr<const BatchLayout> layout;
  /// A rank of a context-parallel LLM given a layout with its own split: the
  /// CP group and that split (Batch::cp of the LLM's layers for this
  /// microbatch; token ids and targets are then this rank's tokens). Also
  /// generation's share of a sequence's new tokens, whose group is the key
  /// cache (KeyCache.h), with or without CP. Null: the model's split.
  std::shared_ptr<const cpu::ContextParallel> cp;
};

/// What the steps of one microbatch exchange besides their activations: the
/// data, and the encoders' outputs and gradients at the LLM's fan-in.
struct MicrobatchContext {
  const MicrobatchData *data = nullptr;
  /// Encoder -> its projected tokens [items * tokens, llm width].
  std::map<std::string, Activation> encoderOut;
  /// Encoder -> the gradient of those tokens (filled by the LLM's backward
  /// for encoders that need it).
  std::map<std::string, Activation> encoderGrad;
  /// The LLM's scaled loss sum (set by its last step).
  double loss = 0;
  /// An evaluation (not owned): the LM head counts into it, and the
  /// chains keep no state for a backward (cpu::Batch::eval).
  cpu::HeadEval *eval = nullptr;
  /// Generation (not owned): the LM head predicts into it, and the chains
  /// keep no state (cpu::Batch::predict).
  cpu::HeadPredict *predict = nullptr;
  bool forwardOnly() const { return eval || predict; }
  /// The first collective of a tensor- or context-parallel layer that
  /// failed (the layer calls have no error path): empty when none did.
  std::string commError;
};

/// One step of a chain.
class Step {
public:
  virtual ~Step() = default;
  /// For messages ("llm.blocks.3", "vision.merge").
  virtual std::string name() const = 0;
  /// The layer, for steps that are one.
  virtual cpu::Layer<float> *layer() { return nullptr; }
  /// The geometry a layer step's batches have (sequences, tokens, mask,
  /// positions), for steps that are one.
  virtual const cpu::Batch<float> *layerGeometry() const { return nullptr; }
  /// Whether the step accumulates weight gradients.
  virtual bool weightGrad() const { return false; }
  /// Whether the step computes the gradient of its input.
  virtual bool inputGrad() const = 0;
  /// Whether the step's forward state is dropped and recomputed before its
  /// backward.
  virtual bool recompute() const { return false; }

  virtual std::unique_ptr<cpu::LayerState>
  forward(MicrobatchContext &ctx, const Activation &in, Activation &out) = 0;
  virtual void backwardInput(MicrobatchContext &ctx, cpu::LayerState *state,
                             const Activation &dOut, Activation &dIn) = 0;
  virtual void backwardWeight(MicrobatchContext &ctx, cpu::LayerState *state,
                              const Activation &dOut) {
    (void)ctx, (void)state, (void)dOut;
  }
};

/// The steps of a part and the per-microbatch state of a range of them.
class Chain {
public:
  explicit Chain(std::string part) : partName(std::move(part)) {}
  const std::string &part() const { return partName; }

  void add(std::unique_ptr<Step> step) { steps.push_back(std::move(step)); }
  size_t size() const { return steps.size(); }
  Step &step(size_t i) { return *steps[i]; }
  /// Whether any step of [first, last) runs a backward.
  bool hasBackward(size_t first, size_t last) const;

  /// Forward of steps [first, last) for microbatch `mb`.
  void forward(int64_t mb, MicrobatchContext &ctx, size_t first, size_t last,
               const Activation &in, Activation &out);
  /// The gradient of the range's input from that of its output; keeps every
  /// step's output gradient for backwardWeight(). `dIn` is left empty when
  /// the first step computes no input gradient.
  void backwardInput(int64_t mb, MicrobatchContext &ctx, size_t first,
                     size_t last, const Activation &dOut, Activation &dIn);
  /// Accumulates the weight gradients of the range's steps, then releases
  /// the microbatch's state.
  void backwardWeight(int64_t mb, MicrobatchContext &ctx, size_t first,
                      size_t last, const Activation &dOut);
  /// Drops the microbatch's state (a forward without a backward).
  void release(int64_t mb) { states.erase(mb); }

private:
  struct StepState {
    std::unique_ptr<cpu::LayerState> state;
    Activation input;   ///< Kept for a recomputed step.
    Activation outGrad; ///< The gradient of the step's output.
    bool haveOutGrad = false;
  };
  /// Runs the backward chain from `last` down to `stopAt` (inclusive):
  /// every step's output gradient, and input gradients where needed.
  void propagate(int64_t mb, MicrobatchContext &ctx, size_t stopAt, size_t last,
                 const Activation &dOut, Activation *dIn);
  void rebuild(int64_t mb, MicrobatchContext &ctx, size_t i);

  std::string partName;
  std::vector<std::unique_ptr<Step>> steps;
  std::map<int64_t, std::vector<StepState>> states;
};

} // namespace mllm::runtime::exec

#endif // MLLM_RUNTIME_EXEC_CHAIN_H
