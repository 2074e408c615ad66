//===- Layer.h - one layer of a model on the CPU backend --------*- C++ -*-===//
//
// The unit the CPU runtime executes: one layer of a layer group of the plan
// (a token embedding, a transformer block, a projector, the LM head with its
// loss, ...), built from the group's kind and LayerConfig. Forward, input
// gradient and weight gradient are separate calls, because the schedule runs
// backward_input and backward_weight as separate actions; what the backward
// needs is kept in a per-microbatch LayerState that the forward fills.
//
// Tensors are row-major and token-major: [tokens, features] for all
// sequences of a microbatch back to back. Templated on the scalar so that
// tests check every layer's gradients by finite differences in double; the
// runtime runs float.
//
// A layer may be one rank's part of a parallel layer: a tensor-parallel
// (TP) shard holds a slice of the heads, the feed-forward width or the
// vocabulary (TensorShard, given to makeLayer), and a context-parallel (CP)
// rank holds a share of each sequence's tokens (ContextParallel, given with
// the batch). The layer then runs the collectives of Comm.h itself
// (docs/runtime-layers.md §8).
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_CPU_LAYER_H
#define MLLM_RUNTIME_CPU_LAYER_H

#include "mllm/kernels/Bitfield.h"
#include "mllm/kernels/TileMap.h"
#include "mllm/runtime/Comm.h"
#include "mllm/runtime/LayerConfig.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace mllm::runtime::cpu {

/// A dense row-major tensor.
template <typename T>
struct Tensor {
  std::vector<int64_t> shape;
  std::vector<T> data;

  Tensor() = default;
  explicit Tensor(std::vector<int64_t> shape, T fill = T(0));
  int64_t numel() const;
  /// Rows x columns of a 2-D view: (product of all but the last dim, last).
  int64_t rows() const;
  int64_t cols() const { return shape.empty() ? 0 : shape.back(); }
  void resize(std::vector<int64_t> newShape, T fill = T(0));
  T *ptr() { return data.data(); }
  const T *ptr() const { return data.data(); }
};

/// How initParam() fills a parameter. The layer sets it when it creates the
/// parameter, so initialisation never guesses from names.
enum class ParamInit : uint8_t {
  Normal, ///< normal(0, 0.02): matrices, embeddings, probes, class tokens
  Ones,   ///< norm weights
  Zeros,  ///< biases
  /// A constant the layer computed itself (a sinusoidal position table);
  /// initParam() leaves it alone. Never trainable.
  Fixed,
};

/// Where a tensor-parallel shard of a parameter lies in the full parameter
/// (for checkpoints and initialisation). Along `dim` the full parameter is
/// `blocks` equal blocks (2 for a gated w_in's [gate | up], else 1), each
/// split alike: the shard holds, of every block, value.shape[dim] / blocks
/// consecutive indices from `offset`. Every other dimension is whole.
struct ShardInfo {
  /// -1: not split; the value is the whole parameter.
  int dim = -1;
  int64_t blocks = 1;
  int64_t offset = 0;
  /// The unsplit parameter's shape (empty when not split).
  std::vector<int64_t> fullShape;
};

/// A parameter: its value, and its gradient when it trains (empty when
/// frozen: frozen parameters have no gradient buffer). Names are relative
/// to the layer ("wq", "ffn.w_in", "norm1.weight"); the runtime prefixes the
/// part and group ("llm.blocks.3.wq"). A TP shard's parameter has the full
/// parameter's name; `shard` says which slice it holds.
template <typename T>
struct Param {
  std::string name;
  Tensor<T> value;
  Tensor<T> grad;
  bool trainable = false;
  ParamInit init = ParamInit::Normal;
  ShardInfo shard;
};

/// Consecutive elements of a shard: value.data[local, local + length) is
/// the full parameter's flat [full, full + length).
struct ShardRun {
  int64_t local = 0, full = 0, length = 0;
};
/// The runs of a parameter with `shape` (its value's) and `shard`, in
/// ascending local order; one run covering everything when not split.
std::vector<ShardRun> shardRuns(const ShardInfo &shard,
                                const std::vector<int64_t> &shape);
/// The shape of the unsplit parameter.
inline std::vector<int64_t> fullShape(const ShardInfo &shard,
                                      const std::vector<int64_t> &shape) {
  return shard.dim < 0 ? shape : shard.fullShape;
}

