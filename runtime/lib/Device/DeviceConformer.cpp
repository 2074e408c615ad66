//===- DeviceConformer.cpp - the macaron conformer block on the device ----===//
//
// cpu::ConformerBlock's composition (runtime/lib/CPU/ConformerBlock.cpp) on
// the CUDA kernels, with its parameter names: x1 = x + FFN1(norm(x)) / 2,
// x2 = x1 + MHSA(norm(x1)), x3 = x2 + Conv(norm(x2)), x4 = x3 +
// FFN2(norm(x3)) / 2, y = norm(x4). Conv is pointwise h -> 2h, GLU (the
// gate in the second half), a depthwise 'same' convolution over each
// sequence, a LayerNorm over channels, SiLU, pointwise h -> h. The half
// steps are scaleAdd (the forward) and a scaled copy (the backward); the
// other residual sums are the GEMM's beta = 1 or addInPlace, as in a
// transformer block, whose attention (DeviceLayers.cpp) it shares. A
// tensor-parallel shard splits the attention and both feed-forwards as a
// transformer block (their outputs, and their inputs' gradients, summed
// over the TP group: 3 all-reduces each way); the convolution module, whose
// LayerNorm needs every channel, runs whole.
//
//===----------------------------------------------------------------------===//
#include "DeviceImpl.h"

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::device;
namespace kc = mllm::kernels::cuda;

namespace {

/// The six norms, in the order of ConformerSaved's statistics.
const char *const kNorms[6] = {"ffn1_norm.", "attn_norm.", "conv_norm.",
                               "conv.norm.", "ffn2_norm.", "final_norm."};

llvm::Error copy(bf16 *to, const bf16 *from, int64_t n, cudaStream_t stream) {
  return check(cudaStatus(cudaMemcpyAsync(to, from, n * sizeof(bf16),
                                          cudaMemcpyDeviceToDevice, stream)),
               "copying the residual stream");
}

} // namespace

void device::carveConformerResults(Carver &c, DeviceLayer &l) {
  const LayerConfig &cf = l.config;
  const int64_t R = l.rows, H = cf.hidden;
  const int64_t q = cf.heads * cf.headDim, k = cf.kvHeads * cf.headDim;
  const int64_t in = (l.gated ? 2 : 1) * cf.ffn;
  ConformerSaved &s = l.conformer;
  for (bf16 **a : {&s.n1, &s.x1, &s.n2, &s.x2, &s.n3, &s.g, &s.dc, &s.ln, &s.s,
                   &s.x3, &s.n4, &s.x4})
    c.take(*a, R * H);
  c.take(s.p1, R * 2 * H);
  for (bf16 **a : {&s.u1, &s.u2})
    c.take(*a, R * in);
  for (bf16 **a : {&s.a1, &s.a2})
    c.take(*a, R * cf.ffn);
  for (int i = 0; i < 6; ++i) {
    c.take(s.mean[i], R);
    c.take(s.rstd[i], R);
  }
  c.take(l.q, R * q);
  c.take(l.o, R * q);
  c.take(l.k, R * k);
  c.take(l.v, R * k);
  c.take(l.lse, R * cf.heads);
}

