//===- DeviceEncoder.cpp - encoders, projectors and the fan-in on the device =//
//
// The model's forward runs every encoder (patch embedding, blocks, final
// norm, the hand-over to the projector, the projector) and then the LLM,
// whose fan-in copies the projected tokens over the embedding's rows of
// their items (exec::FanInStep's runs, as the CPU copies them). The
// backward runs the LLM, gathers those rows' gradient for the encoders
// that train (and zeroes it for the embedding), then those encoders.
// Compositions as the CPU layers' (runtime/lib/CPU: PatchEmbedding,
// MlpProjector, LinearProjector, ProjectorInputStep).
//
//===----------------------------------------------------------------------===//
#include "DeviceImpl.h"

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::device;
namespace kc = mllm::kernels::cuda;

llvm::Error DeviceTrainer::Impl::forward(double *lossSum) {
  for (DeviceEncoder &e : encoders)
    for (size_t i = 0; i < e.layers.size() && !e.idle; ++i)
      MLLM_TRY(forwardLayer(e.layers[i],
                            i + 1 < e.layers.size() ? e.layers[i + 1].x : e.out,
                            nullptr));
  for (size_t i = 0; i < layers.size(); ++i) {
    bf16 *out = i + 1 < layers.size() ? layers[i + 1].x : nullptr;
    MLLM_TRY(forwardLayer(layers[i], out, lossSum));
    if (i == 0 && !encoders.empty())
      MLLM_TRY(fanInForward(out));
  }
  return llvm::Error::success();
}

llvm::Error DeviceTrainer::Impl::backward() {
  // Upstream of a layer that neither trains nor passes a gradient on,
  // nothing in its chain needs one (the plan's frozen analysis).
  for (size_t i = layers.size(); i-- > 0;) {
    DeviceLayer &l = layers[i];
    if (!l.trains && !l.inputGrad)
      break;
    if (l.recompute) // Its output, the next layer's input, is done with.
      MLLM_TRY(forwardLayer(l, layers[i + 1].x, nullptr));
    MLLM_TRY(backwardLayer(l));
    MLLM_TRY(gradientsDone(l));
    if (i == 1 && !encoders.empty())
      MLLM_TRY(fanInBackward(scratch.dy, layers[0].trains));
  }
  // The encoders last to first: their parameters lie first to last in the
  // gradient region, which so becomes final from its end down (buckets).
  for (size_t k = encoders.size(); k-- > 0;) {
    DeviceEncoder &e = encoders[k];
    if (!e.trains)
      continue;
    MLLM_TRY(
        check(cudaStatus(cudaMemcpyAsync(scratch.dy, e.dOut,
                                         e.outRows * e.outWidth * sizeof(bf16),
                                         cudaMemcpyDeviceToDevice, stream)),
              "the gradient of '" + e.name + "''s tokens"));
    for (size_t i = e.layers.size(); i-- > 0;) {
      DeviceLayer &l = e.layers[i];
      if (!l.trains && !l.inputGrad)
        break;
      if (l.recompute)
        MLLM_TRY(forwardLayer(
            l, i + 1 < e.layers.size() ? e.layers[i + 1].x : e.out, nullptr));
      MLLM_TRY(backwardLayer(l));
      MLLM_TRY(gradientsDone(l));
    }
  }
  return llvm::Error::success();
}

llvm::Error DeviceTrainer::Impl::fanInForward(bf16 *sequence) {
  for (DeviceEncoder &e : encoders)
    if (e.copies > 0)
      MLLM_TRY(check(kc::copyRows(e.out, e.fromRows, sequence, e.toRows,
                                  e.copies, e.outWidth, stream),
                     "the fan-in of '" + e.name + "'"));
  return llvm::Error::success();
}

llvm::Error DeviceTrainer::Impl::fanInBackward(bf16 *dSequence,
                                               bool embeddingTrains) {
  for (DeviceEncoder &e : encoders) {
    if (e.trains) {
      // Items the microbatch does not have (padding) get zero.
      MLLM_TRY(
          check(cudaStatus(cudaMemsetAsync(
                    e.dOut, 0, e.outRows * e.outWidth * sizeof(bf16), stream)),
                "clearing the gradient of '" + e.name + "''s tokens"));
      if (e.copies > 0)
        MLLM_TRY(check(kc::copyRows(dSequence, e.toRows, e.dOut, e.fromRows,
                                    e.copies, e.outWidth, stream),
                       "the fan-in gradient of '" + e.name + "'"));
    }
    // The embedding's rows there were replaced: they get no gradient.
    if (embeddingTrains && e.copies > 0)
      MLLM_TRY(check(kc::copyRows(nullptr, nullptr, dSequence, e.toRows,
                                  e.copies, e.outWidth, stream),
                     "the fan-in gradient of '" + e.name + "'"));
  }
  return llvm::Error::success();
}

