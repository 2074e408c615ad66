//===- Sequence.h - packed samples as one LLM sequence ----------*- C++ -*-===//
//
// Samples laid out one after another in a sequence of the plan's length,
// each with its own sample id (so they never attend to each other), the
// tail padded (word 0: seen by nobody, sees nothing; its own sample id;
// no target). The bitfield words and segments follow docs/masks.md exactly
// as kernels::buildSequenceLayout makes them for the declared layout
// (text item 0, each media item its own segment item, a prefix-LM prefix in
// a private item); positions restart at every sample. Targets: a text
// token's target is the next token of the same run of text (a text or
// prefix span); the last token of a run, media and padding have -100, the
// rule docs/runtime.md states for the synthetic batches.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_DATA_SEQUENCE_H
#define MLLM_RUNTIME_DATA_SEQUENCE_H

#include "mllm/runtime/data/Sample.h"

#include "mllm/kernels/SequenceLayout.h"

namespace mllm::runtime::data {

/// The "no loss" target.
constexpr int64_t kIgnoreTarget = -100;

/// Where one media item's LLM tokens sit.
struct ItemSlot {
  int64_t sample = 0; ///< The sample's index within the sequence.
  int64_t index = 0;  ///< The item's index in that sample's list.
  int64_t start = 0;  ///< Its first token in the sequence.
};

struct PackedSequence {
  kernels::TokenLayout layout;
  /// Runs of the samples (sample = index within the sequence; modality =
  /// the encoder's word bit index; itemIndex = the item's index in its
  /// sample's list). Padding has no span.
  std::vector<kernels::LayoutSpan> spans;
  std::vector<int64_t> positions, tokenIds, targets;
  /// Per encoder of the geometry, its items in media order: samples in
  /// sequence order, each sample's items in manifest order.
  std::vector<std::vector<ItemSlot>> items;
  int64_t samples = 0, padding = 0;
  int64_t counted = 0; ///< Tokens with a target.
};

/// Packs `samples` (whose tokens must sum to at most `length`) into one
/// sequence of `length` tokens.
PackedSequence buildSequence(llvm::ArrayRef<const SampleLayout *> samples,
                             const DataGeometry &geometry, int64_t length);

} // namespace mllm::runtime::data

#endif // MLLM_RUNTIME_DATA_SEQUENCE_H
