//===- TorchDriver.cpp - Writes float kernel results for torch_check.py ---===//
//
// Runs every kernel in float on seeded inputs and writes inputs and results
// to one binary file that torch_check.py recomputes with PyTorch. Record
// format (little-endian): u32 name length, name, u8 dtype (0 f32, 1 i64,
// 2 f64), u32 rank, i64 dims[rank], data; after an 8-byte magic "MLLMKCPU".
// Tensor names are "<op>.<what>"; shapes are the PyTorch-side ones.
//
//===----------------------------------------------------------------------===//

#include "mllm/kernels/cpu/Activation.h"
#include "mllm/kernels/cpu/Conv.h"
#include "mllm/kernels/cpu/CrossEntropy.h"
#include "mllm/kernels/cpu/Elementwise.h"
#include "mllm/kernels/cpu/Embedding.h"
#include "mllm/kernels/cpu/Linear.h"
#include "mllm/kernels/cpu/Norm.h"
#include "mllm/kernels/cpu/Optimizer.h"
#include "mllm/kernels/cpu/PatchEmbed.h"
#include "mllm/kernels/cpu/Positions.h"
#include "mllm/kernels/cpu/Rope.h"

#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

using namespace mllm::kernels::cpu;

namespace {

using FVec = std::vector<float>;
using Shape = std::vector<int64_t>;

class Writer {
public:
  explicit Writer(const char *path) : file(std::fopen(path, "wb")) {
    if (file)
      std::fwrite("MLLMKCPU", 1, 8, file);
  }
  ~Writer() {
    if (file)
      std::fclose(file);
  }
  bool ok() const { return file != nullptr; }

  void f32(const std::string &name, const FVec &v, const Shape &shape) {
    record(name, 0, shape, v.data(), v.size() * sizeof(float));
  }
  void i64(const std::string &name, const std::vector<int64_t> &v,
           const Shape &shape) {
    record(name, 1, shape, v.data(), v.size() * sizeof(int64_t));
  }
  void f64(const std::string &name, double v) {
    record(name, 2, {}, &v, sizeof(double));
  }

private:
  void record(const std::string &name, uint8_t dtype, const Shape &shape,
              const void *data, size_t bytes) {
    uint32_t len = static_cast<uint32_t>(name.size());
    uint32_t rank = static_cast<uint32_t>(shape.size());
    std::fwrite(&len, 4, 1, file);
    std::fwrite(name.data(), 1, len, file);
    std::fwrite(&dtype, 1, 1, file);
    std::fwrite(&rank, 4, 1, file);
    std::fwrite(shape.data(), 8, rank, file);
    std::fwrite(data, 1, bytes, file);
  }
  FILE *file;
};

FVec randomF(size_t n, uint64_t seed, float lo = -1, float hi = 1) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  FVec v(n);
  for (float &x : v)
    x = dist(rng);
  return v;
}

void writeLinear(Writer &w) {
  int64_t tokens = 5, in = 13, out = 9;
  FVec x = randomF(tokens * in, 1), wt = randomF(out * in, 2),
       b = randomF(out, 3), dy = randomF(tokens * out, 4);
  FVec y(tokens * out), dx(x.size()), dw(wt.size(), 0.f), db(out, 0.f);
  linearForward(x.data(), wt.data(), b.data(), y.data(), tokens, in, out);
  linearBackwardInput(dy.data(), wt.data(), dx.data(), tokens, in, out);
  linearBackwardWeight(x.data(), dy.data(), dw.data(), db.data(), tokens, in,
                       out);
  w.f32("linear.x", x, {tokens, in}), w.f32("linear.w", wt, {out, in});
  w.f32("linear.b", b, {out}), w.f32("linear.dy", dy, {tokens, out});
  w.f32("linear.y", y, {tokens, out}), w.f32("linear.dx", dx, {tokens, in});
  w.f32("linear.dw", dw, {out, in}), w.f32("linear.db", db, {out});
}