namespace {

/// The audio front end's convolutions (cpu::AudioFrontend): mels to
/// hidden, kernel 3, stride 1; hidden to hidden, kernel 3, stride 2.
kernels::cpu::Conv1dShape conv1(const LayerConfig &c) {
  return {c.frames, c.melBins, c.hidden, 3, 1, 1};
}
kernels::cpu::Conv1dShape conv2(const LayerConfig &c) {
  return {c.frames, c.hidden, c.hidden, 3, 2, 1};
}

kernels::cpu::PatchShape patchShape(const LayerConfig &c) {
  kernels::cpu::PatchShape s;
  s.channels = c.channels;
  s.frames = c.temporalPatch;
  s.temporalPatch = c.temporalPatch;
  s.patch = c.patch;
  s.height = c.imageHeight;
  s.width = c.imageWidth;
  return s;
}

} // namespace

llvm::Error DeviceTrainer::Impl::forwardEncoderLayer(DeviceLayer &l,
                                                     bf16 *out) {
  const LayerConfig &c = l.config;
  const int64_t R = l.rows;
  auto at = [&](const char *what) { return "'" + l.name + "' " + what; };
  switch (l.kind) {
  case LayerKind::Patch: {
    const kernels::cpu::PatchShape ps = patchShape(c);
    const int64_t H = c.hidden, pd = ps.patchDim(), g = l.grid;
    const int64_t n = g + (l.classToken ? 1 : 0);
    MLLM_TRY(check(kc::patchify(l.media, l.patches, ps, l.items, stream),
                   at("patches")));
    // One GEMM over every item's patches; behind a class token they go to
    // the workspace first and then to their rows in one pitched copy (no
    // GEMM on an offset cuBLASLt might find misaligned).
    bf16 *patchRows = l.classToken ? scratch.dx : out;
    MLLM_TRY(
        linear(l.patches, l.param("weight"), patchRows, l.items * g, pd, H));
    MLLM_TRY(addBias(patchRows, l.maybe("bias"), l.items * g, H));
    if (l.classToken) {
      MLLM_TRY(check(
          cudaStatus(cudaMemcpy2DAsync(
              out + H, n * H * sizeof(bf16), patchRows, g * H * sizeof(bf16),
              g * H * sizeof(bf16), l.items, cudaMemcpyDeviceToDevice, stream)),
          at("patch rows")));
      const DeviceParam &cls = l.param("class_token");
      for (int64_t i = 0; i < l.items; ++i)
        MLLM_TRY(check(cudaStatus(cudaMemcpyAsync(
                           out + i * n * H, cls.value, H * sizeof(bf16),
                           cudaMemcpyDeviceToDevice, stream)),
                       at("class token")));
    }
    if (DeviceParam *pos = l.maybe("pos_weight"))
      MLLM_TRY(check(kc::addRowVector(out, pos->value, l.items, n * H, stream),
                     at("positions")));
    return llvm::Error::success();
  }
  case LayerKind::Audio: {
    // conv1 -> GELU -> conv2 -> GELU (+ positions), per window: im2col into
    // the workspace, then one GEMM over every window's columns with the
    // weight [out, in x 3] as a linear layer's.
    const kernels::cpu::Conv1dShape s1 = conv1(c), s2 = conv2(c);
    const int64_t W = l.items, H = c.hidden, F = c.frames, F2 = s2.outFrames();
    MLLM_TRY(check(kc::im2col1d(l.media, scratch.cols, s1, W, stream),
                   at("conv1 columns")));
    MLLM_TRY(linear(scratch.cols, l.param("conv1.weight"), l.u, W * F,
                    s1.colsWidth(), H));
    MLLM_TRY(addBias(l.u, l.maybe("conv1.bias"), W * F, H));
    MLLM_TRY(
        check(kc::geluForward(l.u, l.g1, W * F * H, stream), at("activation")));
    MLLM_TRY(check(kc::im2col1d(l.g1, scratch.cols, s2, W, stream),
                   at("conv2 columns")));
    MLLM_TRY(linear(scratch.cols, l.param("conv2.weight"), l.a, W * F2,
                    s2.colsWidth(), H));
    MLLM_TRY(addBias(l.a, l.maybe("conv2.bias"), W * F2, H));
    MLLM_TRY(
        check(kc::geluForward(l.a, out, W * F2 * H, stream), at("activation")));
    if (DeviceParam *pos = l.maybe("pos_weight"))
      MLLM_TRY(check(kc::addRowVector(out, pos->value, W, F2 * H, stream),
                     at("positions")));
    return llvm::Error::success();
  }
  case LayerKind::ProjectorInput: {
    // Without the class token; a whole-token merge is a reshape.
    const int64_t W = l.width, n = l.itemTokens, kept = n - 1;
    if (!l.classToken)
      return check(
          cudaStatus(cudaMemcpyAsync(out, l.x, R * W * sizeof(bf16),
                                     cudaMemcpyDeviceToDevice, stream)),
          at("forward"));
    return check(
        cudaStatus(cudaMemcpy2DAsync(
            out, kept * W * sizeof(bf16), l.x + W, n * W * sizeof(bf16),
            kept * W * sizeof(bf16), R / n, cudaMemcpyDeviceToDevice, stream)),
        at("forward"));
  }
  case LayerKind::Linear: {
    MLLM_TRY(linear(l.x, l.param("weight"), out, R, c.in, c.out));
    return addBias(out, l.maybe("bias"), R, c.out);
  }
  case LayerKind::Mlp: {
    MLLM_TRY(linear(l.x, l.param("fc1.weight"), l.u, R, c.in, c.hidden));
    MLLM_TRY(addBias(l.u, l.maybe("fc1.bias"), R, c.hidden));
    MLLM_TRY(
        check(activationForward(c.activation, l.u, l.a, R, c.hidden, stream),
              at("activation")));
    MLLM_TRY(linear(l.a, l.param("fc2.weight"), out, R, c.hidden, c.out));
    return addBias(out, l.maybe("fc2.bias"), R, c.out);
  }
  default:
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "'%s': not an encoder layer (internal)",
                                   l.name.c_str());
  }
}

