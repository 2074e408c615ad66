//===- InputLayers.cpp - token, patch and audio input layers --------------===//
//
// The first layers of the encoder parts read data, not activations: images
// (patch_embedding) or log-mel features (audio_frontend); the token
// embedding is in TokenEmbedding.cpp. Data needs no gradient, so
// backwardInput leaves dIn empty and only backwardWeight does work. Both
// run whole on every TP rank.
//
//===----------------------------------------------------------------------===//

#include "mllm/runtime/cpu/LayerParts.h"

#include "mllm/kernels/cpu/Activation.h"
#include "mllm/kernels/cpu/Conv.h"
#include "mllm/kernels/cpu/Elementwise.h"
#include "mllm/kernels/cpu/PatchEmbed.h"
#include "mllm/kernels/cpu/Positions.h"

#include <numeric>

using namespace mllm::runtime;
using namespace mllm::runtime::cpu;
namespace k = mllm::kernels::cpu;

namespace {

/// Adds pos[0, n) to each of `sequences` blocks of n values of `out`, and
/// the matching backward (dpos += each block, in order).
template <typename T>
void addPerSequence(T *out, const T *pos, int64_t sequences, int64_t n) {
  for (int64_t s = 0; s < sequences; ++s)
    k::add(out + s * n, pos, n);
}

template <typename T>
class PatchEmbedding final : public LayerBase<T> {
  using LayerBase<T>::config;
  Param<T> *w = nullptr, *b = nullptr, *cls = nullptr, *pos = nullptr;
  int64_t gridH, gridW;

  struct State : OwnedState {
    int64_t items = 0;
    Tensor<T> patches; ///< [items * grid, patchDim]
  };

  int64_t grid() const { return gridH * gridW; }
  int64_t extra() const { return config.classToken ? 1 : 0; }
  /// The kernel's shape of one item after cropping to whole patches.
  k::PatchShape shape() const {
    k::PatchShape s;
    s.channels = config.channels;
    s.frames = config.temporalPatch;
    s.temporalPatch = config.temporalPatch;
    s.patch = config.patch;
    s.height = gridH * config.patch;
    s.width = gridW * config.patch;
    return s;
  }

public:
  PatchEmbedding(const LayerConfig &c, bool train)
      : LayerBase<T>("patch_embedding", c, train),
        gridH(c.imageHeight / c.patch), gridW(c.imageWidth / c.patch) {
    w = this->list.add(
        "weight", {c.hidden, c.channels, c.temporalPatch, c.patch, c.patch},
        ParamInit::Normal, train);
    if (c.bias)
      b = this->list.add("bias", {c.hidden}, ParamInit::Zeros, train);
    if (c.classToken)
      cls = this->list.add("class_token", {c.hidden}, ParamInit::Normal, train);
    if (c.position == "learned")
      pos = this->list.add("pos_weight", {c.positions, c.hidden},
                           ParamInit::Normal, train);
  }
  int64_t outputTokens(int64_t) const override { return grid() + extra(); }
  int64_t outputWidth() const override { return config.hidden; }

