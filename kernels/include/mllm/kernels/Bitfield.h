//===- Bitfield.h - Per-token bitfield attention masks ----------*- C++ -*-===//
//
// One 64-bit word per token says which modality the token belongs to and
// which modalities it may see (bit 0 = text/LLM, bit 1+i = modality i in
// declaration order, bit 62 = causal; bit 63 stays free so the word is a
// non-negative int64). A separate 32-bit segment per token says which packed
// sample and which item (image, audio clip, prefix, document) it belongs to,
// because the word alone cannot tell two images or two samples apart.
//
// Everything here is header-only and usable from CUDA device code: the same
// predicate drives the dense reference, the tile map and the kernels.
// See docs/masks.md for the exact semantics of each policy.
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_KERNELS_BITFIELD_H
#define MLLM_KERNELS_BITFIELD_H

#include "mllm/kernels/HostDevice.h"

#include <cstdint>

namespace mllm {
namespace kernels {

//===----------------------------------------------------------------------===//
// Token words
//===----------------------------------------------------------------------===//

constexpr uint64_t kTextBit = 1ull;
constexpr uint64_t kCausalBit = 1ull << 62;
/// Bits 0..61: text plus up to 61 modalities ("m" in the brief).
constexpr uint64_t kVisibilityMask = kCausalBit - 1;
constexpr int kMaxModalities = 61;

/// The word of modality `index` (0-based, declaration order).
MLLM_HD constexpr uint64_t modalityBit(int index) {
  return 1ull << (index + 1);
}

/// A text token sees every declared modality and is causal.
MLLM_HD constexpr uint64_t textWord(int numModalities) {
  uint64_t word = kCausalBit | kTextBit;
  for (int i = 0; i < numModalities; ++i)
    word |= modalityBit(i);
  return word;
}

/// A token of modality `index`; `causal` makes it see only earlier tokens of
/// its own item (a causal encoder).
MLLM_HD constexpr uint64_t modalityWord(int index, bool causal = false) {
  return modalityBit(index) | (causal ? kCausalBit : 0);
}

MLLM_HD constexpr bool isPadding(uint64_t word) {
  return (word & kVisibilityMask) == 0;
}
MLLM_HD constexpr bool isText(uint64_t word) { return (word & kTextBit) != 0; }
MLLM_HD constexpr bool isCausal(uint64_t word) {
  return (word & kCausalBit) != 0;
}

//===----------------------------------------------------------------------===//
// Segments: [31] sink flag | [30:12] sample (19 bits) | [11:0] item (12 bits)
//===----------------------------------------------------------------------===//

constexpr int kItemBits = 12;
constexpr uint32_t kMaxItem = (1u << kItemBits) - 1;
constexpr uint32_t kMaxSample = (1u << 19) - 1;
constexpr uint32_t kSinkFlag = 1u << 31;
/// The segment without the sink flag: equal values mean "same item".
constexpr uint32_t kSegmentIdMask = kSinkFlag - 1;

/// Item 0 is the shared context of a sample (ordinary causal text); items
/// 1..4095 are private groups (one image, one prefix, one answer, ...).
MLLM_HD constexpr uint32_t makeSegment(uint32_t sample, uint32_t item,
                                       bool sink = false) {
  return ((sample & kMaxSample) << kItemBits) | (item & kMaxItem) |
         (sink ? kSinkFlag : 0u);
}
MLLM_HD constexpr uint32_t segmentSample(uint32_t segment) {
  return (segment & kSegmentIdMask) >> kItemBits;
}
MLLM_HD constexpr uint32_t segmentItem(uint32_t segment) {
  return segment & kMaxItem;
}
MLLM_HD constexpr bool isSink(uint32_t segment) {
  return (segment & kSinkFlag) != 0;
}

//===----------------------------------------------------------------------===//
// Policies and the predicate
//===----------------------------------------------------------------------===//

enum class PolicyKind : uint8_t {
  /// Segment-aware MLLM semantics (the default; docs/masks.md).
  Mllm = 0,
  /// The paper's kernel predicate, bit for bit: segments, the causal bit and
  /// the window are ignored (brief §C.2).
  Cornstarch = 1,
};

struct MaskPolicy {
  PolicyKind kind = PolicyKind::Mllm;
  /// > 0: a text query sees only keys less than `window` positions back,
  /// plus sink tokens of its sample (lambda / streaming masks). Mllm only.
  int64_t window = 0;
};

/// May query token q (word, segment, global position) attend to key k?
/// This is the one definition every other component is checked against.
MLLM_HD inline bool attend(MaskPolicy policy, uint64_t qWord, uint32_t qSeg,
                           int64_t qPos, uint64_t kWord, uint32_t kSeg,
                           int64_t kPos) {
  uint64_t qBits = qWord & kVisibilityMask;
  uint64_t kBits = kWord & kVisibilityMask;
  if (policy.kind == PolicyKind::Cornstarch) {
    if (qBits & kTextBit)
      return kPos <= qPos && (qBits & kBits) != 0;
    return qBits == kBits && qBits != 0;
  }
  if ((qBits & kBits) == 0) // also rejects padding on either side
    return false;
  if (segmentSample(qSeg) != segmentSample(kSeg))
    return false;
  bool sameItem = (qSeg & kSegmentIdMask) == (kSeg & kSegmentIdMask);
  if (!(qBits & kTextBit)) // modality query: only its own item
    return sameItem && !(kBits & kTextBit) &&
           (!isCausal(qWord) || kPos <= qPos);
  uint32_t qItem = segmentItem(qSeg);
  if (sameItem && qItem != 0 && !isCausal(qWord))
    return true; // bidirectional text item, e.g. a prefix-LM prefix
  if (kPos > qPos)
    return false;
  if (policy.window > 0 && qPos - kPos >= policy.window && !isSink(kSeg))
    return false;
  // A private text item (an answer, a document) sees the shared context,
  // modality items and itself, but not sibling private text items.
  uint32_t kItem = segmentItem(kSeg);
  return qItem == 0 || kItem == 0 || sameItem || !(kBits & kTextBit);
}

} // namespace kernels
} // namespace mllm

#endif // MLLM_KERNELS_BITFIELD_H
