//===- LayerParts.h - building blocks of the CPU layers ---------*- C++ -*-===//
//
// The pieces every CPU layer is assembled from: a parameter list, a linear
// map, a norm, a feed-forward, multi-head self-attention over the bitfield
// attention kernel, and the per-microbatch sequence context (positions and
// the attention plan). Each piece owns pointers to its parameters, runs its
// kernels and keeps what its backward needs in a Saved struct that the
// enclosing layer's state holds. The math is the kernels'
// (kernels/include/mllm/kernels/cpu); docs/runtime-layers.md says what each
// layer computes with them.
//
// A piece's backward is split like the layers': a gradient pass fills the
// gradients of its intermediate tensors (and its input gradient), and
// backwardWeight() accumulates parameter gradients from them, so a layer
// can run the gradient pass once from whichever backward call comes first.
//
// Under tensor parallelism the attention and the feed-forward hold their
// shard's heads and width and run the TP all-reduces themselves (their
// TensorContext); under context parallelism the attention exchanges K/V
// over the CP group of the sequence context.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_CPU_LAYERPARTS_H
#define MLLM_RUNTIME_CPU_LAYERPARTS_H

#include "mllm/kernels/cpu/Attention.h"
#include "mllm/runtime/cpu/Layer.h"
#include "mllm/runtime/cpu/ParallelParts.h"

#include "llvm/ADT/Twine.h"

#include <memory>
#include <optional>

namespace mllm::runtime::cpu {

/// Fails the process with `message` (prefixed "mllm CPU layer: "). Used for
/// inconsistent calls (a batch that does not match the layer, a state from
/// another layer) that the interface has no error path for; they are the
/// caller's bugs, like the kernels' asserts, but checked in every build.
[[noreturn]] void layerFatal(const llvm::Twine &message);

/// Elementwise and gated activations by their config spelling, plus the
/// tanh GELU of the attention-pooling head.
enum class Activation { Gelu, GeluTanh, Relu, Silu, SwiGLU, GeGLU };
/// gelu, relu, silu, swiglu, geglu; std::nullopt for anything else.
std::optional<Activation> parseActivation(llvm::StringRef name);
inline bool isGated(Activation a) {
  return a == Activation::SwiGLU || a == Activation::GeGLU;
}
/// out[rows, width] = act(in); `in` is [rows, 2 * width] when gated.
template <typename T>
void activationForward(Activation a, const T *in, T *out, int64_t rows,
                       int64_t width);
/// din (the shape of `in`) from in and dout[rows, width].
template <typename T>
void activationBackward(Activation a, const T *in, const T *dout, T *din,
                        int64_t rows, int64_t width);

/// Whether `p` receives gradients.
template <typename T>
bool hasGrad(const Param<T> *p) {
  return p && p->trainable && !p->grad.data.empty();
}

/// The parameters a layer owns, in creation order.
template <typename T>
class ParamList {
public:
  /// `shape` is the shard's; `shard` says where it lies in the full one.
  Param<T> *add(std::string name, std::vector<int64_t> shape, ParamInit init,
                bool trainable, ShardInfo shard = {});
  std::vector<Param<T> *> all() const;

private:
  std::vector<std::unique_ptr<Param<T>>> params;
};

/// How a linear map of a TP shard is split (Megatron-LM). Column: the
/// shard holds out / p of the outputs (W's rows and the bias; with blocks
/// 2, the same slice of each half [gate | up]). Row: it holds in / p of the
/// inputs (W's columns); the bias is whole and forward leaves it out, so
/// that the caller adds it once, after the all-reduce of the partial sums.
enum class Split { None, Column, Row };

/// y[rows, out] = x[rows, in] W^T + b, W [out, in] as nn.Linear.
template <typename T>
struct LinearPart {
  Param<T> *w = nullptr, *b = nullptr;
  int64_t in = 0, out = 0; ///< the shard's
  bool rowParallel = false;

  /// Creates `wName` [out, in] and, when `bName` is not empty, `bName`;
  /// `in` and `out` are the full map's, split by `split` over `shard`.
  void create(ParamList<T> &list, const std::string &wName,
              const std::string &bName, int64_t in, int64_t out, bool trainable,
              Split split = Split::None, const TensorShard &shard = {},
              int64_t blocks = 1);
  /// Without the bias when row-parallel.
  void forward(const T *x, T *y, int64_t rows) const;
  /// y += b on every row (a row-parallel map's bias, after the all-reduce).
  void addBias(T *y, int64_t rows) const;
  /// dx = dy W, overwritten, or added to dx when `accumulate`.
  void backwardInput(const T *dy, T *dx, int64_t rows,
                     bool accumulate = false) const;
  /// dW += dy^T x, db += sum dy (each when it trains).
  void backwardWeight(const T *x, const T *dy, int64_t rows) const;
};

/// LayerNorm (weight and bias) or RMSNorm (weight) over the last dimension,
/// eps 1e-5.
template <typename T>
struct NormPart {
  static constexpr double kEps = 1e-5;
  Param<T> *w = nullptr, *b = nullptr;
  bool layerNorm = true;
  int64_t dim = 0;

