//===- DeviceLayers.cpp - the layers' forward and backward on the device --===//
//
// The CPU layers' compositions (runtime/lib/CPU: TransformerBlock,
// AttentionPart, FfnPart, NormPart, LMHead, TokenEmbedding) on the CUDA
// kernels, in the same order and with the same parameters: a pre-norm
// block h = x + Attn(Norm1(x)) + bo, y = h + FFN(Norm2(h)), linears
// y = x W^T + b with W [out, in], RoPE on q and k, the LM head's loss sum x
// lossScale. Residual sums are the GEMM's beta = 1 (forward) or addInPlace
// (backward). A frozen layer skips its weight gradients (its norms write
// theirs to a discarded buffer), a layer whose input gradient nobody needs
// stops the backward of its chain.
//
//===----------------------------------------------------------------------===//
#include "DeviceImpl.h"

#include "mllm/runtime/cpu/ParallelParts.h"

#include <algorithm>
#include <cmath>
#include <limits>

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::device;
namespace kc = mllm::kernels::cuda;

static constexpr float kNormEps = 1e-5f; // cpu::NormPart::kEps

llvm::Error DeviceTrainer::Impl::linear(const bf16 *x, const DeviceParam &w,
                                        bf16 *y, int64_t rows, int64_t in,
                                        int64_t out, float beta) {
  kc::GemmShape s;
  s.transB = true;
  s.m = rows, s.n = out, s.k = in;
  s.lda = in, s.ldb = in, s.ldc = out;
  return check(gemm.run(s, 1.0f, x, w.value, beta, y, stream),
               "x W^T of '" + w.name + "'");
}

llvm::Error DeviceTrainer::Impl::linearInput(const bf16 *dy,
                                             const DeviceParam &w, bf16 *dx,
                                             int64_t rows, int64_t in,
                                             int64_t out, float beta) {
  kc::GemmShape s;
  s.m = rows, s.n = in, s.k = out;
  s.lda = out, s.ldb = in, s.ldc = in;
  return check(gemm.run(s, 1.0f, dy, w.value, beta, dx, stream),
               "dy W of '" + w.name + "'");
}

llvm::Error DeviceTrainer::Impl::linearWeight(const bf16 *x, const bf16 *dy,
                                              DeviceParam &w, int64_t rows,
                                              int64_t in, int64_t out) {
  if (!w.trains)
    return llvm::Error::success();
  kc::GemmShape s;
  s.transA = true;
  s.m = out, s.n = in, s.k = rows;
  s.lda = out, s.ldb = in, s.ldc = in;
  return check(gemm.run(s, 1.0f, dy, x, 1.0f, w.grad, stream),
               "the weight gradient of '" + w.name + "'");
}

llvm::Error DeviceTrainer::Impl::addBias(bf16 *y, const DeviceParam *b,
                                         int64_t rows, int64_t out) {
  if (!b)
    return llvm::Error::success();
  return check(kc::addRowVector(y, b->value, rows, out, stream),
               "adding '" + b->name + "'");
}

llvm::Error DeviceTrainer::Impl::biasGrad(const bf16 *dy, DeviceParam *b,
                                          int64_t rows, int64_t out) {
  if (!b || !b->trains)
    return llvm::Error::success();
  return check(kc::sumRows(dy, b->grad, rows, out, stream),
               "the gradient of '" + b->name + "'");
}

Status device::activationForward(const std::string &name, const bf16 *in,
                                 bf16 *out, int64_t rows, int64_t width,
                                 cudaStream_t stream) {
  if (name == "swiglu")
    return kc::swigluForward(in, out, rows, width, stream);
  if (name == "geglu")
    return kc::gegluForward(in, out, rows, width, stream);
  if (name == "relu")
    return kc::reluForward(in, out, rows * width, stream);
  if (name == "silu")
    return kc::siluForward(in, out, rows * width, stream);
  return kc::geluForward(in, out, rows * width, stream);
}

Status device::activationBackward(const std::string &name, const bf16 *in,
                                  const bf16 *dOut, bf16 *dIn, int64_t rows,
                                  int64_t width, cudaStream_t stream) {
  if (name == "swiglu")
    return kc::swigluBackward(in, dOut, dIn, rows, width, stream);
  if (name == "geglu")
    return kc::gegluBackward(in, dOut, dIn, rows, width, stream);
  if (name == "relu")
    return kc::reluBackward(in, dOut, dIn, rows * width, stream);
  if (name == "silu")
    return kc::siluBackward(in, dOut, dIn, rows * width, stream);
  return kc::geluBackward(in, dOut, dIn, rows * width, stream);
}