llvm::Error DeviceTrainer::Impl::conformerForward(DeviceLayer &l, bf16 *out) {
  const LayerConfig &c = l.config;
  ConformerSaved &s = l.conformer;
  const Sequences &sq = *l.seq;
  const int64_t R = l.rows, H = c.hidden, S = sq.sequences, n = sq.tokens;
  const int64_t in = (l.gated ? 2 : 1) * c.ffn;
  auto at = [&](const char *what) { return "'" + l.name + "' " + what; };
  auto norm = [&](int i, const bf16 *x, bf16 *y) {
    return check(normForward(normOf(l, kNorms[i]), x, y, s.mean[i], s.rstd[i],
                             R, H, stream),
                 at(kNorms[i]));
  };
  auto ffn = [&](const std::string &p, const bf16 *xn, bf16 *u, bf16 *a,
                 bf16 *y) -> llvm::Error {
    MLLM_TRY(linear(xn, l.param(p + "w_in"), u, R, H, in));
    MLLM_TRY(addBias(u, l.maybe(p + "b_in"), R, in));
    MLLM_TRY(check(activationForward(c.activation, u, a, R, c.ffn, stream),
                   at("activation")));
    MLLM_TRY(linear(a, l.param(p + "w_out"), y, R, c.ffn, H));
    if (l.split)
      MLLM_TRY(tpSum(y, R * H, at("feed-forward output")));
    return addBias(y, l.maybe(p + "b_out"), R, H);
  };
  // `out` holds each feed-forward's output until the final norm writes it
  // (no scratch: a recomputing block's forward runs inside the backward).
  auto halfStep = [&](bf16 *to, const bf16 *from) -> llvm::Error {
    MLLM_TRY(copy(to, from, R * H, stream));
    return check(kc::scaleAdd(to, out, 0.5f, R * H, stream), at("half step"));
  };
  MLLM_TRY(norm(0, l.x, s.n1));
  MLLM_TRY(ffn("ffn1.", s.n1, s.u1, s.a1, out));
  MLLM_TRY(halfStep(s.x1, l.x));

  MLLM_TRY(norm(1, s.x1, s.n2));
  MLLM_TRY(attentionForward(l, s.n2, s.x1, s.x2));

  MLLM_TRY(norm(2, s.x2, s.n3));
  MLLM_TRY(linear(s.n3, l.param("conv.pw1.weight"), s.p1, R, H, 2 * H));
  MLLM_TRY(addBias(s.p1, l.maybe("conv.pw1.bias"), R, 2 * H));
  MLLM_TRY(check(kc::gluForward(s.p1, s.g, R, H, stream), at("GLU")));
  const DeviceParam *dwB = l.maybe("conv.dw.bias");
  MLLM_TRY(
      check(kc::depthwiseConv1dForward(s.g, l.param("conv.dw.weight").value,
                                       dwB ? dwB->value : nullptr, s.dc, n, H,
                                       c.convKernel, S, stream),
            at("depthwise convolution")));
  MLLM_TRY(norm(3, s.dc, s.ln));
  MLLM_TRY(check(kc::siluForward(s.ln, s.s, R * H, stream), at("SiLU")));
  MLLM_TRY(copy(s.x3, s.x2, R * H, stream));
  MLLM_TRY(linear(s.s, l.param("conv.pw2.weight"), s.x3, R, H, H, 1.0f));
  MLLM_TRY(addBias(s.x3, l.maybe("conv.pw2.bias"), R, H));

  MLLM_TRY(norm(4, s.x3, s.n4));
  MLLM_TRY(ffn("ffn2.", s.n4, s.u2, s.a2, out));
  MLLM_TRY(halfStep(s.x4, s.x3));
  return norm(5, s.x4, out);
}