  struct Saved {
    Tensor<T> mean, rstd;
  };

  /// Creates `prefix.weight` (and `prefix.bias` for LayerNorm).
  void create(ParamList<T> &list, const std::string &prefix, int64_t dim,
              bool layerNorm, bool trainable);
  void forward(const T *x, T *y, Saved &saved, int64_t rows) const;
  void backwardInput(const T *dy, const T *x, const Saved &saved, T *dx,
                     int64_t rows) const;
  void backwardWeight(const T *dy, const T *x, const Saved &saved,
                      int64_t rows) const;
};

/// Feed-forward: y = W_out act(W_in x + b_in) + b_out. Gated: W_in is
/// [2 ffn, hidden] as [gate | up]. A TP shard holds ffn / p of the width
/// (W_in column-, W_out row-parallel), all-reduces y in forward and dx in
/// backward.
template <typename T>
struct FfnPart {
  LinearPart<T> wIn, wOut;
  Activation act = Activation::Gelu;
  int64_t ffn = 0; ///< the shard's
  TensorContext *tp = nullptr;

  struct Saved {
    Tensor<T> u, a; ///< pre-activation [rows, (2) ffn], activation [rows, ffn]
    Tensor<T> du;   ///< gradient of u (the gradient pass)
  };

  /// `prefix.w_in`, `prefix.b_in`, `prefix.w_out`, `prefix.b_out`; `ffn`
  /// is the full width, split over tp's shard.
  void create(ParamList<T> &list, const std::string &prefix, int64_t hidden,
              int64_t ffn, Activation act, bool bias, bool trainable,
              TensorContext &tp);
  void forward(const T *x, T *y, Saved &saved, int64_t rows) const;
  /// Fills saved.du from dy; dx = du W_in (overwritten).
  void backward(const T *dy, Saved &saved, T *dx, int64_t rows) const;
  void backwardWeight(const T *x, const T *dy, const Saved &saved,
                      int64_t rows) const;
};

/// The sequences of a microbatch at one layer: count, tokens each (this
/// rank's under CP), the positions of those tokens of one sequence and, for
/// attention, the plan of its layout (queries: these tokens; keys: the
/// whole sequence, in the CP ranks' order).
struct SequenceContext {
  int64_t sequences = 0, tokens = 0;
  std::vector<int64_t> positions;
  std::shared_ptr<const kernels::cpu::AttentionPlan> plan;
  /// Keys per sequence: `tokens` without CP, the whole sequence with it.
  int64_t keys = 0;
  /// Context parallelism (null group: none): every CP rank's tokens per
  /// sequence, in group order.
  Group *cpGroup = nullptr;
  std::vector<int64_t> cpCounts;
};

/// Checks `rows` == sequences * tokens and fills positions (0..tokens-1 when
/// the batch has none; under CP this rank's tokens' entries of the whole
/// sequence's, after checking the batch's CP share). With `attention`,
/// also prepares the plan of the batch's layout (an all-visible layout when
/// it has none); with `alibi`, checks that positions step by 1 within each
/// sample (the kernel's ALiBi distance is the token index difference).
template <typename T>
SequenceContext makeSequenceContext(const Batch<T> &batch, int64_t rows,
                                    bool attention, bool alibi,
                                    llvm::StringRef layer);

/// The ALiBi slopes of Press et al. for `heads` heads: 2^(-8 (i + 1) / n)
/// for head i of a power of two n, else the slopes of the next lower power of
/// two followed by every other slope of twice that.
std::vector<float> alibiSlopes(int64_t heads);

/// Why ALiBi cannot run on `layout` with `positions`, or "": the kernel's
/// ALiBi distance is the difference of token indices, the layer's that of
/// positions, and they agree when positions step by exactly 1 between
/// consecutive non-padding tokens of a sample.
std::string alibiPositionsProblem(const kernels::TokenLayout &layout,
                                  kernels::MaskPolicy policy,
                                  const std::vector<int64_t> &positions);

/// Multi-head self-attention with GQA: q/k/v linears, RoPE or ALiBi, the
/// bitfield attention kernel per sequence, the output linear. A TP shard
/// holds heads / p query and kv_heads / p kv heads (q/k/v column-, wo
/// row-parallel). Under CP, K and V of the whole sequence are gathered.
template <typename T>
struct AttentionPart {
  LinearPart<T> wq, wk, wv, wo;
  int64_t heads = 0, kvHeads = 0, headDim = 0; ///< the shard's heads
  bool rope = false, alibi = false;
  double ropeTheta = 0;
  std::vector<float> slopes; ///< the shard's heads'
  TensorContext *tp = nullptr;