  std::unique_ptr<LayerState> forward(const Batch<T> &batch, const Tensor<T> &,
                                      Tensor<T> &out) override {
    if (!batch.media || batch.sequences < 1)
      layerFatal("patch_embedding: the batch has no images");
    const int64_t h = config.hidden, n = grid() + extra();
    const int64_t C = config.channels, tp = config.temporalPatch;
    const int64_t H = config.imageHeight, W = config.imageWidth;
    k::PatchShape ps = shape();
    auto st = std::make_unique<State>();
    st->owner = this;
    st->items = batch.sequences;
    st->patches.resize({st->items * grid(), ps.patchDim()});
    out.resize({st->items * n, h});
    // Pixels past the last whole patch are dropped, as a strided Conv3d
    // drops them.
    const bool crop = ps.height != H || ps.width != W;
    std::vector<T> cropped(crop ? C * tp * ps.height * ps.width : 0);
    for (int64_t i = 0; i < st->items; ++i) {
      const T *image = batch.media + i * C * tp * H * W;
      if (crop) {
        for (int64_t plane = 0; plane < C * tp; ++plane)
          for (int64_t y = 0; y < ps.height; ++y)
            std::copy(image + (plane * H + y) * W,
                      image + (plane * H + y) * W + ps.width,
                      cropped.data() + (plane * ps.height + y) * ps.width);
        image = cropped.data();
      }
      T *rowsOut = out.ptr() + (i * n + extra()) * h;
      k::patchEmbedForward(image, w->value.ptr(), b ? b->value.ptr() : nullptr,
                           st->patches.ptr() + i * grid() * ps.patchDim(),
                           rowsOut, ps, h);
      if (cls)
        std::copy(cls->value.data.begin(), cls->value.data.end(),
                  out.ptr() + i * n * h);
    }
    if (pos)
      addPerSequence(out.ptr(), pos->value.ptr(), st->items, n * h);
    return st;
  }
  void backwardInput(const Batch<T> &, LayerState &state, const Tensor<T> &,
                     Tensor<T> &dIn) override {
    ownState<State>(state, this);
    dIn = Tensor<T>();
  }
  void backwardWeight(const Batch<T> &, LayerState &state,
                      const Tensor<T> &dOut) override {
    State &st = ownState<State>(state, this);
    const int64_t h = config.hidden, n = grid() + extra();
    k::PatchShape ps = shape();
    for (int64_t i = 0; i < st.items; ++i) {
      const T *dy = dOut.ptr() + i * n * h;
      if (hasGrad(w))
        k::patchEmbedBackwardWeight(
            st.patches.ptr() + i * grid() * ps.patchDim(), dy + extra() * h,
            w->grad.ptr(), hasGrad(b) ? b->grad.ptr() : nullptr, ps, h);
      if (hasGrad(cls))
        k::add(cls->grad.ptr(), dy, h);
      if (hasGrad(pos))
        k::add(pos->grad.ptr(), dy, n * h);
    }
  }
};

template <typename T>
class AudioFrontend final : public LayerBase<T> {
  using LayerBase<T>::config;
  Param<T> *w1, *b1, *w2, *b2, *pos = nullptr;

  struct State : OwnedState {
    int64_t items = 0;
    Tensor<T> x, u1, g1, u2; ///< media, conv1, gelu, conv2 (per item rows)
  };

  k::Conv1dShape conv1() const {
    return {config.frames, config.melBins, config.hidden, 3, 1, 1};
  }
  k::Conv1dShape conv2() const {
    return {config.frames, config.hidden, config.hidden, 3, 2, 1};
  }

public:
  AudioFrontend(const LayerConfig &c, bool train)
      : LayerBase<T>("audio_frontend", c, train) {
    const int64_t h = c.hidden;
    w1 = this->list.add("conv1.weight", {h, c.melBins, 3}, ParamInit::Normal,
                        train);
    b1 = this->list.add("conv1.bias", {h}, ParamInit::Zeros, train);
    w2 = this->list.add("conv2.weight", {h, h, 3}, ParamInit::Normal, train);
    b2 = this->list.add("conv2.bias", {h}, ParamInit::Zeros, train);
    if (c.position == "learned") {
      pos = this->list.add("pos_weight", {c.positions, h}, ParamInit::Normal,
                           train);
    } else if (c.position == "sinusoidal") {
      // Whisper's stored table: a constant, filled here once.
      pos = this->list.add("pos_weight", {c.positions, h}, ParamInit::Fixed,
                           false);
      std::vector<int64_t> rows(c.positions);
      std::iota(rows.begin(), rows.end(), int64_t(0));
      k::sinusoidalPositions(pos->value.ptr(), rows.data(), c.positions, h);
    }
  }
  int64_t outputTokens(int64_t) const override { return conv2().outFrames(); }
  int64_t outputWidth() const override { return config.hidden; }