void writeNorms(Writer &w) {
  int64_t tokens = 6, dim = 24;
  FVec x = randomF(tokens * dim, 5, -3, 3), g = randomF(dim, 6, 0.5, 1.5),
       b = randomF(dim, 7), dy = randomF(tokens * dim, 8);
  FVec y(x.size()), mean(tokens), rstd(tokens), dx(x.size()), dw(dim, 0.f),
      db(dim, 0.f);
  layerNormForward(x.data(), g.data(), b.data(), y.data(), mean.data(),
                   rstd.data(), tokens, dim, 1e-5);
  layerNormBackwardInput(dy.data(), x.data(), g.data(), mean.data(),
                         rstd.data(), dx.data(), tokens, dim);
  layerNormBackwardWeight(dy.data(), x.data(), mean.data(), rstd.data(),
                          dw.data(), db.data(), tokens, dim);
  Shape s = {tokens, dim};
  w.f32("layer_norm.x", x, s), w.f32("layer_norm.w", g, {dim});
  w.f32("layer_norm.b", b, {dim}), w.f32("layer_norm.dy", dy, s);
  w.f64("layer_norm.eps", 1e-5);
  w.f32("layer_norm.y", y, s), w.f32("layer_norm.dx", dx, s);
  w.f32("layer_norm.dw", dw, {dim}), w.f32("layer_norm.db", db, {dim});

  FVec dwr(dim, 0.f);
  rmsNormForward(x.data(), g.data(), y.data(), rstd.data(), tokens, dim, 1e-6);
  rmsNormBackwardInput(dy.data(), x.data(), g.data(), rstd.data(), dx.data(),
                       tokens, dim);
  rmsNormBackwardWeight(dy.data(), x.data(), rstd.data(), dwr.data(), tokens,
                        dim);
  w.f32("rms_norm.x", x, s), w.f32("rms_norm.w", g, {dim});
  w.f32("rms_norm.dy", dy, s), w.f64("rms_norm.eps", 1e-6);
  w.f32("rms_norm.y", y, s), w.f32("rms_norm.dx", dx, s);
  w.f32("rms_norm.dw", dwr, {dim});
}

void writeActivations(Writer &w) {
  using Fwd = void (*)(const float *, float *, int64_t);
  using Bwd = void (*)(const float *, const float *, float *, int64_t);
  struct Unary {
    const char *name;
    Fwd fwd;
    Bwd bwd;
  };
  int64_t n = 41;
  FVec x = randomF(n, 9, -5, 5), dy = randomF(n, 10);
  for (Unary u :
       {Unary{"gelu", geluForward<float>, geluBackward<float>},
        Unary{"gelu_tanh", geluTanhForward<float>, geluTanhBackward<float>},
        Unary{"relu", reluForward<float>, reluBackward<float>},
        Unary{"silu", siluForward<float>, siluBackward<float>}}) {
    FVec y(n), dx(n);
    u.fwd(x.data(), y.data(), n);
    u.bwd(x.data(), dy.data(), dx.data(), n);
    std::string p = u.name;
    w.f32(p + ".x", x, {n}), w.f32(p + ".dy", dy, {n});
    w.f32(p + ".y", y, {n}), w.f32(p + ".dx", dx, {n});
  }

  using GFwd = void (*)(const float *, float *, int64_t, int64_t);
  using GBwd =
      void (*)(const float *, const float *, float *, int64_t, int64_t);
  struct Gated {
    const char *name;
    GFwd fwd;
    GBwd bwd;
  };
  int64_t tokens = 5, ffn = 11;
  FVec in = randomF(tokens * 2 * ffn, 11, -4, 4),
       dout = randomF(tokens * ffn, 12);
  for (Gated g : {Gated{"swiglu", swigluForward<float>, swigluBackward<float>},
                  Gated{"geglu", gegluForward<float>, gegluBackward<float>},
                  Gated{"glu", gluForward<float>, gluBackward<float>}}) {
    FVec out(tokens * ffn), din(in.size());
    g.fwd(in.data(), out.data(), tokens, ffn);
    g.bwd(in.data(), dout.data(), din.data(), tokens, ffn);
    std::string p = g.name;
    w.f32(p + ".in", in, {tokens, 2 * ffn});
    w.f32(p + ".dout", dout, {tokens, ffn});
    w.f32(p + ".out", out, {tokens, ffn});
    w.f32(p + ".din", din, {tokens, 2 * ffn});
  }
}

