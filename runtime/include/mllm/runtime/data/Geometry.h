//===- Geometry.h - what the plan says one sample may hold ------*- C++ -*-===//
//
// The shapes real data must fit, read once from the plan: the LLM
// sequence (length, sequences per microbatch, the text mask), the
// vocabulary, and per encoder with items its per-sample maximum, its LLM
// tokens per item, where its items go, and the media tensor one item is
// (an image [channels, temporal, height, width], an audio item `windows`
// log-mel windows [frames, mel_bins]). The data pipeline depends on the
// plan only through this struct, so tests can also fill one by hand.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_DATA_GEOMETRY_H
#define MLLM_RUNTIME_DATA_GEOMETRY_H

#include "mllm/kernels/SequenceLayout.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>
#include <vector>

namespace mllm::runtime {
struct Plan;
} // namespace mllm::runtime

namespace mllm::runtime::data {

enum class MediaKind { Image, Audio };

/// One encoder that takes items.
struct EncoderInput {
  std::string name;     ///< The manifest key ("vision", "audio").
  std::string instance; ///< The encoder's instance (normalisation family).
  MediaKind kind = MediaKind::Image;
  /// Its word bit: the encoder's index among all encoders (model order).
  int modality = 0;
  int64_t maxItems = 1;      ///< Items one sample may have (PlanInput::items).
  int64_t tokensPerItem = 0; ///< LLM tokens of one item.
  kernels::ItemPlacement placement = kernels::ItemPlacement::Prepend;
  std::vector<double> positions; ///< `at` fractions.
  bool causal = false;           ///< Causal mask among an item's tokens.
  /// Images: the patch embedding's input.
  int64_t channels = 3, temporal = 1, height = 0, width = 0;
  /// Audio: windows per item, mel frames per window, mel bins.
  int64_t windows = 1, frames = 0, melBins = 0;
  /// Audio: seconds between mel frames (the spec's `hop`); 0: the data
  /// options' (10 ms unless set).
  double hopSeconds = 0;

  /// Floats of one item's media tensor.
  int64_t floatsPerItem() const {
    return kind == MediaKind::Image ? channels * temporal * height * width
                                    : windows * frames * melBins;
  }
};

struct DataGeometry {
  int64_t seqLen = 0;       ///< Tokens of one LLM sequence.
  int64_t sequences = 1;    ///< Sequences per microbatch (microbatch_size).
  int64_t microbatches = 1; ///< Microbatches per step and replica.
  int64_t dp = 1;           ///< Data-parallel replicas.
  int64_t packing = 1;      ///< Declared samples per sequence.
  int64_t vocab = 0;        ///< The LLM's vocabulary.
  kernels::TextMask textMask = kernels::TextMask::Causal;
  double prefixFraction = 0.5;
  int numModalities = 0; ///< Every encoder of the model, with items or not.
  std::vector<EncoderInput> encoders; ///< Those with items, model order.

  /// The index of encoder `name` in `encoders`, -1 if none.
  int find(llvm::StringRef name) const;
  /// Items of encoder `e` one sequence may hold: packing x maxItems, the
  /// static shape the plan's encoder messages are sized for.
  int64_t itemCapacity(size_t e) const {
    return packing * encoders[e].maxItems;
  }
};

/// The geometry of `plan`. Fails on a plan the data pipeline cannot feed
/// (no LLM vocabulary, an encoder without a patch embedding or audio front
/// end, an unknown placement or mask).
llvm::Expected<DataGeometry> dataGeometry(const Plan &plan);

/// Audio windows per item as the runtime's audio front end counts them:
/// the item's encoder tokens (PlanInput::encoderTokensPerItem: before the
/// projector's merge, which pads them) over the front end's output frames
/// per window (its stride-2 convolution halves `frames`), at least 1.
int64_t audioWindows(int64_t encoderTokensPerItem, int64_t frames);

} // namespace mllm::runtime::data

#endif // MLLM_RUNTIME_DATA_GEOMETRY_H