Norm device::normOf(const DeviceLayer &l, const std::string &prefix) {
  auto it = l.params.find(prefix + "bias");
  return {l.param(prefix + "weight"),
          it == l.params.end() ? nullptr : it->second};
}

Status device::normForward(const Norm &n, const bf16 *x, bf16 *y, float *mean,
                           float *rstd, int64_t rows, int64_t dim,
                           cudaStream_t stream) {
  if (n.b)
    return kc::layerNormForward(x, n.w.value, n.b->value, y, mean, rstd, rows,
                                dim, kNormEps, stream);
  return kc::rmsNormForward(x, n.w.value, y, rstd, rows, dim, kNormEps, stream);
}

Status device::normBackward(const Norm &n, const bf16 *dy, const bf16 *x,
                            const float *mean, const float *rstd, bf16 *dx,
                            int64_t rows, int64_t dim, float *discard,
                            cudaStream_t stream) {
  float *dw = n.w.trains ? n.w.grad : discard;
  if (n.b)
    return kc::layerNormBackward(dy, x, n.w.value, mean, rstd, dx, dw,
                                 n.b->trains ? n.b->grad : discard + dim, rows,
                                 dim, stream);
  return kc::rmsNormBackward(dy, x, n.w.value, rstd, dx, dw, rows, dim, stream);
}

kc::AttentionHeads device::headsOf(const LayerConfig &c) {
  kc::AttentionHeads h;
  h.heads = c.heads;
  h.kvHeads = c.kvHeads;
  h.headDim = c.headDim;
  h.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.headDim)));
  return h;
}

llvm::Error DeviceTrainer::Impl::tpSum(bf16 *data, int64_t count,
                                       const llvm::Twine &what) {
  if (llvm::Error e = tp->allReduceSum(data, count, stream))
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "TP all-reduce of " + what + ": " +
                                       llvm::toString(std::move(e)));
  return llvm::Error::success();
}

namespace {

llvm::Error copy(bf16 *to, const bf16 *from, int64_t n, cudaStream_t stream) {
  cudaError_t rc = cudaMemcpyAsync(to, from, n * sizeof(bf16),
                                   cudaMemcpyDeviceToDevice, stream);
  return check(rc == cudaSuccess ? Status()
                                 : Status::error(cudaGetErrorString(rc)),
               "copying the residual stream");
}

} // namespace

llvm::Error DeviceTrainer::Impl::forwardLayer(DeviceLayer &l, bf16 *out,
                                              double *lossSum) {
  const LayerConfig &c = l.config;
  const int64_t R = l.rows, H = c.hidden;
  auto at = [&](const char *what) { return "'" + l.name + "' " + what; };
  switch (l.kind) {
  case LayerKind::Embedding: {
    // A vocab-parallel shard writes its ids' rows and zeros elsewhere;
    // the sum over the group has every row.
    if (l.split) {
      MLLM_TRY(check(
          kc::embeddingForwardSlice(batch.ids, l.param("weight").value, out, R,
                                    H, l.vocabFirst, c.vocab, stream),
          at("forward")));
      MLLM_TRY(tpSum(out, R * H, at("rows")));
    } else {
      MLLM_TRY(check(kc::embeddingForward(batch.ids, l.param("weight").value,
                                          out, R, H, stream),
                     at("forward")));
    }
    const DeviceParam *pos = l.maybe("pos_weight");
    if (!pos)
      return llvm::Error::success();
    // The position rows, gathered into the workspace, then added.
    MLLM_TRY(check(kc::embeddingForward(batch.positionIds, pos->value,
                                        scratch.dx, R, H, stream),
                   at("positions")));
    return check(kc::addInPlace(out, scratch.dx, R * H, stream),
                 at("positions"));
  }
  case LayerKind::Norm:
    return check(
        normForward(normOf(l, ""), l.x, out, l.mean1, l.rstd1, R, H, stream),
        at("forward"));
  case LayerKind::Head: {
    const DeviceParam &w = l.param("weight");
    MLLM_TRY(linear(l.x, w, l.logits, R, H, c.vocab));
    if (evaluating)
      return evaluationHead(l);
    if (generating)
      return generationHead(l);
    if (l.split)
      MLLM_TRY(vocabParallelLoss(l));
    else
      MLLM_TRY(check(kc::crossEntropyForward(l.logits, batch.targets, l.rowLse,
                                             scratch.lossSum, scratch.count, R,
                                             c.vocab, stream),
                     at("loss")));
    // Read back after the step's last microbatch (pinned memory: the
    // copy runs in stream order, nothing waits for it here).
    cudaError_t rc = cudaMemcpyAsync(lossSum, scratch.lossSum, sizeof(double),
                                     cudaMemcpyDeviceToHost, stream);
    return check(rc == cudaSuccess ? Status()
                                   : Status::error(cudaGetErrorString(rc)),
                 at("loss"));
  }
  case LayerKind::Block:
    break;
  case LayerKind::Conformer:
    return conformerForward(l, out);
  default:
    return forwardEncoderLayer(l, out);
  }
  const int64_t in = (l.gated ? 2 : 1) * c.ffn;
  Norm n1 = normOf(l, "norm1."), n2 = normOf(l, "norm2.");
  MLLM_TRY(check(normForward(n1, l.x, l.xn1, l.mean1, l.rstd1, R, H, stream),
                 at("norm1")));
  MLLM_TRY(attentionForward(l, l.xn1, l.x, l.h));
  MLLM_TRY(check(normForward(n2, l.h, l.xn2, l.mean2, l.rstd2, R, H, stream),
                 at("norm2")));
  MLLM_TRY(linear(l.xn2, l.param("ffn.w_in"), l.u, R, H, in));
  MLLM_TRY(addBias(l.u, l.maybe("ffn.b_in"), R, in));
  MLLM_TRY(check(activationForward(c.activation, l.u, l.a, R, c.ffn, stream),
                 at("activation")));
  MLLM_TRY(rowParallel(l, l.a, l.param("ffn.w_out"), l.h, out, c.ffn));
  return addBias(out, l.maybe("ffn.b_out"), R, H);
}

