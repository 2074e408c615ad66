//===- CostModel.cpp - per-layer cost of a training step ------------------===//
//
// Analytic FLOPs, parameters, activation memory and memory traffic of every
// layer kind, a roofline for times, and measured profiles that override the
// roofline. docs/cost-model.md derives each formula; the comments here say
// only what the code cannot.
//
//===----------------------------------------------------------------------===//
#include "mllm/Plan/CostModel.h"
#include "mllm/Plan/Profile.h"

#include "llvm/ADT/STLExtras.h"

#include <algorithm>
#include <cmath>

using namespace mllm;
using namespace mllm::plan;
using model::LayerShape;

//===----------------------------------------------------------------------===//
// Analytic cost
//===----------------------------------------------------------------------===//

namespace {
/// Bytes of one token id: PyTorch and Megatron keep ids as int64.
constexpr double tokenIdBytes = 8;
/// Softmax statistics (log-sum-exp) and the LM head's logits are fp32
/// whatever the training precision.
constexpr double fp32Bytes = 4;

/// The kind-specific part of a layer's cost; `layerCost` derives the
/// backward and the roofline from it the same way for every kind.
struct Analytic {
  /// Parameters split into TP-sharded and replicated. The replicated part is
  /// whatever paramsPerLayer counts beyond the sharded one, so the two can
  /// never disagree with the parameter source of truth.
  double shardedParams = 0;
  double tiedParams = 0;  ///< Before sharding.
  double matmulFlops = 0; ///< Forward, this GPU's share.
  double attnFlops = 0;   ///< Forward, this GPU's share.
  double activationBytes = 0, inputBytes = 0, outputBytes = 0;
  /// Weight bytes one forward reads; all of them unless the layer is a
  /// lookup table. Negative means "params per GPU x elementBytes".
  double weightBytes = -1;
  /// False where the input is data (token ids, pixels, mel frames): no
  /// gradient can flow into it, whatever the frozen analysis says.
  bool inputIsActivation = true;
};

/// Dimensions of a transformer-style attention.
struct AttnDims {
  double q, kv; ///< Query width and key (= value) width.
};

AttnDims attnDims(const LayerShape &s) {
  return {double(s.heads * s.headDim), double(s.kvHeads * s.headDim)};
}

/// Weights of the Q, K, V and O projections.
double attnMatmulParams(const LayerShape &s) {
  AttnDims d = attnDims(s);
  return s.hidden * (d.q + 2 * d.kv) + d.q * s.hidden;
}

/// Forward FLOPs of the attention core, QK^T and PV, without causal halving:
/// every query of this GPU's tokens meets `span` keys.
double attnCoreFlops(double tokens, double span, double headDim, double heads,
                     double tp) {
  return 4 * tokens * span * headDim * heads / tp;
}

/// Attention FLOPs of this GPU: its share of the whole sequence's, or (the
/// even split) its own tokens against the span.
double gpuAttnFlops(const Workload &w, double span, double headDim,
                    double heads, double tp) {
  if (w.cpAttentionShare > 0)
    return attnCoreFlops(double(w.tokens), span, headDim, heads, tp) *
           w.cpAttentionShare;
  return attnCoreFlops(w.gpuTokens(), span, headDim, heads, tp);
}

Analytic analyze(LayerKind kind, const LayerShape &s, const Workload &w) {
  Analytic a;
  const double tp = std::max<int64_t>(w.tp, 1);
  const double eb = w.elementBytes;
  const double t = w.gpuTokens(); // This GPU's tokens.
  const double span = w.attentionSpan > 0 ? w.attentionSpan : w.tokens;
  const double h = s.hidden;

  switch (kind) {
  case LayerKind::TokenEmbedding: {
    // Vocab-parallel table; the learned position table is replicated.
    double vocabRows = double(s.vocab);
    a.shardedParams = vocabRows * h;
    a.inputBytes = t * tokenIdBytes;
    a.outputBytes = t * h * eb;
    a.activationBytes = a.inputBytes; // The ids, for the scatter-add.
    a.weightBytes =
        (std::min(t, vocabRows / tp) + std::min(t, double(s.positions))) * h *
        eb;
    a.inputIsActivation = false;
    break;
  }
  case LayerKind::PatchEmbedding: {
    // A stride = kernel convolution is one matmul per patch. Replicated, as
    // Megatron does for vision encoders.
    double k = double(s.channels) * s.temporalPatch * s.patch * s.patch;
    a.matmulFlops = 2 * k * h * t;
    a.inputBytes = t * k * eb;
    a.outputBytes = t * h * eb;
    a.activationBytes = a.inputBytes;
    a.inputIsActivation = false;
    break;
  }
  case LayerKind::AudioFrontend: {
    // Whisper's frontend: conv(k=3, stride 1) over 2t mel frames, GELU,
    // conv(k=3, stride 2) down to the encoder's t tokens, GELU. Replicated.
    double mel = s.melBins;
    a.matmulFlops = 2 * 3 * mel * h * (2 * t) + 2 * 3 * h * h * t;
    a.inputBytes = 2 * t * mel * eb;
    a.outputBytes = t * h * eb;
    // Conv inputs and GELU inputs: 2t x mel, 2t x h (conv1 out),
    // 2t x h (conv2 in), t x h (conv2 out).
    a.activationBytes = t * (2 * mel + 5 * h) * eb;
    a.inputIsActivation = false;
    break;
  }
  case LayerKind::TransformerBlock: {
    AttnDims d = attnDims(s);
    double ffnMats = (s.gated ? 3 : 2) * h * s.ffn;
    // Megatron's column-parallel Q/K/V and FFN-in (weights and biases) and
    // row-parallel O and FFN-out (weights only; their biases and the norms
    // are replicated).
    a.shardedParams = attnMatmulParams(s) + ffnMats;
    if (s.qkvBias)
      a.shardedParams += d.q + 2 * d.kv;
    if (s.bias)
      a.shardedParams += (s.gated ? 2 : 1) * double(s.ffn);
    a.matmulFlops = 2 * (attnMatmulParams(s) + ffnMats) * t / tp;
    a.attnFlops = gpuAttnFlops(w, span, s.headDim, s.heads, tp);
    a.inputBytes = a.outputBytes = t * h * eb;
    // Per token: replicated norm-1 input, QKV input, norm-2 input, FFN
    // input (4h); sharded Q, K, V, attention output (2q + 2kv) and the FFN
    // intermediates (2 or 3 x ffn); fp32 log-sum-exp per head.
    double replicated = 4 * h;
    double sharded = 2 * d.q + 2 * d.kv + (s.gated ? 3 : 2) * double(s.ffn);
    a.activationBytes =
        t * (replicated + sharded / tp) * eb + t * (s.heads / tp) * fp32Bytes;
    break;
  }
  case LayerKind::ConformerBlock: {
    AttnDims d = attnDims(s);
    double ffnMats = 2 * (2 * h * s.ffn); // Two half-step FFNs.
    // The convolution module (pointwise h->2h, depthwise, pointwise h->h)
    // stays replicated; the depthwise kernel counts like a matmul weight
    // (each weight meets each token once).
    double convMats = 2 * h * h + h * s.convKernel + h * h;
    a.shardedParams = attnMatmulParams(s) + ffnMats;
    if (s.qkvBias)
      a.shardedParams += d.q + 2 * d.kv;
    if (s.bias)
      a.shardedParams += 2 * double(s.ffn);
    a.matmulFlops =
        2 * (attnMatmulParams(s) + ffnMats) * t / tp + 2 * convMats * t;
    a.attnFlops = gpuAttnFlops(w, span, s.headDim, s.heads, tp);
    a.inputBytes = a.outputBytes = t * h * eb;
    // Replicated: two FFNs' norm and FFN inputs (4h), attention norm and
    // QKV inputs (2h), the convolution module's eight h-wide tensors (norm
    // in, pw1 in, 2h GLU in, depthwise in, BN in, swish in, pw2 in) and the
    // final norm input (h). Sharded: Q, K, V, attention output and the two
    // FFNs' intermediates.
    double replicated = 15 * h;
    double sharded = 2 * d.q + 2 * d.kv + 4 * double(s.ffn);
    a.activationBytes =
        t * (replicated + sharded / tp) * eb + t * (s.heads / tp) * fp32Bytes;
    break;
  }
  case LayerKind::Norm:
    // Elementwise: no matmul FLOPs; the roofline's memory term times it.
    a.inputBytes = a.outputBytes = t * h * eb;
    a.activationBytes = a.inputBytes;
    break;
  case LayerKind::LMHead: {
    // Vocab-parallel; includes the softmax cross-entropy, which keeps fp32
    // logits for backward (Megatron's 4 x s x b x v / t).
    double mat = double(s.vocab) * h;
    a.shardedParams = model::paramsPerLayer(kind, s);
    a.tiedParams = s.tied ? mat : 0;
    a.matmulFlops = 2 * mat * t / tp;
    a.inputBytes = t * h * eb;
    a.outputBytes = t * (s.vocab / tp) * eb;
    a.activationBytes = a.inputBytes + t * (s.vocab / tp) * fp32Bytes;
    a.weightBytes = mat / tp * eb; // Read even when tied.
    break;
  }
  case LayerKind::Linear:
    // Column-parallel weight and bias.
    a.shardedParams = double(s.in) * s.out + s.out;
    a.matmulFlops = 2 * double(s.in) * s.out * t / tp;
    a.inputBytes = t * s.in * eb;
    a.outputBytes = t * s.out * eb;
    a.activationBytes = a.inputBytes;
    break;
  case LayerKind::MLP: {
    // Like a transformer FFN: column-parallel fc1 (weight, bias),
    // row-parallel fc2 (weight; its bias is replicated).
    double mats = double(s.in) * h + h * s.out;
    a.shardedParams = mats + h;
    a.matmulFlops = 2 * mats * t / tp;
    a.inputBytes = t * s.in * eb;
    a.outputBytes = t * s.out * eb;
    // Input (replicated), pre-activation and activation output (sharded).
    a.activationBytes = t * (s.in + 2 * h / tp) * eb;
    break;
  }
  case LayerKind::AttentionPool: {
    // SigLIP's MAP head: one learned probe per item attends over the item's
    // `span` tokens. K and V run on every token; Q, O and the MLP on one
    // probe per item.
    double items = t / span;
    double f = s.ffn;
    a.shardedParams = 4 * h * h + 3 * h + h * f + f + f * h;
    a.matmulFlops =
        2 * (2 * h * h) * t / tp + 2 * (2 * h * h + 2 * h * f) * items / tp;
    a.attnFlops = attnCoreFlops(items, span, h / std::max<int64_t>(s.heads, 1),
                                std::max<int64_t>(s.heads, 1), tp);
    a.inputBytes = t * h * eb;
    a.outputBytes = items * h * eb;
    // Input (replicated), K and V (sharded); per probe: norm and MLP inputs
    // (replicated), Q, attention output and MLP intermediates (sharded),
    // fp32 log-sum-exp.
    a.activationBytes =
        (t * (h + 2 * h / tp) + items * (2 * h + (2 * h + 2 * f) / tp)) * eb +
        items * (std::max<int64_t>(s.heads, 1) / tp) * fp32Bytes;
    break;
  }
  }
  return a;
}

} // namespace