void writePositions(Writer &w) {
  int64_t tokens = 5, heads = 3, headDim = 8;
  std::vector<int64_t> pos = {0, 1, 7, 100, 2047};
  FVec x = randomF(tokens * heads * headDim, 13), dy = randomF(x.size(), 14),
       y(x.size()), dx(x.size());
  ropeForward(x.data(), y.data(), pos.data(), tokens, heads, headDim, 10000.0);
  ropeBackward(dy.data(), dx.data(), pos.data(), tokens, heads, headDim,
               10000.0);
  Shape s = {tokens, heads, headDim};
  w.i64("rope.positions", pos, {tokens}), w.f64("rope.theta", 10000.0);
  w.f32("rope.x", x, s), w.f32("rope.dy", dy, s);
  w.f32("rope.y", y, s), w.f32("rope.dx", dx, s);

  int64_t count = 30, dim = 16;
  std::vector<int64_t> rows(count);
  for (int64_t r = 0; r < count; ++r)
    rows[r] = r;
  FVec table(count * dim);
  sinusoidalPositions(table.data(), rows.data(), count, dim);
  w.f32("sinusoids.table", table, {count, dim});

  int64_t ids = 7, vocab = 11, edim = 6;
  std::vector<int64_t> tok = {3, 0, 10, 3, 5, 3, 0};
  FVec emb = randomF(vocab * edim, 15), dout = randomF(ids * edim, 16);
  FVec out(ids * edim), demb(emb.size(), 0.f);
  embeddingForward(tok.data(), emb.data(), out.data(), ids, vocab, edim);
  embeddingBackwardWeight(tok.data(), dout.data(), demb.data(), ids, vocab,
                          edim);
  w.i64("embedding.ids", tok, {ids}),
      w.f32("embedding.table", emb, {vocab, edim});
  w.f32("embedding.dout", dout, {ids, edim});
  w.f32("embedding.out", out, {ids, edim});
  w.f32("embedding.dtable", demb, {vocab, edim});
}

void writeCrossEntropy(Writer &w) {
  int64_t tokens = 6, vocab = 19;
  FVec logits = randomF(tokens * vocab, 17, -8, 8), d(logits.size());
  std::vector<int64_t> targets = {4, -100, 0, 18, -100, 7};
  std::vector<double> lse(tokens);
  CrossEntropyResult r = softmaxCrossEntropyForward(
      logits.data(), targets.data(), lse.data(), tokens, vocab);
  double scale = 1.0 / static_cast<double>(r.count);
  softmaxCrossEntropyBackward(logits.data(), targets.data(), lse.data(),
                              d.data(), scale, tokens, vocab);
  w.f32("cross_entropy.logits", logits, {tokens, vocab});
  w.i64("cross_entropy.targets", targets, {tokens});
  w.f64("cross_entropy.loss_sum", r.lossSum);
  w.f64("cross_entropy.count", static_cast<double>(r.count));
  w.f64("cross_entropy.scale", scale);
  w.f32("cross_entropy.dlogits", d, {tokens, vocab});
}

void writeConv(Writer &w, const std::string &p, const Conv1dShape &s,
               uint64_t seed) {
  int64_t k = s.kernel, in = s.inChannels, out = s.outChannels;
  FVec x = randomF(s.frames * in, seed), wt = randomF(out * in * k, seed + 1),
       b = randomF(out, seed + 2), dy = randomF(s.outFrames() * out, seed + 3);
  FVec y(s.outFrames() * out), dx(x.size()), dw(wt.size(), 0.f), db(out, 0.f);
  conv1dForward(x.data(), wt.data(), b.data(), y.data(), s);
  conv1dBackwardInput(dy.data(), wt.data(), dx.data(), s);
  conv1dBackwardWeight(x.data(), dy.data(), dw.data(), db.data(), s);
  w.f64(p + ".stride", static_cast<double>(s.stride));
  w.f64(p + ".padding", static_cast<double>(s.padding));
  w.f32(p + ".x", x, {s.frames, in}), w.f32(p + ".w", wt, {out, in, k});
  w.f32(p + ".b", b, {out}), w.f32(p + ".dy", dy, {s.outFrames(), out});
  w.f32(p + ".y", y, {s.outFrames(), out}),
      w.f32(p + ".dx", dx, {s.frames, in});
  w.f32(p + ".dw", dw, {out, in, k}), w.f32(p + ".db", db, {out});
}

void writeDepthwise(Writer &w, const std::string &p, int64_t frames, int64_t ch,
                    int64_t k, uint64_t seed) {
  FVec x = randomF(frames * ch, seed), wt = randomF(ch * k, seed + 1),
       b = randomF(ch, seed + 2), dy = randomF(frames * ch, seed + 3);
  FVec y(x.size()), dx(x.size()), dw(wt.size(), 0.f), db(ch, 0.f);
  depthwiseConv1dForward(x.data(), wt.data(), b.data(), y.data(), frames, ch,
                         k);
  depthwiseConv1dBackwardInput(dy.data(), wt.data(), dx.data(), frames, ch, k);
  depthwiseConv1dBackwardWeight(x.data(), dy.data(), dw.data(), db.data(),
                                frames, ch, k);
  w.f32(p + ".x", x, {frames, ch}), w.f32(p + ".w", wt, {ch, 1, k});
  w.f32(p + ".b", b, {ch}), w.f32(p + ".dy", dy, {frames, ch});
  w.f32(p + ".y", y, {frames, ch}), w.f32(p + ".dx", dx, {frames, ch});
  w.f32(p + ".dw", dw, {ch, 1, k}), w.f32(p + ".db", db, {ch});
}