llvm::Error DeviceTrainer::Impl::backwardLayer(DeviceLayer &l) {
  Scratch &g = scratch;
  const LayerConfig &c = l.config;
  const int64_t R = l.rows, H = c.hidden;
  auto at = [&](const char *what) { return "'" + l.name + "' " + what; };
  switch (l.kind) {
  case LayerKind::Head: {
    DeviceParam &w = l.param("weight");
    // Softmax minus one-hot over this rank's vocabulary (all of it
    // without TP), from the lse of the whole.
    MLLM_TRY(check(kc::crossEntropySliceBackward(
                       l.logits, batch.targets, l.rowLse, g.dlogits,
                       static_cast<float>(batch.lossScale), R, c.vocab,
                       l.vocabFirst, stream),
                   at("loss gradient")));
    MLLM_TRY(linearWeight(l.x, g.dlogits, w, R, H, c.vocab));
    if (!l.inputGrad)
      return llvm::Error::success();
    MLLM_TRY(linearInput(g.dlogits, w, g.dy, R, H, c.vocab));
    return l.split ? tpSum(g.dy, R * H, at("input gradient"))
                   : llvm::Error::success();
  }
  case LayerKind::Norm:
    MLLM_TRY(check(normBackward(normOf(l, ""), g.dy, l.x, l.mean1, l.rstd1,
                                g.dx, R, H, g.discard, stream),
                   at("backward")));
    std::swap(g.dy, g.dx);
    return llvm::Error::success();
  case LayerKind::Embedding: {
    // Each table on its own (a frozen token table, a trained position one).
    if (DeviceParam &w = l.param("weight"); w.trains)
      MLLM_TRY(check(
          kc::embeddingBackward(batch.embeddingGrad, g.dy, w.grad, H, stream),
          at("backward")));
    if (DeviceParam *pos = l.maybe("pos_weight"); pos && pos->trains)
      MLLM_TRY(check(
          kc::embeddingBackward(batch.positionGrad, g.dy, pos->grad, H, stream),
          at("position gradient")));
    return llvm::Error::success();
  }
  case LayerKind::Block:
    break;
  case LayerKind::Conformer:
    return conformerBackward(l);
  default:
    return backwardEncoderLayer(l);
  }
  const int64_t in = (l.gated ? 2 : 1) * c.ffn;
  DeviceParam &wIn = l.param("ffn.w_in"), &wOut = l.param("ffn.w_out");
  // The feed-forward: dy is the gradient of y = h + FFN(Norm2(h)).
  MLLM_TRY(linearInput(g.dy, wOut, g.da, R, c.ffn, H));
  MLLM_TRY(linearWeight(l.a, g.dy, wOut, R, c.ffn, H));
  MLLM_TRY(biasGrad(g.dy, l.maybe("ffn.b_out"), R, H));
  MLLM_TRY(
      check(activationBackward(c.activation, l.u, g.da, g.du, R, c.ffn, stream),
            at("activation gradient")));
  MLLM_TRY(linearInput(g.du, wIn, g.dxn, R, H, in));
  MLLM_TRY(linearWeight(l.xn2, g.du, wIn, R, H, in));
  MLLM_TRY(biasGrad(g.du, l.maybe("ffn.b_in"), R, in));
  // Column-parallel: each shard's part of the norm's output gradient.
  if (l.split)
    MLLM_TRY(tpSum(g.dxn, R * H, at("feed-forward input gradient")));
  MLLM_TRY(check(normBackward(normOf(l, "norm2."), g.dxn, l.h, l.mean2, l.rstd2,
                              g.dh, R, H, g.discard, stream),
                 at("norm2 gradient")));
  MLLM_TRY(check(kc::addInPlace(g.dh, g.dy, R * H, stream),
                 at("residual gradient")));
  // The attention: dh is the gradient of h = x + Attn(Norm1(x)).
  const bool below = l.inputGrad || normOf(l, "norm1.").w.trains;
  MLLM_TRY(attentionBackward(l, g.dh, l.xn1, below));
  if (!below)
    return llvm::Error::success();
  if (l.split)
    MLLM_TRY(tpSum(g.dxn, R * H, at("attention input gradient")));
  MLLM_TRY(check(normBackward(normOf(l, "norm1."), g.dxn, l.x, l.mean1, l.rstd1,
                              g.dx, R, H, g.discard, stream),
                 at("norm1 gradient")));
  MLLM_TRY(check(kc::addInPlace(g.dx, g.dh, R * H, stream),
                 at("residual gradient")));
  std::swap(g.dy, g.dx);
  return llvm::Error::success();
}

