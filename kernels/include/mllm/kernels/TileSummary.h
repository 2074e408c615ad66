//===- TileSummary.h - Constant-size summaries of token tiles ---*- C++ -*-===//
//
// A tile of the attention matrix is (query range) x (key range). Instead of
// evaluating every pair, each range is reduced to a constant-size summary
// (position ranges, OR/AND of the words, segment ranges, per class of token)
// and a tile is classified from the two summaries alone. The classification
// is conservative: Skip only when no pair can be allowed, Full only when
// every pair is allowed, Partial otherwise; the kernel then evaluates
// attend() per pair on Partial tiles, so the result is always exact.
//
// Usable from CUDA device code (one thread per tile).
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_KERNELS_TILESUMMARY_H
#define MLLM_KERNELS_TILESUMMARY_H

#include "mllm/kernels/Bitfield.h"

namespace mllm {
namespace kernels {

enum class TileClass : uint8_t { Skip = 0, Partial = 1, Full = 2 };

/// Min/max of a class of tokens; empty when lo > hi.
template <typename T>
struct Range {
  T lo, hi;
  MLLM_HD void add(T v) {
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
  MLLM_HD void merge(const Range &o) {
    lo = o.lo < lo ? o.lo : lo;
    hi = o.hi > hi ? o.hi : hi;
  }
  MLLM_HD bool overlaps(const Range &o) const {
    return lo <= o.hi && o.lo <= hi;
  }
  MLLM_HD bool single() const { return lo == hi; }
  MLLM_HD bool operator==(const Range &o) const {
    return lo == o.lo && hi == o.hi;
  }
};

struct TileSummary {
  int64_t begin = 0, end = 0; // token range [begin, end)
  // Counts over non-padding tokens; "mod" = modality-only (no text bit).
  int32_t count = 0, text = 0, mod = 0, zeroItem = 0, sinks = 0;
  int32_t textShared = 0;                // text tokens of item 0
  int32_t modCausal = 0, ncPrivText = 0; // ncPriv: non-causal text, item != 0
  uint64_t orBits = 0, andBits = ~0ull, textOr = 0, modOr = 0;
  Range<int64_t> pos{INT64_MAX, INT64_MIN}, textPos{INT64_MAX, INT64_MIN},
      modPos{INT64_MAX, INT64_MIN};
  Range<uint32_t> sample{UINT32_MAX, 0}, seg{UINT32_MAX, 0},
      textSeg{UINT32_MAX, 0}, modSeg{UINT32_MAX, 0}, ncPrivSeg{UINT32_MAX, 0};

  MLLM_HD int64_t size() const { return end - begin; }
  MLLM_HD bool dense() const { return count == size(); }

  /// Adds `n` identical tokens at positions first..last (n = last-first+1
  /// for a contiguous run; runs make summarising O(runs), not O(tokens)).
  MLLM_HD void addRun(uint64_t word, uint32_t segment, int64_t first,
                      int64_t last) {
    uint64_t bits = word & kVisibilityMask;
    if (bits == 0)
      return; // padding is neither seen nor seeing
    auto n = static_cast<int32_t>(last - first + 1);
    uint32_t id = segment & kSegmentIdMask;
    bool shared = segmentItem(segment) == 0;
    count += n;
    orBits |= bits;
    andBits &= bits;
    pos.add(first);
    pos.add(last);
    sample.add(segmentSample(segment));
    seg.add(id);
    zeroItem += shared ? n : 0;
    sinks += isSink(segment) ? n : 0;
    if (bits & kTextBit) {
      text += n;
      textOr |= bits;
      textPos.add(first);
      textPos.add(last);
      textSeg.add(id);
      textShared += shared ? n : 0;
      if (!isCausal(word) && !shared) {
        ncPrivText += n;
        ncPrivSeg.add(id);
      }
    } else {
      mod += n;
      modOr |= bits;
      modPos.add(first);
      modPos.add(last);
      modSeg.add(id);
      modCausal += isCausal(word) ? n : 0;
    }
  }
  MLLM_HD void add(uint64_t word, uint32_t segment, int64_t p) {
    addRun(word, segment, p, p);
  }

  /// The summary of this range followed by the adjacent range `o`.
  MLLM_HD void merge(const TileSummary &o) {
    end = o.end;
    count += o.count;
    text += o.text;
    mod += o.mod;
    zeroItem += o.zeroItem;
    sinks += o.sinks;
    textShared += o.textShared;
    modCausal += o.modCausal;
    ncPrivText += o.ncPrivText;
    orBits |= o.orBits;
    andBits &= o.andBits;
    textOr |= o.textOr;
    modOr |= o.modOr;
    pos.merge(o.pos);
    textPos.merge(o.textPos);
    modPos.merge(o.modPos);
    sample.merge(o.sample);
    seg.merge(o.seg);
    textSeg.merge(o.textSeg);
    modSeg.merge(o.modSeg);
    ncPrivSeg.merge(o.ncPrivSeg);
  }