llvm::Error DeviceTrainer::Impl::backwardEncoderLayer(DeviceLayer &l) {
  Scratch &g = scratch;
  const LayerConfig &c = l.config;
  const int64_t R = l.rows;
  auto at = [&](const char *what) { return "'" + l.name + "' " + what; };
  switch (l.kind) {
  case LayerKind::Patch: {
    // Images need no gradient: only the weights'.
    const kernels::cpu::PatchShape ps = patchShape(c);
    const int64_t H = c.hidden, pd = ps.patchDim(), gr = l.grid;
    const int64_t n = gr + (l.classToken ? 1 : 0);
    // Behind class tokens the patch rows' gradient is gathered into the
    // workspace first (one pitched copy), and so are the class rows'.
    const bf16 *dPatches = g.dy;
    if (l.classToken) {
      MLLM_TRY(check(cudaStatus(cudaMemcpy2DAsync(
                         g.dx, gr * H * sizeof(bf16), g.dy + H,
                         n * H * sizeof(bf16), gr * H * sizeof(bf16), l.items,
                         cudaMemcpyDeviceToDevice, stream)),
                     at("patch rows' gradient")));
      MLLM_TRY(check(
          cudaStatus(cudaMemcpy2DAsync(
              g.dxn, H * sizeof(bf16), g.dy, n * H * sizeof(bf16),
              H * sizeof(bf16), l.items, cudaMemcpyDeviceToDevice, stream)),
          at("class rows' gradient")));
      MLLM_TRY(biasGrad(g.dxn, &l.param("class_token"), l.items, H));
      dPatches = g.dx;
    }
    MLLM_TRY(linearWeight(l.patches, dPatches, l.param("weight"), l.items * gr,
                          pd, H));
    MLLM_TRY(biasGrad(dPatches, l.maybe("bias"), l.items * gr, H));
    return biasGrad(g.dy, l.maybe("pos_weight"), l.items, n * H);
  }
  case LayerKind::Audio: {
    // Media need no gradient: the weights' only, as cpu::AudioFrontend.
    const kernels::cpu::Conv1dShape s1 = conv1(c), s2 = conv2(c);
    const int64_t W = l.items, H = c.hidden, F = c.frames, F2 = s2.outFrames();
    DeviceParam &w1 = l.param("conv1.weight"), &w2 = l.param("conv2.weight");
    MLLM_TRY(biasGrad(g.dy, l.maybe("pos_weight"), W, F2 * H));
    bf16 *du2 = g.dx, *dg1 = g.dxn, *du1 = g.dh;
    MLLM_TRY(check(kc::geluBackward(l.a, g.dy, du2, W * F2 * H, stream),
                   at("activation gradient")));
    MLLM_TRY(
        check(kc::im2col1d(l.g1, g.cols, s2, W, stream), at("conv2 columns")));
    MLLM_TRY(linearWeight(g.cols, du2, w2, W * F2, s2.colsWidth(), H));
    MLLM_TRY(biasGrad(du2, l.maybe("conv2.bias"), W * F2, H));
    // The columns' gradient, then summed back onto the frames.
    MLLM_TRY(linearInput(du2, w2, g.cols, W * F2, s2.colsWidth(), H));
    MLLM_TRY(check(kc::col2im1d(g.cols, dg1, s2, W, stream),
                   at("conv2 input gradient")));
    MLLM_TRY(check(kc::geluBackward(l.u, dg1, du1, W * F * H, stream),
                   at("activation gradient")));
    MLLM_TRY(check(kc::im2col1d(l.media, g.cols, s1, W, stream),
                   at("conv1 columns")));
    MLLM_TRY(linearWeight(g.cols, du1, w1, W * F, s1.colsWidth(), H));
    return biasGrad(du1, l.maybe("conv1.bias"), W * F, H);
  }
  case LayerKind::ProjectorInput: {
    const int64_t W = l.width, n = l.itemTokens, kept = n - 1;
    if (!l.classToken) // A reshape: the gradient is the same memory.
      return llvm::Error::success();
    // The class token's rows get zero.
    MLLM_TRY(check(
        cudaStatus(cudaMemsetAsync(g.dx, 0, R * W * sizeof(bf16), stream)),
        at("backward")));
    MLLM_TRY(check(
        cudaStatus(cudaMemcpy2DAsync(
            g.dx + W, n * W * sizeof(bf16), g.dy, kept * W * sizeof(bf16),
            kept * W * sizeof(bf16), R / n, cudaMemcpyDeviceToDevice, stream)),
        at("backward")));
    std::swap(g.dy, g.dx);
    return llvm::Error::success();
  }
  case LayerKind::Linear: {
    DeviceParam &w = l.param("weight");
    MLLM_TRY(linearWeight(l.x, g.dy, w, R, c.in, c.out));
    MLLM_TRY(biasGrad(g.dy, l.maybe("bias"), R, c.out));
    if (!l.inputGrad)
      return llvm::Error::success();
    MLLM_TRY(linearInput(g.dy, w, g.dx, R, c.in, c.out));
    std::swap(g.dy, g.dx);
    return llvm::Error::success();
  }
  case LayerKind::Mlp: {
    DeviceParam &w1 = l.param("fc1.weight"), &w2 = l.param("fc2.weight");
    MLLM_TRY(linearInput(g.dy, w2, g.da, R, c.hidden, c.out));
    MLLM_TRY(linearWeight(l.a, g.dy, w2, R, c.hidden, c.out));
    MLLM_TRY(biasGrad(g.dy, l.maybe("fc2.bias"), R, c.out));
    MLLM_TRY(check(
        activationBackward(c.activation, l.u, g.da, g.du, R, c.hidden, stream),
        at("activation gradient")));
    MLLM_TRY(linearWeight(l.x, g.du, w1, R, c.in, c.hidden));
    MLLM_TRY(biasGrad(g.du, l.maybe("fc1.bias"), R, c.hidden));
    if (!l.inputGrad)
      return llvm::Error::success();
    MLLM_TRY(linearInput(g.du, w1, g.dx, R, c.in, c.hidden));
    std::swap(g.dy, g.dx);
    return llvm::Error::success();
  }
  default:
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "'%s': not an encoder layer (internal)",
                                   l.name.c_str());
  }
}