llvm::Error DeviceTrainer::Impl::attentionForward(DeviceLayer &l,
                                                  const bf16 *xn,
                                                  const bf16 *residual,
                                                  bf16 *y) {
  const LayerConfig &c = l.config;
  const Sequences &sq = *l.seq;
  const int64_t R = l.rows, H = c.hidden, S = sq.sequences, n = sq.tokens;
  const int64_t N = sq.keys, qw = c.heads * c.headDim,
                kw = c.kvHeads * c.headDim;
  auto at = [&](const char *what) { return "'" + l.name + "' " + what; };
  // Under CP this rank's keys and values go to the workspace and every
  // rank's are gathered into l.k and l.v while the queries are computed.
  const bool gathered = cp && l.seq == &batch;
  bf16 *ownK = gathered ? scratch.dk : l.k, *ownV = gathered ? scratch.dv : l.v;
  MLLM_TRY(linear(xn, l.param("wk"), ownK, R, H, kw));
  MLLM_TRY(addBias(ownK, l.maybe("bk"), R, kw));
  MLLM_TRY(linear(xn, l.param("wv"), ownV, R, H, kw));
  MLLM_TRY(addBias(ownV, l.maybe("bv"), R, kw));
  for (int64_t s = 0; s < S && l.rope; ++s) {
    bf16 *k = ownK + s * n * kw;
    MLLM_TRY(check(kc::ropeForward(k, k, sq.positions, n, c.kvHeads, c.headDim,
                                   c.ropeTheta, stream),
                   at("RoPE")));
  }
  if (gathered) {
    MLLM_TRY(postKeyExchange(l, ownK, scratch.kStage, kw, /*gather=*/true));
    MLLM_TRY(postKeyExchange(l, ownV, scratch.vStage, kw, /*gather=*/true));
  }
  MLLM_TRY(linear(xn, l.param("wq"), l.q, R, H, qw));
  MLLM_TRY(addBias(l.q, l.maybe("bq"), R, qw));
  for (int64_t s = 0; s < S && l.rope; ++s) {
    bf16 *q = l.q + s * n * qw;
    MLLM_TRY(check(kc::ropeForward(q, q, sq.positions, n, c.heads, c.headDim,
                                   c.ropeTheta, stream),
                   at("RoPE")));
  }
  if (gathered) {
    MLLM_TRY(joinKeyExchange(l, "K and V"));
    MLLM_TRY(placeKeys(l, scratch.kStage, l.k, kw, /*toKeys=*/true));
    MLLM_TRY(placeKeys(l, scratch.vStage, l.v, kw, /*toKeys=*/true));
  }
  kc::AttentionHeads heads = headsOf(c);
  heads.alibiSlopes = l.slopes;
  for (int64_t s = 0; s < S; ++s) {
    kc::AttentionOptions options;
    options.stream = stream;
    options.kernel = attentionKernel;
    MLLM_TRY(check(kc::attentionForward(sq.attention, heads, l.q + s * n * qw,
                                        l.k + s * N * kw, l.v + s * N * kw,
                                        l.o + s * n * qw,
                                        l.lse + s * c.heads * n, options),
                   at("attention")));
  }
  MLLM_TRY(rowParallel(l, l.o, l.param("wo"), residual, y, qw));
  return addBias(y, l.maybe("bo"), R, H);
}