  struct Saved {
    Tensor<T> q, o, lse; ///< q after RoPE; lse [seq, heads, tokens]
    /// K (after RoPE) and V of every key: [sequences * keys, width].
    Tensor<T> k, v;
    Tensor<T> dq, dk, dv; ///< gradients of the linears' outputs (own rows)
  };

  /// wq, wk, wv, wo (+ bq, bk, bv when qkvBias, bo when outBias), all with
  /// `prefix` before the name; heads are the full layer's, split over tp's
  /// shard.
  void create(ParamList<T> &list, const std::string &prefix, int64_t hidden,
              int64_t heads, int64_t kvHeads, int64_t headDim, bool qkvBias,
              bool outBias, llvm::StringRef position, double ropeTheta,
              bool trainable, TensorContext &tp);
  kernels::cpu::AttentionHeads headsInfo() const;
  void forward(const T *x, T *y, const SequenceContext &seq,
               Saved &saved) const;
  /// Fills saved.dq/dk/dv from dy; dx = their input gradient (overwritten).
  void backward(const T *dy, const SequenceContext &seq, Saved &saved,
                T *dx) const;
  void backwardWeight(const T *x, const T *dy, const Saved &saved,
                      int64_t rows) const;
};

/// The common half of every layer: kind, config, parameters, and the TP
/// shard with the collectives (a layer that does not split has shard size
/// 1 and still uses them for CP).
template <typename T>
class LayerBase : public Layer<T> {
public:
  LayerBase(llvm::StringRef kind, const LayerConfig &config, bool trainable,
            const TensorShard &shard = {})
      : kindName(kind.str()), config(config), trainable(trainable) {
    tp.shard = shard;
    tp.layer = kindName;
  }
  llvm::StringRef kind() const override { return kindName; }
  std::vector<Param<T> *> params() override { return list.all(); }
  const LayerConfig *layerConfig() const override { return &config; }
  llvm::Error takeCommError() override { return tp.comm.take(); }

protected:
  std::string kindName;
  LayerConfig config;
  bool trainable;
  ParamList<T> list;
  TensorContext tp;
};

/// A layer state that knows which layer made it, so a state passed to the
/// wrong layer fails loudly instead of being misread.
struct OwnedState : LayerState {
  const void *owner = nullptr;
  bool gradsReady = false; ///< the gradient pass ran
};

/// `state` as the layer `owner`'s own state type.
template <typename S>
S &ownState(LayerState &state, const void *owner) {
  auto &s = static_cast<S &>(state);
  if (s.owner != owner)
    layerFatal("a layer state was passed to a layer that did not make it");
  return s;
}

/// Resizes `dst` to `shape` and fills it from src (as many values).
template <typename T>
void copyTo(Tensor<T> &dst, std::vector<int64_t> shape, const T *src);

// Factories of the layer kinds (one source file per kind or family). The
// kinds that split under TP take their shard.
template <typename T>
std::unique_ptr<Layer<T>> makeTokenEmbedding(const LayerConfig &c, bool train,
                                             const TensorShard &tp);
template <typename T>
std::unique_ptr<Layer<T>> makePatchEmbedding(const LayerConfig &c, bool train);
template <typename T>
std::unique_ptr<Layer<T>> makeAudioFrontend(const LayerConfig &c, bool train);
template <typename T>
std::unique_ptr<Layer<T>> makeTransformerBlock(const LayerConfig &c, bool train,
                                               const TensorShard &tp);
template <typename T>
std::unique_ptr<Layer<T>> makeConformerBlock(const LayerConfig &c, bool train,
                                             const TensorShard &tp);
template <typename T>
std::unique_ptr<Layer<T>> makeNorm(const LayerConfig &c, bool train);
template <typename T>
std::unique_ptr<Layer<T>> makeLMHead(const LayerConfig &c, bool train,
                                     const TensorShard &tp);
template <typename T>
std::unique_ptr<Layer<T>> makeLinearProjector(const LayerConfig &c, bool train);
template <typename T>
std::unique_ptr<Layer<T>> makeMlpProjector(const LayerConfig &c, bool train);
template <typename T>
std::unique_ptr<Layer<T>> makeAttentionPool(const LayerConfig &c, bool train);

} // namespace mllm::runtime::cpu

#endif // MLLM_RUNTIME_CPU_LAYERPARTS_H