/// This rank's place in the tensor-parallel group of a layer. The shard
/// holds heads / size query heads and kv_heads / size kv heads (rank r:
/// heads [r, r + 1) x heads / size), ffn / size of the feed-forward width
/// and [vocab r / size, vocab (r + 1) / size) of the vocabulary, and runs
/// its all-reduces over `group`. size 1: the whole layer.
struct TensorShard {
  int64_t rank = 0;
  int64_t size = 1;
  /// The TP group (size > 1): group->size() == size, group->rank() == rank.
  /// Not owned; it must outlive the layer.
  Group *group = nullptr;
};

/// A context-parallel rank's share of the sequences of a microbatch. All
/// sequences share the layout, so a rank holds the same tokens of each.
struct ContextParallel {
  /// The CP group; group->rank() picks this rank's entry of `tokens`.
  Group *group = nullptr;
  /// Every CP rank's tokens of one sequence, in group-rank order, as global
  /// indices into the sequence (ascending within a rank; the plan's CP
  /// assignment, e.g. BalanceResult::ranks). Together they hold every token
  /// of the sequence once. The gathered keys are in this order.
  std::vector<std::vector<int64_t>> tokens;
};

/// What an evaluation counts at the LM head (Batch::eval): per counted
/// target its cross-entropy and whether the first largest logit of its row
/// is the target (NaN logits skipped).
struct HeadEval {
  double lossSum = 0;
  int64_t tokens = 0, correct = 0;
  void add(const HeadEval &o) {
    lossSum += o.lossSum;
    tokens += o.tokens;
    correct += o.correct;
  }
};

/// What generation asks of the LM head (Batch::predict): the first largest
/// logit among ids [0, choices) at row `row` of this rank's tokens (NaN
/// skipped; -1 when every logit is NaN), the same on every TP rank. A row
/// < 0 is on another CP rank: this rank's head computes nothing.
struct HeadPredict {
  int64_t row = -1, choices = 0;
  int64_t predicted = -1;
};

/// The kind of part a layer belongs to, as the plan spells parts (`llm`,
/// `encoder`; a projector belongs to its encoder's part). The config alone
/// cannot tell an LLM block from an encoder block, and RoPE means different
/// things in the two (1-D token positions vs 2-D patch grids), so checkLayer
/// and makeLayer take it.
enum class PartKind : uint8_t { LLM, Encoder };

/// What a layer call needs to know about the microbatch besides its input
/// tensor. All sequences of a microbatch share one layout.
template <typename T>
struct Batch {
  /// Independent sequences in the microbatch: the LLM's microbatch_size, or
  /// an encoder's items (images, audio clips) of the microbatch.
  int64_t sequences = 1;
  /// Tokens per sequence at this layer's input (for a media input layer:
  /// ignored; it derives its output tokens from the config). Under CP: this
  /// rank's tokens per sequence.
  int64_t tokens = 0;
  /// The attention mask of one sequence (a word and segment per token, of
  /// this layer's tokens; under CP of the whole sequence). Null: every token
  /// attends to every token of its sequence (encoders: bidirectional within
  /// an item).
  const kernels::TokenLayout *layout = nullptr;
  kernels::MaskPolicy policy;
  /// Per token of one sequence: its position for RoPE, ALiBi and learned
  /// tables (restarting at 0 for every packed sample). Empty: 0..tokens-1.
  /// ALiBi needs positions that step by 1 between the non-padding tokens of
  /// a sample (checked: docs/runtime-layers.md). Under CP: of the whole
  /// sequence (the layer picks its tokens'), or empty (the token indices).
  std::vector<int64_t> positions;
  /// Context parallelism: null, or this rank's share (not owned). Rows,
  /// token ids and targets are then this rank's tokens of each sequence,
  /// sequence after sequence, in the order of its `tokens` entry.
  const ContextParallel *cp = nullptr;
  /// Token embedding: token ids, [sequences * tokens].
  const int64_t *tokenIds = nullptr;
  /// Media input layers: images [sequences, channels, temporal, height,
  /// width] (patch embedding) or log-mel features [sequences, frames,
  /// mel_bins] (audio front end).
  const T *media = nullptr;
  /// LM head: next-token targets, [sequences * tokens], -100 = no loss.
  const int64_t *targets = nullptr;
  /// LM head: the loss is sum(cross-entropy) x lossScale (the runtime passes
  /// 1 / (counted tokens of the whole global batch)), and so is its gradient.
  double lossScale = 1.0;
  /// LM head: an evaluation (not owned) when set. The head adds this
  /// microbatch's counts to it (the same on every TP rank) and keeps no
  /// state: no backward follows.
  HeadEval *eval = nullptr;
  /// LM head: generation (not owned) when set. The head fills it from the
  /// logits of its one row, computes no loss and keeps no state.
  HeadPredict *predict = nullptr;
};

/// What one microbatch's forward keeps for its backward. Each layer kind
/// derives its own.
struct LayerState {
  virtual ~LayerState() = default;
};

