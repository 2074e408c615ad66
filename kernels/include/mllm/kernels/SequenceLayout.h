//===- SequenceLayout.h - Token layout of a declared data layout -*- C++
//-*-===//
//
// Turns the data layout a spec declares (text tokens per sample, packing,
// the text mask, and per modality: tokens per item, items, placement and
// mask) into the bitfield token layout of one LLM sequence: a word and a
// segment per token. The compiler balances context parallelism on this
// layout (mllm-balance-cp) and the runtime rebuilds the same layout for a
// batch with the same function, so both sides agree token for token.
//
// Deterministic and free of MLIR and LLVM. See docs/masks.md, "Declared data
// layouts", for the exact rules (placement, item ids, the prefix-LM prefix).
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_KERNELS_SEQUENCELAYOUT_H
#define MLLM_KERNELS_SEQUENCELAYOUT_H

#include "mllm/kernels/TileMap.h"

#include <cstdint>
#include <string>
#include <vector>

namespace mllm {
namespace kernels {

/// How text tokens attend (`text_mask` in a spec).
enum class TextMask : uint8_t {
  Causal,
  /// The first `prefixFraction` of a sample's text is one bidirectional
  /// prefix; the rest is causal.
  PrefixLm,
};

/// How the tokens of one modality item attend to each other.
enum class ItemMask : uint8_t { Bidirectional, Causal };

/// Where a modality's items sit relative to the sample's text.
enum class ItemPlacement : uint8_t { Prepend, Append, At };

/// One modality (one encoder) of the declared layout.
struct ModalitySpec {
  /// LLM tokens per item (after the projector's merge).
  int64_t tokensPerItem = 0;
  /// Items per sample (images, audio clips).
  int64_t items = 1;
  ItemPlacement placement = ItemPlacement::Prepend;
  /// At only: fractions of the text in [0, 1], one for every item or one per
  /// item.
  std::vector<double> positions;
  ItemMask mask = ItemMask::Bidirectional;
};

/// The declared layout of one LLM sequence.
struct SequenceSpec {
  /// Text tokens per sample.
  int64_t textTokens = 0;
  /// Samples packed into one sequence; they never see each other.
  int64_t packing = 1;
  TextMask textMask = TextMask::Causal;
  /// PrefixLm only: the prefix is the first round(prefixFraction x text) text
  /// tokens of each sample. The language has no field for it yet.
  double prefixFraction = 0.5;
  /// Declaration order: modality i gets word bit 1 + i. A modality with no
  /// items still gets a bit, so text words are the same for every layout of a
  /// model.
  std::vector<ModalitySpec> modalities;
};

/// An empty string when `spec` can be laid out, else why not (negative
/// counts, more than 61 modalities, too many samples or items for the segment
/// fields, positions out of [0, 1] or of the wrong count, int64 overflow).
std::string checkSequenceSpec(const SequenceSpec &spec);

/// packing x (textTokens + sum of tokensPerItem x items); -1 on overflow or
/// negative counts.
int64_t sequenceLength(const SequenceSpec &spec);

/// A run of consecutive tokens of one kind in a built layout.
struct LayoutSpan {
  enum Kind : uint8_t { Text, Prefix, Item };
  Kind kind = Text;
  int64_t sample = 0;
  /// Item only: the modality (declaration order) and the item's index within
  /// that modality (0-based, declaration order of positions).
  int64_t modality = -1;
  int64_t itemIndex = -1;
  /// The segment item id of the span's tokens (0 for causal text).
  uint32_t segmentItem = 0;
  int64_t start = 0;
  int64_t length = 0;
};

/// The token layout of one sequence. Precondition:
/// checkSequenceSpec(spec).empty(). If `spans` is given it receives the runs
/// in sequence order (text runs split around items, a prefix run per part of
/// the prefix).
TokenLayout buildSequenceLayout(const SequenceSpec &spec,
                                std::vector<LayoutSpan> *spans = nullptr);

/// The positions of a layout with a next-token target, ascending, from its
/// `spans` (in sequence order): position i predicts token i + 1. A causal
/// text token predicts the next token of its run; the last token of a
/// prefix predicts the first token of causal text that follows it directly
/// in the same sample. Other prefix tokens have none: they see the whole
/// prefix, their target included. Media tokens, the last token of a run
/// and padding have none, so targets never cross a sample, point at media
/// or jump over an item.
std::vector<int64_t> targetPositions(const std::vector<LayoutSpan> &spans);

/// The token offset inside a sample's text where an item placed at fraction
/// `f` goes: round(f x textTokens), halves up, clamped to [0, textTokens].
int64_t textOffset(double f, int64_t textTokens);

} // namespace kernels
} // namespace mllm

#endif // MLLM_KERNELS_SEQUENCELAYOUT_H