llvm::Error DeviceTrainer::Impl::conformerBackward(DeviceLayer &l) {
  Scratch &g = scratch;
  const LayerConfig &c = l.config;
  ConformerSaved &s = l.conformer;
  const Sequences &sq = *l.seq;
  const int64_t R = l.rows, H = c.hidden, S = sq.sequences, n = sq.tokens;
  const int64_t in = (l.gated ? 2 : 1) * c.ffn;
  auto at = [&](const char *what) { return "'" + l.name + "' " + what; };
  // dx = the gradient of norm i's input x from dy.
  auto norm = [&](int i, const bf16 *dy, const bf16 *x, bf16 *dx) {
    return check(normBackward(normOf(l, kNorms[i]), dy, x, s.mean[i], s.rstd[i],
                              dx, R, H, g.discard, stream),
                 at(kNorms[i]));
  };
  auto add = [&](bf16 *y, const bf16 *x) {
    return check(kc::addInPlace(y, x, R * H, stream), at("residual gradient"));
  };
  // to = from / 2: the gradient of a half step's feed-forward output.
  auto half = [&](bf16 *to, const bf16 *from) -> llvm::Error {
    MLLM_TRY(
        check(cudaStatus(cudaMemsetAsync(to, 0, R * H * sizeof(bf16), stream)),
              at("half step gradient")));
    return check(kc::scaleAdd(to, from, 0.5f, R * H, stream),
                 at("half step gradient"));
  };
  // From dy, the gradient of a feed-forward's output: its weights' and,
  // with `dxn`, its input's gradients.
  auto ffn = [&](const std::string &p, const bf16 *xn, const bf16 *u,
                 const bf16 *a, const bf16 *dy, bf16 *dxn) -> llvm::Error {
    DeviceParam &wIn = l.param(p + "w_in"), &wOut = l.param(p + "w_out");
    MLLM_TRY(linearInput(dy, wOut, g.da, R, c.ffn, H));
    MLLM_TRY(linearWeight(a, dy, wOut, R, c.ffn, H));
    MLLM_TRY(biasGrad(dy, l.maybe(p + "b_out"), R, H));
    MLLM_TRY(
        check(activationBackward(c.activation, u, g.da, g.du, R, c.ffn, stream),
              at("activation gradient")));
    MLLM_TRY(linearWeight(xn, g.du, wIn, R, H, in));
    MLLM_TRY(biasGrad(g.du, l.maybe(p + "b_in"), R, in));
    if (!dxn)
      return llvm::Error::success();
    MLLM_TRY(linearInput(g.du, wIn, dxn, R, H, in));
    return l.split ? tpSum(dxn, R * H, at("feed-forward input gradient"))
                   : llvm::Error::success();
  };
  // Final norm and the second feed-forward: dh = dx3 at the end.
  MLLM_TRY(norm(5, g.dy, s.x4, g.dx));
  MLLM_TRY(half(g.dh, g.dx));
  MLLM_TRY(ffn("ffn2.", s.n4, s.u2, s.a2, g.dh, g.dxn));
  MLLM_TRY(norm(4, g.dxn, s.x3, g.dh));
  MLLM_TRY(add(g.dh, g.dx));

  // The convolution module: dx = dx2 at the end.
  DeviceParam &pw2 = l.param("conv.pw2.weight"),
              &pw1 = l.param("conv.pw1.weight"),
              &dwW = l.param("conv.dw.weight");
  MLLM_TRY(linearInput(g.dh, pw2, g.dxn, R, H, H));
  MLLM_TRY(linearWeight(s.s, g.dh, pw2, R, H, H));
  MLLM_TRY(biasGrad(g.dh, l.maybe("conv.pw2.bias"), R, H));
  MLLM_TRY(check(kc::siluBackward(s.ln, g.dxn, g.dx, R * H, stream),
                 at("SiLU gradient")));
  MLLM_TRY(norm(3, g.dx, s.dc, g.dy));
  MLLM_TRY(check(kc::depthwiseConv1dBackwardInput(g.dy, dwW.value, g.dxn, n, H,
                                                  c.convKernel, S, stream),
                 at("depthwise convolution gradient")));
  // The bias is a column sum: on its own, so either may be frozen.
  if (dwW.trains)
    MLLM_TRY(
        check(kc::depthwiseConv1dBackwardWeight(s.g, g.dy, dwW.grad, nullptr, n,
                                                H, c.convKernel, S, stream),
              at("depthwise convolution gradient")));
  MLLM_TRY(biasGrad(g.dy, l.maybe("conv.dw.bias"), R, H));
  MLLM_TRY(check(kc::gluBackward(s.p1, g.dxn, g.du, R, H, stream),
                 at("GLU gradient")));
  MLLM_TRY(linearWeight(s.n3, g.du, pw1, R, H, 2 * H));
  MLLM_TRY(biasGrad(g.du, l.maybe("conv.pw1.bias"), R, 2 * H));
  MLLM_TRY(linearInput(g.du, pw1, g.dxn, R, H, 2 * H));
  MLLM_TRY(norm(2, g.dxn, s.x2, g.dx));
  MLLM_TRY(add(g.dx, g.dh));

  // The attention: dh = dx1 at the end.
  MLLM_TRY(attentionBackward(l, g.dx, s.n2, /*inputGrad=*/true));
  if (l.split)
    MLLM_TRY(tpSum(g.dxn, R * H, at("attention input gradient")));
  MLLM_TRY(norm(1, g.dxn, s.x1, g.dh));
  MLLM_TRY(add(g.dh, g.dx));

  // The first feed-forward; its norm's input gradient only when needed.
  MLLM_TRY(half(g.dy, g.dh));
  const bool below = l.inputGrad || normOf(l, kNorms[0]).w.trains;
  MLLM_TRY(ffn("ffn1.", s.n1, s.u1, s.a1, g.dy, below ? g.dxn : nullptr));
  // No input gradient: dy is left holding FFN1's half of it, which no
  // caller reads (a layer without inputGrad passes nothing upstream).
  if (!below)
    return llvm::Error::success();
  MLLM_TRY(norm(0, g.dxn, l.x, g.dx));
  MLLM_TRY(add(g.dx, g.dh));
  std::swap(g.dy, g.dx);
  return llvm::Error::success();
}
