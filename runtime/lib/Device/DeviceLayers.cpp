//===- DeviceLayers.cpp - the LLM's forward and backward on the device ----===//
//
// The CPU layers' compositions (runtime/lib/CPU: TransformerBlock,
// AttentionPart, FfnPart, NormPart, LMHead, TokenEmbedding) on the CUDA
// kernels, in the same order and with the same parameters: a pre-norm
// block h = x + Attn(Norm1(x)), y = h + FFN(Norm2(h)), linears y = x W^T
// with W [out, in], RoPE on q and k, the LM head's loss sum x lossScale.
// Residual sums are the GEMM's beta = 1 (forward) or addInPlace (backward).
//
//===----------------------------------------------------------------------===//
#include "DeviceImpl.h"

#include <cmath>

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
  return check(gemm.run(s, 1.0f, x, w.value.data(), beta, y, stream),
               "x W^T of '" + w.name + "'");
}

llvm::Error DeviceTrainer::Impl::linearInput(const bf16 *dy,
                                             const DeviceParam &w, bf16 *dx,
                                             int64_t rows, int64_t in,
                                             int64_t out, float beta) {
  kc::GemmShape s;
  s.m = rows, s.n = in, s.k = out;
  s.lda = out, s.ldb = in, s.ldc = in;
  return check(gemm.run(s, 1.0f, dy, w.value.data(), beta, dx, stream),
               "dy W of '" + w.name + "'");
}

llvm::Error DeviceTrainer::Impl::linearWeight(const bf16 *x, const bf16 *dy,
                                              DeviceParam &w, int64_t rows,
                                              int64_t in, int64_t out) {
  kc::GemmShape s;
  s.transA = true;
  s.m = out, s.n = in, s.k = rows;
  s.lda = out, s.ldb = in, s.ldc = in;
  return check(gemm.run(s, 1.0f, dy, x, 1.0f, w.grad.data(), stream),
               "the weight gradient of '" + w.name + "'");
}

namespace {

/// A layer's norm: RMSNorm, or LayerNorm with its bias.
struct Norm {
  DeviceParam &w;
  DeviceParam *b;
};

Norm normOf(const DeviceLayer &l, const std::string &prefix) {
  auto it = l.params.find(prefix + "bias");
  return {l.param(prefix + "weight"),
          it == l.params.end() ? nullptr : it->second};
}

Status normForward(const Norm &n, const bf16 *x, bf16 *y, float *mean,
                   float *rstd, int64_t rows, int64_t dim,
                   cudaStream_t stream) {
  if (n.b)
    return kc::layerNormForward(x, n.w.value.data(), n.b->value.data(), y, mean,
                                rstd, rows, dim, kNormEps, stream);
  return kc::rmsNormForward(x, n.w.value.data(), y, rstd, rows, dim, kNormEps,
                            stream);
}

Status normBackward(const Norm &n, const bf16 *dy, const bf16 *x,
                    const float *mean, const float *rstd, bf16 *dx,
                    int64_t rows, int64_t dim, cudaStream_t stream) {
  if (n.b)
    return kc::layerNormBackward(dy, x, n.w.value.data(), mean, rstd, dx,
                                 n.w.grad.data(), n.b->grad.data(), rows, dim,
                                 stream);
  return kc::rmsNormBackward(dy, x, n.w.value.data(), rstd, dx, n.w.grad.data(),
                             rows, dim, stream);
}

kc::AttentionHeads headsOf(const LayerConfig &c) {
  kc::AttentionHeads h;
  h.heads = c.heads;
  h.kvHeads = c.kvHeads;
  h.headDim = c.headDim;
  h.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.headDim)));
  return h;
}

llvm::Error copy(bf16 *to, const bf16 *from, int64_t n, cudaStream_t stream) {
  cudaError_t rc = cudaMemcpyAsync(to, from, n * sizeof(bf16),
                                   cudaMemcpyDeviceToDevice, stream);
  return check(rc == cudaSuccess ? Status()
                                 : Status::error(cudaGetErrorString(rc)),
               "copying the residual stream");
}

} // namespace

#define MLLM_TRY(expr)                                                         \
  do {                                                                         \
    if (llvm::Error mllmError_ = (expr))                                       \
      return mllmError_;                                                       \
  } while (0)