llvm::Error DeviceTrainer::Impl::attentionBackward(DeviceLayer &l,
                                                   const bf16 *dy,
                                                   const bf16 *xn,
                                                   bool inputGrad) {
  Scratch &g = scratch;
  const LayerConfig &c = l.config;
  const Sequences &sq = *l.seq;
  const int64_t R = l.rows, H = c.hidden, S = sq.sequences, n = sq.tokens;
  const int64_t N = sq.keys, qw = c.heads * c.headDim,
                kw = c.kvHeads * c.headDim;
  auto at = [&](const char *what) { return "'" + l.name + "' " + what; };
  // Under CP the kernel writes dK and dV of every rank's keys; this rank's
  // come back summed over the ranks.
  const bool gathered = cp && l.seq == &batch;
  bf16 *dk = gathered ? g.dkAll : g.dk, *dv = gathered ? g.dvAll : g.dv;
  DeviceParam &wo = l.param("wo");
  MLLM_TRY(linearInput(dy, wo, g.dO, R, qw, H));
  MLLM_TRY(linearWeight(l.o, dy, wo, R, qw, H));
  MLLM_TRY(biasGrad(dy, l.maybe("bo"), R, H));
  kc::AttentionHeads heads = headsOf(c);
  heads.alibiSlopes = l.slopes;
  for (int64_t s = 0; s < S; ++s) {
    const int64_t qo = s * n * qw, ko = s * N * kw;
    kc::AttentionOptions options;
    options.stream = stream;
    options.kernel = attentionKernel;
    MLLM_TRY(check(kc::attentionBackward(sq.attention, heads, l.q + qo,
                                         l.k + ko, l.v + ko, l.o + qo,
                                         l.lse + s * c.heads * n, g.dO + qo,
                                         g.dq + qo, dk + ko, dv + ko, options),
                   at("attention gradient")));
  }
  // Under CP this rank's dK and dV are summed over the ranks while the
  // queries' gradients are computed.
  if (gathered) {
    MLLM_TRY(placeKeys(l, g.kStage, g.dkAll, kw, /*toKeys=*/false));
    MLLM_TRY(postKeyExchange(l, g.kStage, g.dk, kw, /*gather=*/false));
    MLLM_TRY(placeKeys(l, g.vStage, g.dvAll, kw, /*toKeys=*/false));
    MLLM_TRY(postKeyExchange(l, g.vStage, g.dv, kw, /*gather=*/false));
  }
  DeviceParam &wq = l.param("wq"), &wk = l.param("wk"), &wv = l.param("wv");
  for (int64_t s = 0; s < S && l.rope; ++s) {
    bf16 *dq = g.dq + s * n * qw;
    MLLM_TRY(check(kc::ropeBackward(dq, dq, sq.positions, n, c.heads, c.headDim,
                                    c.ropeTheta, stream),
                   at("RoPE gradient")));
  }
  MLLM_TRY(biasGrad(g.dq, l.maybe("bq"), R, qw));
  MLLM_TRY(linearWeight(xn, g.dq, wq, R, H, qw));
  if (inputGrad)
    MLLM_TRY(linearInput(g.dq, wq, g.dxn, R, H, qw));
  if (gathered)
    MLLM_TRY(joinKeyExchange(l, "dK and dV"));
  for (int64_t s = 0; s < S && l.rope; ++s) {
    bf16 *dk = g.dk + s * n * kw;
    MLLM_TRY(check(kc::ropeBackward(dk, dk, sq.positions, n, c.kvHeads,
                                    c.headDim, c.ropeTheta, stream),
                   at("RoPE gradient")));
  }
  MLLM_TRY(biasGrad(g.dk, l.maybe("bk"), R, kw));
  MLLM_TRY(biasGrad(g.dv, l.maybe("bv"), R, kw));
  MLLM_TRY(linearWeight(xn, g.dk, wk, R, H, kw));
  MLLM_TRY(linearWeight(xn, g.dv, wv, R, H, kw));
  if (!inputGrad)
    return llvm::Error::success();
  MLLM_TRY(linearInput(g.dk, wk, g.dxn, R, H, kw, 1.0f));
  return linearInput(g.dv, wv, g.dxn, R, H, kw, 1.0f);
}

llvm::Error DeviceTrainer::Impl::rowParallel(DeviceLayer &l, const bf16 *x,
                                             const DeviceParam &w,
                                             const bf16 *residual, bf16 *y,
                                             int64_t in) {
  const int64_t R = l.rows, H = l.config.hidden;
  if (!l.split) {
    MLLM_TRY(copy(y, residual, R * H, stream));
    return linear(x, w, y, R, in, H, 1.0f);
  }
  // The shards' partial products are summed before the residual joins.
  MLLM_TRY(linear(x, w, y, R, in, H));
  MLLM_TRY(tpSum(y, R * H, "'" + l.name + "' output of '" + w.name + "'"));
  return check(kc::addInPlace(y, residual, R * H, stream),
               "'" + l.name + "' residual");
}