double Workload::gpuTokens() const {
  if (cpTokens > 0)
    return double(cpTokens);
  return double(tokens) / double(std::max<int64_t>(cp, 1));
}

double Workload::attentionShare() const {
  return cpAttentionShare > 0 ? cpAttentionShare
                              : 1.0 / double(std::max<int64_t>(cp, 1));
}

double plan::rooflineTime(double flops, double bytes, const Device &device) {
  double eff =
      device.efficiency > 0 && device.efficiency <= 1 ? device.efficiency : 1.0;
  double compute = flops > 0 && device.peakFlops > 0
                       ? flops / (device.peakFlops * eff)
                       : 0.0;
  double memory = bytes > 0 && device.memoryBandwidth > 0
                      ? bytes / device.memoryBandwidth
                      : 0.0;
  return std::max(compute, memory);
}

double plan::backwardTime(const LayerCost &cost, bool needsWeightGrad,
                          bool needsInputGrad, bool recomputes) {
  return (needsWeightGrad ? cost.wgrad : 0) +
         (needsInputGrad ? cost.igrad : 0) + (recomputes ? cost.fwd : 0);
}

LayerCost plan::layerCost(LayerKind kind, const LayerShape &shape,
                          const Workload &workload, const Device &device,
                          const Profile *profile) {
  Analytic a = analyze(kind, shape, workload);
  const double tp = std::max<int64_t>(workload.tp, 1);
  const double eb = workload.elementBytes;
  const double total = double(model::paramsPerLayer(kind, shape));

  LayerCost c;
  c.params = total - a.shardedParams + a.shardedParams / tp;
  c.tiedParams = a.tiedParams / tp;
  c.attnFlops = a.attnFlops;
  c.fwdFlops = a.matmulFlops + a.attnFlops;
  // Weight gradients repeat each forward matmul once (dW = X^T dY). A tied
  // head still computes them, into the embedding's gradient.
  c.wgradFlops = a.matmulFlops;
  // Input gradients repeat each matmul once (dX = dY W^T); the attention
  // core's backward (dP, dS->dQ, dK, dV) is four products against the
  // forward's two, so fwd + wgrad + igrad = 3 x fwd, the usual accounting.
  c.igradFlops = a.inputIsActivation ? a.matmulFlops + 2 * a.attnFlops : 0;
  c.activationBytes = a.activationBytes;
  c.inputBytes = a.inputBytes;
  c.outputBytes = a.outputBytes;

  double weightBytes = a.weightBytes >= 0 ? a.weightBytes : c.params * eb;
  bool hasWeights = c.params > 0 || c.tiedParams > 0;
  c.fwdBytes = weightBytes + a.inputBytes + a.activationBytes + a.outputBytes;
  c.wgradBytes =
      hasWeights ? weightBytes + a.activationBytes + a.outputBytes : 0;
  c.igradBytes = a.inputIsActivation ? weightBytes + a.activationBytes +
                                           a.outputBytes + a.inputBytes
                                     : 0;

  if (profile)
    if (std::optional<LayerCost> measured =
            profile->lookup(kind, shape, workload)) {
      c.fwd = measured->fwd;
      c.wgrad = measured->wgrad;
      c.igrad = measured->igrad;
      return c;
    }
  c.fwd = rooflineTime(c.fwdFlops, c.fwdBytes, device);
  c.wgrad = rooflineTime(c.wgradFlops, c.wgradBytes, device);
  c.igrad = rooflineTime(c.igradFlops, c.igradBytes, device);
  auto [fwdComm, igradComm] = collectiveTimes(
      kind, shape, workload, device, rooflineTime(a.attnFlops, 0, device),
      rooflineTime(2 * a.attnFlops, 0, device), a.inputIsActivation);
  c.fwdComm = fwdComm;
  c.igradComm = igradComm;
  c.fwd += c.fwdComm;
  c.igrad += c.igradComm;
  return c;
}