void writePatchEmbed(Writer &w) {
  PatchShape s{3, 4, 6, 8, 2, 2};
  int64_t hidden = 7, n = s.numPatches(), pd = s.patchDim();
  FVec image = randomF(3 * 4 * 6 * 8, 40), wt = randomF(hidden * pd, 41),
       b = randomF(hidden, 42), dy = randomF(n * hidden, 43);
  FVec patches(n * pd), y(n * hidden), dw(wt.size(), 0.f), db(hidden, 0.f);
  patchEmbedForward(image.data(), wt.data(), b.data(), patches.data(), y.data(),
                    s, hidden);
  patchEmbedBackwardWeight(patches.data(), dy.data(), dw.data(), db.data(), s,
                           hidden);
  Shape ws = {hidden, s.channels, s.temporalPatch, s.patch, s.patch};
  w.f32("patch_embed.image", image, {3, 4, 6, 8});
  w.f32("patch_embed.w", wt, ws), w.f32("patch_embed.b", b, {hidden});
  w.f32("patch_embed.dy", dy, {n, hidden}),
      w.f32("patch_embed.y", y, {n, hidden});
  w.f32("patch_embed.dw", dw, ws), w.f32("patch_embed.db", db, {hidden});
}

void writeOptimizers(Writer &w) {
  int64_t n = 50, steps = 5;
  FVec p0 = randomF(n, 50), grads;
  for (int64_t s = 0; s < steps; ++s) {
    FVec g = randomF(n, 51 + s);
    grads.insert(grads.end(), g.begin(), g.end());
  }
  w.f32("optim.param", p0, {n}), w.f32("optim.grads", grads, {steps, n});
  AdamConfig c{1e-2, 0.9, 0.999, 1e-8, 0.1};
  w.f64("optim.lr", c.lr), w.f64("optim.beta1", c.beta1);
  w.f64("optim.beta2", c.beta2), w.f64("optim.eps", c.eps);
  w.f64("optim.weight_decay", c.weightDecay);
  for (int kind = 0; kind < 3; ++kind) {
    FVec p = p0, m(n, 0.f), v(n, 0.f);
    for (int64_t s = 0; s < steps; ++s) {
      const float *g = grads.data() + s * n;
      if (kind == 0)
        adamwStep(p.data(), g, m.data(), v.data(), n, s + 1, c);
      else if (kind == 1)
        adamStep(p.data(), g, m.data(), v.data(), n, s + 1, c);
      else
        sgdStep(p.data(), g, n, c.lr, c.weightDecay);
    }
    const char *name[] = {"adamw", "adam", "sgd"};
    w.f32(std::string(name[kind]) + ".param", p, {n});
    if (kind < 2) {
      w.f32(std::string(name[kind]) + ".exp_avg", m, {n});
      w.f32(std::string(name[kind]) + ".exp_avg_sq", v, {n});
    }
  }
}

void writeMergeTokens(Writer &w) {
  int64_t tokens = 7, dim = 3, merge = 3, rows = mergedTokens(tokens, merge);
  FVec x = randomF(tokens * dim, 60), dy = randomF(rows * merge * dim, 61);
  FVec y(dy.size()), dx(x.size());
  mergeTokensForward(x.data(), y.data(), tokens, dim, merge);
  mergeTokensBackward(dy.data(), dx.data(), tokens, dim, merge);
  w.f64("merge.merge", static_cast<double>(merge));
  w.f32("merge.x", x, {tokens, dim}),
      w.f32("merge.dy", dy, {rows, merge * dim});
  w.f32("merge.y", y, {rows, merge * dim}),
      w.f32("merge.dx", dx, {tokens, dim});
}

} // namespace

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTPUT\n", argv[0]);
    return 2;
  }
  Writer w(argv[1]);
  if (!w.ok()) {
    std::perror(argv[1]);
    return 2;
  }
  writeLinear(w);
  writeNorms(w);
  writeActivations(w);
  writePositions(w);
  writeCrossEntropy(w);
  writeConv(w, "conv1d_s1", Conv1dShape{9, 4, 6, 3, 1, 1}, 20);
  writeConv(w, "conv1d_s2", Conv1dShape{10, 5, 3, 3, 2, 1}, 24);
  writeConv(w, "conv1d_k4", Conv1dShape{11, 3, 2, 4, 3, 2}, 28);
  writeDepthwise(w, "depthwise_k5", 10, 5, 5, 32);
  writeDepthwise(w, "depthwise_k4", 9, 4, 4, 36);
  writePatchEmbed(w);
  writeOptimizers(w);
  writeMergeTokens(w);
  return 0;
}