template <typename T>
class Layer {
public:
  virtual ~Layer() = default;

  /// The layer kind as the plan spells it ("transformer_block").
  virtual llvm::StringRef kind() const = 0;
  virtual std::vector<Param<T> *> params() = 0;
  /// Tokens per sequence this layer outputs for `inputTokens` per sequence
  /// (a patch embedding: its patches (+ class token); a projector with
  /// merge m: ceil(tokens / m); an attention-pooling head: 1; the LM head:
  /// its input tokens (it outputs logits)).
  virtual int64_t outputTokens(int64_t inputTokens) const = 0;
  /// Output features per token.
  virtual int64_t outputWidth() const = 0;

  /// The configuration the layer was made from (null for a layer made
  /// without one). Another backend running the same model reads it.
  virtual const LayerConfig *layerConfig() const { return nullptr; }

  /// Whether the layer shares a parameter it does not own (a tied LM head:
  /// the token embedding's `weight`). Such a layer cannot run until
  /// bindTiedWeight() was called.
  virtual bool isTied() const { return false; }
  /// Binds the shared parameter: for a tied LM head the token embedding's
  /// `weight` [vocab, hidden]. The layer reads its value and, when it has a
  /// gradient buffer, accumulates its weight gradient into it. Fails for a
  /// layer that is not tied or a parameter of the wrong shape.
  virtual llvm::Error bindTiedWeight(Param<T> *weight) {
    (void)weight;
    return llvm::createStringError("a %s layer shares no parameter",
                                   kind().str().c_str());
  }

  /// Forward of one microbatch: `in` is [sequences * tokens, width] (unused
  /// by input layers, which read batch.tokenIds / batch.media); writes
  /// `out` (resized by the layer) and returns the state the backward needs.
  /// The LM head writes the scaled loss sum into `out` as a [1] tensor.
  /// The state keeps copies of what it needs (the input, ids, targets,
  /// media), so `in` and the batch's buffers may be reused on return.
  virtual std::unique_ptr<LayerState>
  forward(const Batch<T> &batch, const Tensor<T> &in, Tensor<T> &out) = 0;
  /// dIn from dOut (overwritten). For the LM head `dOut` is ignored: its
  /// backward starts from the loss. Input layers (no input gradient) leave
  /// dIn empty.
  virtual void backwardInput(const Batch<T> &batch, LayerState &state,
                             const Tensor<T> &dOut, Tensor<T> &dIn) = 0;
  /// Accumulates (+=) the gradients of the trainable parameters. May use
  /// what backwardInput left in `state`; must also work when backwardInput
  /// was not called (a layer whose input needs no gradient), with the same
  /// bits. Both backward calls of a state take the same dOut.
  virtual void backwardWeight(const Batch<T> &batch, LayerState &state,
                              const Tensor<T> &dOut) = 0;

  /// The first failed collective (TP or CP) since the last call, or
  /// success. The calls above have no error path, so a layer keeps the
  /// failure (a deadline, a dead peer), skips its later collectives and
  /// leaves their outputs meaningless; check after every call of a
  /// parallel layer.
  virtual llvm::Error takeCommError() { return llvm::Error::success(); }
};

/// Whether the CPU backend can run a layer of `kind` with `config` in a part
/// of kind `part`, as shard `tp` of a TP group: empty, or why not (e.g.
/// "RoPE in an encoder (2-D patch positions) is not supported by the CPU
/// backend", "tp 4 does not divide kv_heads 2").
std::string checkLayer(llvm::StringRef kind, const LayerConfig &config,
                       PartKind part, const TensorShard &tp = {});

/// A layer of `kind` with `config`, parameters allocated (zero; a Fixed one
/// already holds its value) with the gradients of trainable ones when
/// `trainable`; with `tp`, that shard of it (layers that do not split are
/// whole on every TP rank). Fails with checkLayer()'s message.
template <typename T>
llvm::Expected<std::unique_ptr<Layer<T>>>
makeLayer(llvm::StringRef kind, const LayerConfig &config, PartKind part,
          bool trainable, const TensorShard &tp = {});

/// Deterministic initialisation of `param` from `seed` and its full name:
/// the same values on every rank and in every order of construction (a
/// counter-based generator keyed by the name, docs/runtime-layers.md).
/// By param.init: normal(0, 0.02), ones, zeros, or left alone (Fixed). A
/// TP shard gets exactly the full parameter's values at its indices.
template <typename T>
void initParam(Param<T> &param, llvm::StringRef fullName, uint64_t seed);

} // namespace mllm::runtime::cpu

#endif // MLLM_RUNTIME_CPU_LAYER_H