  /// Equal except for where the tile sits: tiles with the same pattern
  /// classify alike wherever position comparisons agree.
  MLLM_HD bool samePattern(const TileSummary &o) const {
    return size() == o.size() && count == o.count && text == o.text &&
           mod == o.mod && zeroItem == o.zeroItem && sinks == o.sinks &&
           textShared == o.textShared && modCausal == o.modCausal &&
           ncPrivText == o.ncPrivText && orBits == o.orBits &&
           andBits == o.andBits && textOr == o.textOr && modOr == o.modOr &&
           sample == o.sample && seg == o.seg && textSeg == o.textSeg &&
           modSeg == o.modSeg && ncPrivSeg == o.ncPrivSeg;
  }
};

namespace detail {

MLLM_HD inline TileClass classifyCornstarch(const TileSummary &q,
                                            const TileSummary &k) {
  bool textAny = q.text > 0 && k.count > 0 && k.pos.lo <= q.textPos.hi &&
                 (q.textOr & k.orBits) != 0;
  bool modAny = q.mod > 0 && k.mod > 0 && (q.modOr & k.modOr) != 0;
  if (!textAny && !modAny)
    return TileClass::Skip;
  if (q.dense() && k.dense()) {
    if (q.text == q.count && k.pos.hi <= q.textPos.lo &&
        (q.andBits & k.andBits) != 0)
      return TileClass::Full;
    if (q.mod == q.count && k.mod == k.count && q.orBits == q.andBits &&
        k.orBits == k.andBits && q.orBits == k.orBits)
      return TileClass::Full;
  }
  return TileClass::Partial;
}

MLLM_HD inline bool mllmAny(const TileSummary &q, const TileSummary &k,
                            int64_t window) {
  if (q.count == 0 || k.count == 0 || !q.sample.overlaps(k.sample))
    return false;
  if (q.mod > 0 && k.mod > 0 && q.modSeg.overlaps(k.modSeg) &&
      (q.modOr & k.modOr) != 0 &&
      (q.modCausal < q.mod || k.modPos.lo <= q.modPos.hi))
    return true;
  if (q.text == 0 || (q.textOr & k.orBits) == 0)
    return false;
  if (q.ncPrivText > 0 && q.ncPrivSeg.overlaps(k.seg))
    return true; // a bidirectional text item may reach forward
  if (k.pos.lo > q.textPos.hi)
    return false;
  if (window > 0 && k.sinks == 0 && k.pos.hi < q.textPos.lo - window + 1)
    return false;
  // Private text items against only other private text items (siblings).
  if (q.textShared == 0 && k.zeroItem == 0 && k.mod == 0 &&
      !k.seg.overlaps(q.textSeg))
    return false;
  return true;
}

MLLM_HD inline bool mllmAll(const TileSummary &q, const TileSummary &k,
                            int64_t window) {
  if (!q.dense() || !k.dense() || !q.sample.single() || !(q.sample == k.sample))
    return false;
  bool oneItem = q.seg.single() && q.seg == k.seg;
  if ((q.andBits & k.andBits) == 0)
    return false;
  if (q.mod == q.count)
    return oneItem && k.mod == k.count &&
           (q.modCausal == 0 || k.pos.hi <= q.pos.lo);
  if (q.text != q.count)
    return false;
  if (oneItem && q.ncPrivText == q.count)
    return true;
  bool windowOk =
      window <= 0 || k.sinks == k.count || q.pos.hi - k.pos.lo < window;
  bool itemsOk = q.zeroItem == q.count || k.zeroItem == k.count ||
                 k.mod == k.count || oneItem;
  return k.pos.hi <= q.pos.lo && windowOk && itemsOk;
}

} // namespace detail

/// Classify the tile (query range q) x (key range k) under `policy`.
MLLM_HD inline TileClass classifyTile(const TileSummary &q,
                                      const TileSummary &k, MaskPolicy policy) {
  if (policy.kind == PolicyKind::Cornstarch)
    return detail::classifyCornstarch(q, k);
  if (!detail::mllmAny(q, k, policy.window))
    return TileClass::Skip;
  return detail::mllmAll(q, k, policy.window) ? TileClass::Full
                                              : TileClass::Partial;
}

} // namespace kernels
} // namespace mllm

#endif // MLLM_KERNELS_TILESUMMARY_H
