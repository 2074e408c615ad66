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
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_CPU_LAYERPARTS_H
#define MLLM_RUNTIME_CPU_LAYERPARTS_H

#include "mllm/kernels/cpu/Attention.h"
#include "mllm/runtime/cpu/Layer.h"

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
  Param<T> *add(std::string name, std::vector<int64_t> shape, ParamInit init,
                bool trainable);
  std::vector<Param<T> *> all() const;

private:
  std::vector<std::unique_ptr<Param<T>>> params;
};

/// y[rows, out] = x[rows, in] W^T + b, W [out, in] as nn.Linear.
template <typename T>
struct LinearPart {
  Param<T> *w = nullptr, *b = nullptr;
  int64_t in = 0, out = 0;

  /// Creates `wName` [out, in] and, when `bName` is not empty, `bName`.
  void create(ParamList<T> &list, const std::string &wName,
              const std::string &bName, int64_t in, int64_t out,
              bool trainable);
  void forward(const T *x, T *y, int64_t rows) const;
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
/// [2 ffn, hidden] as [gate | up].
template <typename T>
struct FfnPart {
  LinearPart<T> wIn, wOut;
  Activation act = Activation::Gelu;
  int64_t ffn = 0;

  struct Saved {
    Tensor<T> u, a; ///< pre-activation [rows, (2) ffn], activation [rows, ffn]
    Tensor<T> du;   ///< gradient of u (the gradient pass)
  };

  /// `prefix.w_in`, `prefix.b_in`, `prefix.w_out`, `prefix.b_out`.
  void create(ParamList<T> &list, const std::string &prefix, int64_t hidden,
              int64_t ffn, Activation act, bool bias, bool trainable);
  void forward(const T *x, T *y, Saved &saved, int64_t rows) const;
  /// Fills saved.du from dy; dx = du W_in (overwritten).
  void backward(const T *dy, Saved &saved, T *dx, int64_t rows) const;
  void backwardWeight(const T *x, const T *dy, const Saved &saved,
                      int64_t rows) const;
};

/// The sequences of a microbatch at one layer: count, tokens each, the
/// positions of one sequence and, for attention, the plan of its layout.
struct SequenceContext {
  int64_t sequences = 0, tokens = 0;
  std::vector<int64_t> positions;
  std::shared_ptr<const kernels::cpu::AttentionPlan> plan;
};

/// Checks `rows` == sequences * tokens and fills positions (0..tokens-1 when
/// the batch has none). With `attention`, also prepares the plan of the
/// batch's layout (an all-visible layout when it has none); with `alibi`,
/// checks that positions step by 1 within each sample (the kernel's ALiBi
/// distance is the token index difference).
template <typename T>
SequenceContext makeSequenceContext(const Batch<T> &batch, int64_t rows,
                                    bool attention, bool alibi,
                                    llvm::StringRef layer);

/// The ALiBi slopes of Press et al. for `heads` heads: 2^(-8 (i + 1) / n)
/// for head i of a power of two n, else the slopes of the next lower power of
/// two followed by every other slope of twice that.
std::vector<float> alibiSlopes(int64_t heads);

/// Multi-head self-attention with GQA: q/k/v linears, RoPE or ALiBi, the
/// bitfield attention kernel per sequence, the output linear.
template <typename T>
struct AttentionPart {
  LinearPart<T> wq, wk, wv, wo;
  int64_t heads = 0, kvHeads = 0, headDim = 0;
  bool rope = false, alibi = false;
  double ropeTheta = 0;
  std::vector<float> slopes;

  struct Saved {
    Tensor<T> q, k, v, o, lse; ///< q, k after RoPE; lse [seq, heads, tokens]
    Tensor<T> dq, dk, dv;      ///< gradients of the linears' outputs
  };

  /// wq, wk, wv, wo (+ bq, bk, bv when qkvBias, bo when outBias), all with
  /// `prefix` before the name.
  void create(ParamList<T> &list, const std::string &prefix, int64_t hidden,
              int64_t heads, int64_t kvHeads, int64_t headDim, bool qkvBias,
              bool outBias, llvm::StringRef position, double ropeTheta,
              bool trainable);
  kernels::cpu::AttentionHeads headsInfo() const;
  void forward(const T *x, T *y, const SequenceContext &seq,
               Saved &saved) const;
  /// Fills saved.dq/dk/dv from dy; dx = their input gradient (overwritten).
  void backward(const T *dy, const SequenceContext &seq, Saved &saved,
                T *dx) const;
  void backwardWeight(const T *x, const T *dy, const Saved &saved,
                      int64_t rows) const;
};

/// The common half of every layer: kind, config, parameters.
template <typename T>
class LayerBase : public Layer<T> {
public:
  LayerBase(llvm::StringRef kind, const LayerConfig &config, bool trainable)
      : kindName(kind.str()), config(config), trainable(trainable) {}
  llvm::StringRef kind() const override { return kindName; }
  std::vector<Param<T> *> params() override { return list.all(); }

protected:
  std::string kindName;
  LayerConfig config;
  bool trainable;
  ParamList<T> list;
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

// Factories of the layer kinds (one source file per kind or family).
template <typename T>
std::unique_ptr<Layer<T>> makeTokenEmbedding(const LayerConfig &c, bool train);
template <typename T>
std::unique_ptr<Layer<T>> makePatchEmbedding(const LayerConfig &c, bool train);
template <typename T>
std::unique_ptr<Layer<T>> makeAudioFrontend(const LayerConfig &c, bool train);
template <typename T>
std::unique_ptr<Layer<T>> makeTransformerBlock(const LayerConfig &c,
                                               bool train);
template <typename T>
std::unique_ptr<Layer<T>> makeConformerBlock(const LayerConfig &c, bool train);
template <typename T>
std::unique_ptr<Layer<T>> makeNorm(const LayerConfig &c, bool train);
template <typename T>
std::unique_ptr<Layer<T>> makeLMHead(const LayerConfig &c, bool train);
template <typename T>
std::unique_ptr<Layer<T>> makeLinearProjector(const LayerConfig &c, bool train);
template <typename T>
std::unique_ptr<Layer<T>> makeMlpProjector(const LayerConfig &c, bool train);
template <typename T>
std::unique_ptr<Layer<T>> makeAttentionPool(const LayerConfig &c, bool train);

} // namespace mllm::runtime::cpu

#endif // MLLM_RUNTIME_CPU_LAYERPARTS_H