llvm::Error DeviceTrainer::Impl::vocabParallelLoss(DeviceLayer &l) {
  // As cpu::vocabParallelCrossEntropyForward: the rows' maxima over the
  // group, then their sums of exp and the target logits in one all-reduce.
  const int64_t R = l.rows, V = l.config.vocab;
  Scratch &g = scratch;
  auto at = [&](const char *what) { return "'" + l.name + "' " + what; };
  MLLM_TRY(check(kc::crossEntropyRowMax(l.logits, g.rowMax, R, V, stream),
                 at("row maxima")));
  if (llvm::Error e = tp->allReduceMax(g.rowMax, R, stream))
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   at("TP all-reduce of the row maxima: ") +
                                       llvm::toString(std::move(e)));
  MLLM_TRY(
      check(kc::crossEntropySliceSums(l.logits, batch.targets, g.rowMax,
                                      g.ceSums, R, V, l.vocabFirst, stream),
            at("loss sums")));
  if (llvm::Error e = tp->allReduceSum(g.ceSums, 2 * R, stream))
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   at("TP all-reduce of the loss sums: ") +
                                       llvm::toString(std::move(e)));
  return check(kc::crossEntropyFromSums(g.rowMax, g.ceSums, batch.targets,
                                        l.rowLse, g.lossSum, g.count, R,
                                        stream),
               at("loss"));
}

llvm::Error DeviceTrainer::Impl::evaluationHead(DeviceLayer &l) {
  const int64_t R = l.rows, V = l.config.vocab;
  auto at = [&](const char *what) { return "'" + l.name + "' " + what; };
  auto collective = [&](llvm::Error e, const char *what) -> llvm::Error {
    if (!e)
      return e;
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   at(what) + llvm::toString(std::move(e)));
  };
  MLLM_TRY(check(evalRowMax.allocate(static_cast<size_t>(R)),
                 at("evaluation's row maxima")));
  MLLM_TRY(check(evalSums.allocate(static_cast<size_t>(2 * R)),
                 at("evaluation's sums")));
  MLLM_TRY(check(evalArgmax.allocate(static_cast<size_t>(R)),
                 at("evaluation's predictions")));
  MLLM_TRY(check(kc::rowArgmax(l.logits, evalArgmax.data(), R, V, stream),
                 at("predictions")));
  MLLM_TRY(
      check(kc::crossEntropyRowMax(l.logits, evalRowMax.data(), R, V, stream),
            at("row maxima")));
  // The earlier layers' TP and CP collectives, with their deadlines, before
  // the host waits for the stream.
  MLLM_TRY(finishCollectives(at("evaluation: ")));
  if (l.split) {
    // This shard's maxima, to tell where the whole row's maximum is.
    MLLM_TRY(check(evalRowMax.download(evalLocalMax, stream),
                   at("evaluation's row maxima")));
    MLLM_TRY(collective(tp->allReduceMax(evalRowMax.data(), R, stream),
                        "TP all-reduce of the row maxima: "));
  }
  MLLM_TRY(check(kc::crossEntropySliceSums(
                     l.logits, batch.targets, evalRowMax.data(),
                     evalSums.data(), R, V, l.split ? l.vocabFirst : 0, stream),
                 at("loss sums")));
  if (l.split) {
    MLLM_TRY(collective(tp->allReduceSum(evalSums.data(), 2 * R, stream),
                        "TP all-reduce of the loss sums: "));
    // With its deadline, before the host waits for the stream.
    MLLM_TRY(collective(tp->finish(), "TP all-reduces: "));
  }
  MLLM_TRY(check(evalRowMax.download(evalHostMax, stream),
                 at("evaluation's row maxima")));
  MLLM_TRY(check(evalArgmax.download(evalHostArgmax, stream),
                 at("evaluation's predictions")));
  MLLM_TRY(
      check(evalSums.download(evalHostSums, stream), at("evaluation's sums")));
  return l.split ? shardPredictions(l) : llvm::Error::success();
}

llvm::Error DeviceTrainer::Impl::finishCollectives(const std::string &what) {
  for (ShardCollectives *c : {tp, cp})
    if (c)
      if (llvm::Error e = c->finish())
        return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                       what + llvm::toString(std::move(e)));
  return llvm::Error::success();
}

