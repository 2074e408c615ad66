//===- Parts.cpp - activations, linear maps, norms, feed-forwards ---------===//
//
// The weight-carrying pieces of the CPU layers, each a thin composition of
// the CPU kernels: the only arithmetic here is which kernel runs on which
// buffer (and a GEMM with beta = 1 where an input gradient sums several
// linear maps).
//
//===----------------------------------------------------------------------===//

#include "mllm/runtime/cpu/LayerParts.h"

#include "mllm/kernels/cpu/Activation.h"
#include "mllm/kernels/cpu/Elementwise.h"
#include "mllm/kernels/cpu/Gemm.h"
#include "mllm/kernels/cpu/Linear.h"
#include "mllm/kernels/cpu/Norm.h"

using namespace mllm::runtime;
using namespace mllm::runtime::cpu;
namespace k = mllm::kernels::cpu;

std::optional<Activation>
mllm::runtime::cpu::parseActivation(llvm::StringRef name) {
  if (name == "gelu")
    return Activation::Gelu;
  if (name == "relu")
    return Activation::Relu;
  if (name == "silu")
    return Activation::Silu;
  if (name == "swiglu")
    return Activation::SwiGLU;
  if (name == "geglu")
    return Activation::GeGLU;
  return std::nullopt;
}

template <typename T>
void mllm::runtime::cpu::activationForward(Activation a, const T *in, T *out,
                                           int64_t rows, int64_t width) {
  int64_t n = rows * width;
  switch (a) {
  case Activation::Gelu:
    return k::geluForward(in, out, n);
  case Activation::GeluTanh:
    return k::geluTanhForward(in, out, n);
  case Activation::Relu:
    return k::reluForward(in, out, n);
  case Activation::Silu:
    return k::siluForward(in, out, n);
  case Activation::SwiGLU:
    return k::swigluForward(in, out, rows, width);
  case Activation::GeGLU:
    return k::gegluForward(in, out, rows, width);
  }
}

template <typename T>
void mllm::runtime::cpu::activationBackward(Activation a, const T *in,
                                            const T *dout, T *din, int64_t rows,
                                            int64_t width) {
  int64_t n = rows * width;
  switch (a) {
  case Activation::Gelu:
    return k::geluBackward(in, dout, din, n);
  case Activation::GeluTanh:
    return k::geluTanhBackward(in, dout, din, n);
  case Activation::Relu:
    return k::reluBackward(in, dout, din, n);
  case Activation::Silu:
    return k::siluBackward(in, dout, din, n);
  case Activation::SwiGLU:
    return k::swigluBackward(in, dout, din, rows, width);
  case Activation::GeGLU:
    return k::gegluBackward(in, dout, din, rows, width);
  }
}

//===----------------------------------------------------------------------===//
// LinearPart
//===----------------------------------------------------------------------===//

template <typename T>
void LinearPart<T>::create(ParamList<T> &list, const std::string &wName,
                           const std::string &bName, int64_t inDim,
                           int64_t outDim, bool trainable, Split split,
                           const TensorShard &shard, int64_t blocks) {
  const int64_t p = shard.size;
  if (p == 1)
    split = Split::None;
  in = split == Split::Row ? inDim / p : inDim;
  out = split == Split::Column ? outDim / p : outDim;
  rowParallel = split == Split::Row;
  ShardInfo ws, bs;
  if (split == Split::Column) {
    // Of each of the `blocks` blocks of rows, this rank's 1/p.
    ws = {0, blocks, shard.rank * (out / blocks), {outDim, inDim}};
    bs = {0, blocks, ws.offset, {outDim}};
  } else if (split == Split::Row) {
    ws = {1, 1, shard.rank * in, {outDim, inDim}};
  }
  w = list.add(wName, {out, in}, ParamInit::Normal, trainable, ws);
  b = bName.empty() ? nullptr
                    : list.add(bName, {out}, ParamInit::Zeros, trainable, bs);
}

template <typename T>
void LinearPart<T>::forward(const T *x, T *y, int64_t rows) const {
  const T *bias = b && !rowParallel ? b->value.ptr() : nullptr;
  k::linearForward(x, w->value.ptr(), bias, y, rows, in, out);
}

template <typename T>
void LinearPart<T>::addBias(T *y, int64_t rows) const {
  if (!b)
    return;
  for (int64_t r = 0; r < rows; ++r)
    k::add(y + r * out, b->value.ptr(), out);
}

template <typename T>
void LinearPart<T>::backwardInput(const T *dy, T *dx, int64_t rows,
                                  bool accumulate) const {
  if (!accumulate)
    return k::linearBackwardInput(dy, w->value.ptr(), dx, rows, in, out);
  // dx += dy W: the kernel's product with beta = 1.
  k::gemm<T>(false, false, rows, in, out, T(1), dy, out, w->value.ptr(), in,
             T(1), dx, in);
}

template <typename T>
void LinearPart<T>::backwardWeight(const T *x, const T *dy,
                                   int64_t rows) const {
  if (!hasGrad(w))
    return;
  k::linearBackwardWeight(x, dy, w->grad.ptr(),
                          hasGrad(b) ? b->grad.ptr() : nullptr, rows, in, out);
}