  std::unique_ptr<LayerState> forward(const Batch<T> &batch, const Tensor<T> &,
                                      Tensor<T> &out) override {
    if (!batch.media || batch.sequences < 1)
      layerFatal("audio_frontend: the batch has no features");
    const int64_t h = config.hidden, F = config.frames;
    const int64_t F2 = conv2().outFrames();
    auto st = std::make_unique<State>();
    State &s = *st;
    s.owner = this;
    s.items = batch.sequences;
    copyTo(s.x, {s.items * F, config.melBins}, batch.media);
    s.u1.resize({s.items * F, h});
    s.g1.resize({s.items * F, h});
    s.u2.resize({s.items * F2, h});
    out.resize({s.items * F2, h});
    for (int64_t i = 0; i < s.items; ++i)
      k::conv1dForward(s.x.ptr() + i * F * config.melBins, w1->value.ptr(),
                       b1->value.ptr(), s.u1.ptr() + i * F * h, conv1());
    k::geluForward(s.u1.ptr(), s.g1.ptr(), s.u1.numel());
    for (int64_t i = 0; i < s.items; ++i)
      k::conv1dForward(s.g1.ptr() + i * F * h, w2->value.ptr(), b2->value.ptr(),
                       s.u2.ptr() + i * F2 * h, conv2());
    k::geluForward(s.u2.ptr(), out.ptr(), s.u2.numel());
    if (pos)
      addPerSequence(out.ptr(), pos->value.ptr(), s.items, F2 * h);
    return st;
  }
  void backwardInput(const Batch<T> &, LayerState &state, const Tensor<T> &,
                     Tensor<T> &dIn) override {
    ownState<State>(state, this);
    dIn = Tensor<T>();
  }
  void backwardWeight(const Batch<T> &, LayerState &state,
                      const Tensor<T> &dOut) override {
    State &s = ownState<State>(state, this);
    if (!this->trainable)
      return;
    const int64_t h = config.hidden, F = config.frames;
    const int64_t F2 = conv2().outFrames();
    if (hasGrad(pos))
      for (int64_t i = 0; i < s.items; ++i)
        k::add(pos->grad.ptr(), dOut.ptr() + i * F2 * h, F2 * h);
    Tensor<T> du2(s.u2.shape), dg1(s.u1.shape), du1(s.u1.shape);
    k::geluBackward(s.u2.ptr(), dOut.ptr(), du2.ptr(), du2.numel());
    for (int64_t i = 0; i < s.items; ++i) {
      k::conv1dBackwardWeight(s.g1.ptr() + i * F * h, du2.ptr() + i * F2 * h,
                              w2->grad.ptr(), b2->grad.ptr(), conv2());
      k::conv1dBackwardInput(du2.ptr() + i * F2 * h, w2->value.ptr(),
                             dg1.ptr() + i * F * h, conv2());
    }
    k::geluBackward(s.u1.ptr(), dg1.ptr(), du1.ptr(), du1.numel());
    for (int64_t i = 0; i < s.items; ++i)
      k::conv1dBackwardWeight(s.x.ptr() + i * F * config.melBins,
                              du1.ptr() + i * F * h, w1->grad.ptr(),
                              b1->grad.ptr(), conv1());
  }
};

} // namespace

template <typename T>
std::unique_ptr<Layer<T>>
mllm::runtime::cpu::makePatchEmbedding(const LayerConfig &c, bool train) {
  return std::make_unique<PatchEmbedding<T>>(c, train);
}
template <typename T>
std::unique_ptr<Layer<T>>
mllm::runtime::cpu::makeAudioFrontend(const LayerConfig &c, bool train) {
  return std::make_unique<AudioFrontend<T>>(c, train);
}

namespace mllm::runtime::cpu {
#define MLLM_INSTANTIATE(T)                                                    \
  template std::unique_ptr<Layer<T>> makePatchEmbedding(const LayerConfig &,   \
                                                        bool);                 \
  template std::unique_ptr<Layer<T>> makeAudioFrontend(const LayerConfig &,    \
                                                       bool);
MLLM_INSTANTIATE(float)
MLLM_INSTANTIATE(double)
#undef MLLM_INSTANTIATE
} // namespace mllm::runtime::cpu