llvm::Error DeviceTrainer::Impl::generationHead(DeviceLayer &l) {
  // Under TP this shard's logits are ids [first, first + V) of the row.
  const int64_t V = l.config.vocab, first = l.split ? l.vocabFirst : 0;
  auto at = [&](const char *what) { return "'" + l.name + "' " + what; };
  if (generateRow >= l.rows || generateChoices < 1 ||
      (!l.split && generateChoices > V))
    return check(Status::error("generation asks for a row or ids the head "
                               "does not have"),
                 at("generation (internal error)"));
  generatedHost.assign(1, -1);
  // The row is on another CP rank: its TP group predicts nothing here.
  if (generateRow < 0)
    return finishCollectives(at("generation: "));
  // The ids asked for in this shard's slice of the row: a one-row slice.
  const int64_t scan = std::clamp<int64_t>(generateChoices - first, 0, V);
  const bf16 *row = l.logits + generateRow * V;
  if (scan > 0) {
    MLLM_TRY(check(generated.allocate(1), at("generation's token")));
    MLLM_TRY(check(kc::rowArgmax(row, generated.data(), 1, scan, stream),
                   at("generation's token")));
    if (l.split) {
      MLLM_TRY(check(evalRowMax.allocate(1), at("generation's maximum")));
      MLLM_TRY(
          check(kc::crossEntropyRowMax(row, evalRowMax.data(), 1, scan, stream),
                at("generation's maximum")));
    }
  }
  MLLM_TRY(finishCollectives(at("generation: ")));
  if (scan > 0)
    MLLM_TRY(check(generated.download(generatedHost, stream),
                   at("generation's token")));
  if (!l.split)
    return llvm::Error::success();
  // Over the shards, as an evaluation's predictions (shardPredictions): the
  // row's maximum, then the first shard's candidate where it is.
  if (scan > 0) {
    MLLM_TRY(check(evalRowMax.download(evalLocalMax, stream),
                   at("generation's maximum")));
  } else {
    evalLocalMax.assign(1, -std::numeric_limits<float>::infinity());
    MLLM_TRY(check(evalRowMax.allocate(1), at("generation's maximum")));
    MLLM_TRY(check(evalRowMax.upload(evalLocalMax, stream),
                   at("generation's maximum")));
  }
  evalHostArgmax.assign(1, scan > 0 ? generatedHost[0] : -1);
  auto collective = [&](llvm::Error e, const char *what) -> llvm::Error {
    if (!e)
      e = tp->finish();
    if (!e)
      return e;
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   at(what) + llvm::toString(std::move(e)));
  };
  MLLM_TRY(collective(tp->allReduceMax(evalRowMax.data(), 1, stream),
                      "TP all-reduce of the row's maximum: "));
  MLLM_TRY(check(evalRowMax.download(evalHostMax, stream),
                 at("generation's maximum")));
  evalHostCandidates.assign(static_cast<size_t>(tpSize), 0.0);
  cpu::TensorShard shard;
  shard.rank = tpRank;
  shard.size = tpSize;
  cpu::predictionSlots(evalLocalMax.data(), evalHostMax.data(),
                       evalHostArgmax.data(), 1, {first, first + V}, shard,
                       evalHostCandidates.data());
  MLLM_TRY(check(evalCandidates.allocate(static_cast<size_t>(tpSize)),
                 at("generation's candidates")));
  MLLM_TRY(check(evalCandidates.upload(evalHostCandidates, stream),
                 at("generation's candidates")));
  MLLM_TRY(collective(tp->allReduceSum(evalCandidates.data(), tpSize, stream),
                      "TP all-reduce of the candidates: "));
  MLLM_TRY(check(evalCandidates.download(evalHostCandidates, stream),
                 at("generation's candidates")));
  cpu::firstPrediction(evalHostCandidates.data(), 1, tpSize,
                       generatedHost.data());
  return llvm::Error::success();
}

llvm::Error DeviceTrainer::Impl::shardPredictions(DeviceLayer &l) {
  const int64_t R = l.rows;
  auto at = [&](const char *what) { return "'" + l.name + "' " + what; };
  // cpu::predictionSlots' candidates from this shard's (rowArgmax: the
  // first largest logit of its slice), summed over the group.
  evalHostCandidates.assign(static_cast<size_t>(R * tpSize), 0.0);
  cpu::TensorShard shard;
  shard.rank = tpRank;
  shard.size = tpSize;
  cpu::predictionSlots(evalLocalMax.data(), evalHostMax.data(),
                       evalHostArgmax.data(), R,
                       {l.vocabFirst, l.vocabFirst + l.config.vocab}, shard,
                       evalHostCandidates.data());
  MLLM_TRY(check(evalCandidates.upload(evalHostCandidates, stream),
                 at("evaluation's predictions")));
  llvm::Error e = tp->allReduceSum(evalCandidates.data(), R * tpSize, stream);
  if (!e)
    e = tp->finish();
  if (e)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   at("TP all-reduce of the predictions: ") +
                                       llvm::toString(std::move(e)));
  MLLM_TRY(check(evalCandidates.download(evalHostCandidates, stream),
                 at("evaluation's predictions")));
  cpu::firstPrediction(evalHostCandidates.data(), R, tpSize,
                       evalHostArgmax.data());
  return llvm::Error::success();
}