llvm::Error DeviceTrainer::Impl::forward(double &loss) {
  const int64_t R = batch.rows(), S = batch.sequences, n = batch.tokens;
  for (size_t i = 0; i < layers.size(); ++i) {
    DeviceLayer &l = layers[i];
    const LayerConfig &c = l.config;
    const int64_t H = c.hidden;
    bf16 *out = i + 1 < layers.size() ? layers[i + 1].x.data() : nullptr;
    auto at = [&](const char *what) { return "'" + l.name + "' " + what; };
    switch (l.kind) {
    case LayerKind::Embedding:
      MLLM_TRY(check(kc::embeddingForward(batch.ids.data(),
                                          l.param("weight").value.data(), out,
                                          R, H, stream),
                     at("forward")));
      break;
    case LayerKind::Norm:
      MLLM_TRY(check(normForward(normOf(l, ""), l.x.data(), out, l.mean1.data(),
                                 l.rstd1.data(), R, H, stream),
                     at("forward")));
      break;
    case LayerKind::Head: {
      const DeviceParam &w = l.param("weight");
      MLLM_TRY(linear(l.x.data(), w, l.logits.data(), R, H, c.vocab));
      MLLM_TRY(check(
          kc::crossEntropyForward(l.logits.data(), batch.targets.data(),
                                  l.rowLse.data(), scratch.lossSum.data(),
                                  scratch.count.data(), R, c.vocab, stream),
          at("loss")));
      std::vector<double> sum;
      MLLM_TRY(check(scratch.lossSum.download(sum, stream), at("loss")));
      loss += sum[0] * batch.lossScale;
      break;
    }
    case LayerKind::Block: {
      const int64_t qw = c.heads * c.headDim, kw = c.kvHeads * c.headDim;
      const int64_t in = (l.gated ? 2 : 1) * c.ffn;
      Norm n1 = normOf(l, "norm1."), n2 = normOf(l, "norm2.");
      MLLM_TRY(check(normForward(n1, l.x.data(), l.xn1.data(), l.mean1.data(),
                                 l.rstd1.data(), R, H, stream),
                     at("norm1")));
      MLLM_TRY(linear(l.xn1.data(), l.param("wq"), l.q.data(), R, H, qw));
      MLLM_TRY(linear(l.xn1.data(), l.param("wk"), l.k.data(), R, H, kw));
      MLLM_TRY(linear(l.xn1.data(), l.param("wv"), l.v.data(), R, H, kw));
      kc::AttentionHeads heads = headsOf(c);
      for (int64_t s = 0; s < S; ++s) {
        bf16 *q = l.q.data() + s * n * qw, *k = l.k.data() + s * n * kw;
        if (l.rope) {
          MLLM_TRY(
              check(kc::ropeForward(q, q, batch.positions.data(), n, c.heads,
                                    c.headDim, c.ropeTheta, stream),
                    at("RoPE")));
          MLLM_TRY(
              check(kc::ropeForward(k, k, batch.positions.data(), n, c.kvHeads,
                                    c.headDim, c.ropeTheta, stream),
                    at("RoPE")));
        }
        kc::AttentionOptions options;
        options.stream = stream;
        MLLM_TRY(check(kc::attentionForward(
                           batch.attention, heads, q, k,
                           l.v.data() + s * n * kw, l.o.data() + s * n * qw,
                           l.lse.data() + s * c.heads * n, options),
                       at("attention")));
      }
      MLLM_TRY(copy(l.h.data(), l.x.data(), R * H, stream));
      MLLM_TRY(linear(l.o.data(), l.param("wo"), l.h.data(), R, qw, H, 1.0f));
      MLLM_TRY(check(normForward(n2, l.h.data(), l.xn2.data(), l.mean2.data(),
                                 l.rstd2.data(), R, H, stream),
                     at("norm2")));
      MLLM_TRY(linear(l.xn2.data(), l.param("ffn.w_in"), l.u.data(), R, H, in));
      Status act =
          l.gelu ? kc::geluForward(l.u.data(), l.a.data(), R * c.ffn, stream)
          : l.geglu
              ? kc::gegluForward(l.u.data(), l.a.data(), R, c.ffn, stream)
              : kc::swigluForward(l.u.data(), l.a.data(), R, c.ffn, stream);
      MLLM_TRY(check(act, at("activation")));
      MLLM_TRY(copy(out, l.h.data(), R * H, stream));
      MLLM_TRY(
          linear(l.a.data(), l.param("ffn.w_out"), out, R, c.ffn, H, 1.0f));
      break;
    }
    }
  }
  return llvm::Error::success();
}