//===----------------------------------------------------------------------===//
// NormPart
//===----------------------------------------------------------------------===//

template <typename T>
void NormPart<T>::create(ParamList<T> &list, const std::string &prefix,
                         int64_t d, bool isLayerNorm, bool trainable) {
  dim = d;
  layerNorm = isLayerNorm;
  w = list.add(prefix + "weight", {dim}, ParamInit::Ones, trainable);
  b = layerNorm ? list.add(prefix + "bias", {dim}, ParamInit::Zeros, trainable)
                : nullptr;
}

template <typename T>
void NormPart<T>::forward(const T *x, T *y, Saved &saved, int64_t rows) const {
  saved.rstd.resize({rows});
  if (layerNorm) {
    saved.mean.resize({rows});
    k::layerNormForward(x, w->value.ptr(), b->value.ptr(), y, saved.mean.ptr(),
                        saved.rstd.ptr(), rows, dim, kEps);
  } else {
    k::rmsNormForward(x, w->value.ptr(), y, saved.rstd.ptr(), rows, dim, kEps);
  }
}

template <typename T>
void NormPart<T>::backwardInput(const T *dy, const T *x, const Saved &saved,
                                T *dx, int64_t rows) const {
  if (layerNorm)
    k::layerNormBackwardInput(dy, x, w->value.ptr(), saved.mean.ptr(),
                              saved.rstd.ptr(), dx, rows, dim);
  else
    k::rmsNormBackwardInput(dy, x, w->value.ptr(), saved.rstd.ptr(), dx, rows,
                            dim);
}

template <typename T>
void NormPart<T>::backwardWeight(const T *dy, const T *x, const Saved &saved,
                                 int64_t rows) const {
  if (!hasGrad(w))
    return;
  if (layerNorm)
    k::layerNormBackwardWeight(dy, x, saved.mean.ptr(), saved.rstd.ptr(),
                               w->grad.ptr(),
                               hasGrad(b) ? b->grad.ptr() : nullptr, rows, dim);
  else
    k::rmsNormBackwardWeight(dy, x, saved.rstd.ptr(), w->grad.ptr(), rows, dim);
}

//===----------------------------------------------------------------------===//
// FfnPart
//===----------------------------------------------------------------------===//

template <typename T>
void FfnPart<T>::create(ParamList<T> &list, const std::string &prefix,
                        int64_t hidden, int64_t f, Activation a, bool bias,
                        bool trainable, TensorContext &context) {
  tp = &context;
  ffn = f / context.shard.size;
  act = a;
  // A gated w_in is two blocks [gate | up]: a shard holds its slice of each,
  // so that its activation pairs the same columns.
  const int64_t blocks = isGated(a) ? 2 : 1;
  wIn.create(list, prefix + "w_in", bias ? prefix + "b_in" : "", hidden,
             blocks * f, trainable, Split::Column, context.shard, blocks);
  wOut.create(list, prefix + "w_out", bias ? prefix + "b_out" : "", f, hidden,
              trainable, Split::Row, context.shard);
}

template <typename T>
void FfnPart<T>::forward(const T *x, T *y, Saved &saved, int64_t rows) const {
  saved.u.resize({rows, wIn.out});
  saved.a.resize({rows, ffn});
  wIn.forward(x, saved.u.ptr(), rows);
  activationForward(act, saved.u.ptr(), saved.a.ptr(), rows, ffn);
  wOut.forward(saved.a.ptr(), y, rows);
  if (wOut.rowParallel) {
    tp->allReduce(y, rows * wOut.out, "the feed-forward output");
    wOut.addBias(y, rows);
  }
}

template <typename T>
void FfnPart<T>::backward(const T *dy, Saved &saved, T *dx,
                          int64_t rows) const {
  Tensor<T> da({rows, ffn});
  wOut.backwardInput(dy, da.ptr(), rows);
  saved.du.resize({rows, wIn.out});
  activationBackward(act, saved.u.ptr(), da.ptr(), saved.du.ptr(), rows, ffn);
  wIn.backwardInput(saved.du.ptr(), dx, rows);
  tp->allReduce(dx, rows * wIn.in, "the feed-forward input gradient");
}

template <typename T>
void FfnPart<T>::backwardWeight(const T *x, const T *dy, const Saved &saved,
                                int64_t rows) const {
  wOut.backwardWeight(saved.a.ptr(), dy, rows);
  wIn.backwardWeight(x, saved.du.ptr(), rows);
}

namespace mllm::runtime::cpu {
#define MLLM_INSTANTIATE(T)                                                    \
  template void activationForward(Activation, const T *, T *, int64_t,         \
                                  int64_t);                                    \
  template void activationBackward(Activation, const T *, const T *, T *,      \
                                   int64_t, int64_t);                          \
  template struct LinearPart<T>;                                               \
  template struct NormPart<T>;                                                 \
  template struct FfnPart<T>;
MLLM_INSTANTIATE(float)
MLLM_INSTANTIATE(double)
#undef MLLM_INSTANTIATE
} // namespace mllm::runtime::cpu