llvm::Error
DeviceTrainer::Impl::countEvaluation(llvm::ArrayRef<int64_t> targets,
                                     cpu::HeadEval &into) const {
  const size_t rows = targets.size();
  if (evalHostMax.size() != rows || evalHostSums.size() != 2 * rows ||
      evalHostArgmax.size() != rows)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "evaluation: the head has " +
                                       llvm::Twine(evalHostMax.size()) +
                                       " rows, the batch " + llvm::Twine(rows) +
                                       " targets (internal error)");
  // As exec::Evaluator::run per counted target: lse - the target's logit,
  // and a hit when the first largest logit is the target's.
  for (size_t r = 0; r < rows; ++r) {
    if (targets[r] == data::kIgnoreTarget)
      continue;
    const double max = evalHostMax[r], target = evalHostSums[rows + r];
    into.lossSum += max + std::log(evalHostSums[r]) - target;
    into.correct += evalHostArgmax[r] == targets[r] ? 1 : 0;
    ++into.tokens;
  }
  return llvm::Error::success();
}

/// The CP exchange's layout: rank r's rows of every sequence lie one after
/// another in the staging buffer (what the collective moves), and at
/// `prefix[r]` within each sequence's keys in the attention's (rank order).
namespace {
struct KeyBlocks {
  std::vector<int64_t> counts, stage, prefix;
};
KeyBlocks keyBlocks(const std::vector<std::vector<int64_t>> &shares,
                    int64_t sequences, int64_t width) {
  KeyBlocks b;
  int64_t at = 0, tokens = 0;
  for (const std::vector<int64_t> &share : shares) {
    const int64_t n = static_cast<int64_t>(share.size());
    b.counts.push_back(sequences * n * width);
    b.stage.push_back(at);
    b.prefix.push_back(tokens);
    at += sequences * n * width;
    tokens += n;
  }
  return b;
}

/// Copies every rank's rows from `from` to `to`: from the staging buffer
/// into the attention's [sequences, keys] rows of `width` when `toKeys`,
/// else the other way.
Status copyKeyBlocks(const KeyBlocks &b, const Sequences &sq, int64_t width,
                     bf16 *to, const bf16 *from, bool toKeys,
                     cudaStream_t stream) {
  const size_t pitch = sq.keys * width * sizeof(bf16);
  for (size_t r = 0; r < b.counts.size(); ++r) {
    const size_t row = b.counts[r] / sq.sequences * sizeof(bf16);
    const int64_t placed = b.prefix[r] * width, staged = b.stage[r];
    if (row)
      MLLM_STATUS_TRY(cudaStatus(
          copyRowsAsync(to + (toKeys ? placed : staged), toKeys ? pitch : row,
                        from + (toKeys ? staged : placed), toKeys ? row : pitch,
                        row, sq.sequences, stream)));
  }
  return Status();
}
} // namespace

llvm::Error DeviceTrainer::Impl::postKeyExchange(const DeviceLayer &l,
                                                 const bf16 *from, bf16 *to,
                                                 int64_t width, bool gather) {
  KeyBlocks b = keyBlocks(cpShares, l.seq->sequences, width);
  llvm::Error e = gather ? cp->allGather(from, b.counts, to, stream)
                         : cp->reduceScatterSum(from, b.counts, to, stream);
  if (e)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "'" + l.name +
            (gather ? "' CP all-gather of K and V: "
                    : "' CP reduce-scatter of dK and dV: ") +
            llvm::toString(std::move(e)));
  return llvm::Error::success();
}

llvm::Error DeviceTrainer::Impl::joinKeyExchange(const DeviceLayer &l,
                                                 const char *what) {
  if (llvm::Error e = cp->join(stream))
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "'" + l.name + "' CP exchange of " + what +
                                       ": " + llvm::toString(std::move(e)));
  return llvm::Error::success();
}

llvm::Error DeviceTrainer::Impl::placeKeys(const DeviceLayer &l, bf16 *stage,
                                           bf16 *keys, int64_t width,
                                           bool toKeys) {
  const Sequences &sq = *l.seq;
  KeyBlocks b = keyBlocks(cpShares, sq.sequences, width);
  bf16 *to = toKeys ? keys : stage;
  const bf16 *from = toKeys ? stage : keys;
  return check(copyKeyBlocks(b, sq, width, to, from, toKeys, stream),
               "'" + l.name + "' " +
                   (toKeys ? "placing the gathered keys"
                           : "staging the keys' gradients"));
}