llvm::Error DeviceTrainer::Impl::backward() {
  const int64_t R = batch.rows(), S = batch.sequences, n = batch.tokens;
  Scratch &g = scratch;
  for (size_t i = layers.size(); i-- > 0;) {
    DeviceLayer &l = layers[i];
    const LayerConfig &c = l.config;
    const int64_t H = c.hidden;
    auto at = [&](const char *what) { return "'" + l.name + "' " + what; };
    switch (l.kind) {
    case LayerKind::Head: {
      DeviceParam &w = l.param("weight");
      MLLM_TRY(check(kc::crossEntropyBackward(
                         l.logits.data(), batch.targets.data(), l.rowLse.data(),
                         g.dlogits.data(), static_cast<float>(batch.lossScale),
                         R, c.vocab, stream),
                     at("loss gradient")));
      MLLM_TRY(linearWeight(l.x.data(), g.dlogits.data(), w, R, H, c.vocab));
      MLLM_TRY(linearInput(g.dlogits.data(), w, g.dy.data(), R, H, c.vocab));
      break;
    }
    case LayerKind::Norm:
      MLLM_TRY(check(normBackward(normOf(l, ""), g.dy.data(), l.x.data(),
                                  l.mean1.data(), l.rstd1.data(), g.dx.data(),
                                  R, H, stream),
                     at("backward")));
      std::swap(g.dy, g.dx);
      break;
    case LayerKind::Embedding:
      MLLM_TRY(
          check(kc::embeddingBackward(batch.embeddingGrad, g.dy.data(),
                                      l.param("weight").grad.data(), H, stream),
                at("backward")));
      break;
    case LayerKind::Block: {
      const int64_t qw = c.heads * c.headDim, kw = c.kvHeads * c.headDim;
      const int64_t in = (l.gated ? 2 : 1) * c.ffn;
      DeviceParam &wIn = l.param("ffn.w_in"), &wOut = l.param("ffn.w_out");
      // The feed-forward: dy is the gradient of y = h + FFN(Norm2(h)).
      MLLM_TRY(linearInput(g.dy.data(), wOut, g.da.data(), R, c.ffn, H));
      MLLM_TRY(linearWeight(l.a.data(), g.dy.data(), wOut, R, c.ffn, H));
      Status act = l.gelu ? kc::geluBackward(l.u.data(), g.da.data(),
                                             g.du.data(), R * c.ffn, stream)
                   : l.geglu
                       ? kc::gegluBackward(l.u.data(), g.da.data(), g.du.data(),
                                           R, c.ffn, stream)
                       : kc::swigluBackward(l.u.data(), g.da.data(),
                                            g.du.data(), R, c.ffn, stream);
      MLLM_TRY(check(act, at("activation gradient")));
      MLLM_TRY(linearInput(g.du.data(), wIn, g.dxn.data(), R, H, in));
      MLLM_TRY(linearWeight(l.xn2.data(), g.du.data(), wIn, R, H, in));
      MLLM_TRY(check(normBackward(normOf(l, "norm2."), g.dxn.data(), l.h.data(),
                                  l.mean2.data(), l.rstd2.data(), g.dh.data(),
                                  R, H, stream),
                     at("norm2 gradient")));
      MLLM_TRY(check(kc::addInPlace(g.dh.data(), g.dy.data(), R * H, stream),
                     at("residual gradient")));
      // The attention: dh is the gradient of h = x + Attn(Norm1(x)).
      DeviceParam &wo = l.param("wo");
      MLLM_TRY(linearInput(g.dh.data(), wo, g.dO.data(), R, qw, H));
      MLLM_TRY(linearWeight(l.o.data(), g.dh.data(), wo, R, qw, H));
      kc::AttentionHeads heads = headsOf(c);
      for (int64_t s = 0; s < S; ++s) {
        const int64_t qo = s * n * qw, ko = s * n * kw;
        kc::AttentionOptions options;
        options.stream = stream;
        MLLM_TRY(check(kc::attentionBackward(
                           batch.attention, heads, l.q.data() + qo,
                           l.k.data() + ko, l.v.data() + ko, l.o.data() + qo,
                           l.lse.data() + s * c.heads * n, g.dO.data() + qo,
                           g.dq.data() + qo, g.dk.data() + ko, g.dv.data() + ko,
                           options),
                       at("attention gradient")));
        if (!l.rope)
          continue;
        MLLM_TRY(check(kc::ropeBackward(g.dq.data() + qo, g.dq.data() + qo,
                                        batch.positions.data(), n, c.heads,
                                        c.headDim, c.ropeTheta, stream),
                       at("RoPE gradient")));
        MLLM_TRY(check(kc::ropeBackward(g.dk.data() + ko, g.dk.data() + ko,
                                        batch.positions.data(), n, c.kvHeads,
                                        c.headDim, c.ropeTheta, stream),
                       at("RoPE gradient")));
      }
      DeviceParam &wq = l.param("wq"), &wk = l.param("wk"), &wv = l.param("wv");
      MLLM_TRY(linearInput(g.dq.data(), wq, g.dxn.data(), R, H, qw));
      MLLM_TRY(linearInput(g.dk.data(), wk, g.dxn.data(), R, H, kw, 1.0f));
      MLLM_TRY(linearInput(g.dv.data(), wv, g.dxn.data(), R, H, kw, 1.0f));
      MLLM_TRY(linearWeight(l.xn1.data(), g.dq.data(), wq, R, H, qw));
      MLLM_TRY(linearWeight(l.xn1.data(), g.dk.data(), wk, R, H, kw));
      MLLM_TRY(linearWeight(l.xn1.data(), g.dv.data(), wv, R, H, kw));
      MLLM_TRY(check(normBackward(normOf(l, "norm1."), g.dxn.data(), l.x.data(),
                                  l.mean1.data(), l.rstd1.data(), g.dx.data(),
                                  R, H, stream),
                     at("norm1 gradient")));
      MLLM_TRY(check(kc::addInPlace(g.dx.data(), g.dh.data(), R * H, stream),
                     at("residual gradient")));
      std::swap(g.dy, g.dx);
      break;
    }
    }
  }
  return llvm::Error::success();
}
