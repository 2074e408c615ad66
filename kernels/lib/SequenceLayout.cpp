//===- SequenceLayout.cpp - Token layout of a declared data layout --------===//

#include "mllm/kernels/SequenceLayout.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>

using namespace mllm::kernels;

namespace {

/// An item waiting to be placed: where it goes in the sample's text and which
/// modality item it is.
struct PendingItem {
  int64_t offset; // text tokens before it
  int phase;      // 0 prepend, 1 at, 2 append: order among equal offsets
  int64_t modality;
  int64_t index;
};

bool addOverflows(int64_t a, int64_t b, int64_t &out) {
  return __builtin_add_overflow(a, b, &out);
}
bool mulOverflows(int64_t a, int64_t b, int64_t &out) {
  return __builtin_mul_overflow(a, b, &out);
}

class LayoutBuilder {
public:
  LayoutBuilder(const SequenceSpec &spec, TokenLayout &out,
                std::vector<LayoutSpan> *spans)
      : spec(spec), out(out), spans(spans),
        numModalities(static_cast<int>(spec.modalities.size())) {}

  void sample(uint32_t s) {
    sampleId = s;
    nextItem = 1;
    prefixItem = 0;
    int64_t text = spec.textTokens;
    prefixEnd = spec.textMask == TextMask::PrefixLm
                    ? textOffset(spec.prefixFraction, text)
                    : 0;

    std::vector<PendingItem> items;
    for (size_t m = 0; m < spec.modalities.size(); ++m) {
      const ModalitySpec &mod = spec.modalities[m];
      if (mod.tokensPerItem == 0)
        continue;
      for (int64_t j = 0; j < mod.items; ++j) {
        PendingItem item{0, 0, static_cast<int64_t>(m), j};
        switch (mod.placement) {
        case ItemPlacement::Prepend:
          break;
        case ItemPlacement::At: {
          double f =
              mod.positions.size() == 1 ? mod.positions[0] : mod.positions[j];
          item.offset = textOffset(f, text);
          item.phase = 1;
          break;
        }
        case ItemPlacement::Append:
          item.offset = text;
          item.phase = 2;
          break;
        }
        items.push_back(item);
      }
    }
    // Ties keep declaration order: modality, then item (a total order, so
    // no stable sort and its deprecated temporary buffer is needed).
    std::sort(items.begin(), items.end(),
              [](const PendingItem &a, const PendingItem &b) {
                return std::tie(a.offset, a.phase, a.modality, a.index) <
                       std::tie(b.offset, b.phase, b.modality, b.index);
              });

    int64_t cursor = 0;
    for (const PendingItem &item : items) {
      emitText(cursor, item.offset);
      cursor = item.offset;
      const ModalitySpec &mod = spec.modalities[item.modality];
      uint64_t word = modalityWord(static_cast<int>(item.modality),
                                   mod.mask == ItemMask::Causal);
      uint32_t id = nextItem++;
      emit(LayoutSpan::Item, mod.tokensPerItem, word, id, item.modality,
           item.index);
    }
    emitText(cursor, text);
  }

private:
  /// Text tokens [from, to) of the current sample.
  void emitText(int64_t from, int64_t to) {
    if (from >= to)
      return;
    if (from < prefixEnd) {
      int64_t end = std::min(to, prefixEnd);
      if (prefixItem == 0)
        prefixItem = nextItem++;
      emit(LayoutSpan::Prefix, end - from,
           textWord(numModalities) & ~kCausalBit, prefixItem);
      from = end;
    }
    if (from < to)
      emit(LayoutSpan::Text, to - from, textWord(numModalities), 0);
  }

  void emit(LayoutSpan::Kind kind, int64_t n, uint64_t word, uint32_t item,
            int64_t modality = -1, int64_t index = -1) {
    if (spans) {
      LayoutSpan span;
      span.kind = kind;
      span.sample = sampleId;
      span.modality = modality;
      span.itemIndex = index;
      span.segmentItem = item;
      span.start = out.size();
      span.length = n;
      spans->push_back(span);
    }
    out.words.insert(out.words.end(), n, word);
    out.segments.insert(out.segments.end(), n, makeSegment(sampleId, item));
  }

  const SequenceSpec &spec;
  TokenLayout &out;
  std::vector<LayoutSpan> *spans;
  int numModalities;
  uint32_t sampleId = 0;
  uint32_t nextItem = 1;
  uint32_t prefixItem = 0;
  int64_t prefixEnd = 0;
};

} // namespace

std::vector<int64_t>
mllm::kernels::targetPositions(const std::vector<LayoutSpan> &spans) {
  std::vector<int64_t> positions;
  for (size_t k = 0; k < spans.size(); ++k) {
    const LayoutSpan &s = spans[k];
    if (s.kind == LayoutSpan::Text) {
      for (int64_t i = s.start; i + 1 < s.start + s.length; ++i)
        positions.push_back(i);
    } else if (s.kind == LayoutSpan::Prefix && s.length > 0 &&
               k + 1 < spans.size()) {
      const LayoutSpan &next = spans[k + 1];
      if (next.kind == LayoutSpan::Text && next.sample == s.sample &&
          next.start == s.start + s.length && next.length > 0)
        positions.push_back(s.start + s.length - 1);
    }
  }
  return positions;
}

int64_t mllm::kernels::textOffset(double f, int64_t textTokens) {
  if (!(f > 0.0) || textTokens <= 0)
    return 0;
  if (f >= 1.0)
    return textTokens;
  double scaled = std::floor(f * static_cast<double>(textTokens) + 0.5);
  auto offset = static_cast<int64_t>(scaled);
  return std::clamp<int64_t>(offset, 0, textTokens);
}

int64_t mllm::kernels::sequenceLength(const SequenceSpec &spec) {
  if (spec.textTokens < 0 || spec.packing < 0)
    return -1;
  int64_t perSample = spec.textTokens;
  for (const ModalitySpec &mod : spec.modalities) {
    int64_t tokens;
    if (mod.tokensPerItem < 0 || mod.items < 0 ||
        mulOverflows(mod.tokensPerItem, mod.items, tokens) ||
        addOverflows(perSample, tokens, perSample))
      return -1;
  }
  int64_t total;
  if (mulOverflows(perSample, spec.packing, total))
    return -1;
  return total;
}

std::string mllm::kernels::checkSequenceSpec(const SequenceSpec &spec) {
  if (spec.textTokens < 0)
    return "text tokens must not be negative, got " +
           std::to_string(spec.textTokens);
  if (spec.packing < 1)
    return "packing must be at least 1, got " + std::to_string(spec.packing);
  if (spec.packing > static_cast<int64_t>(kMaxSample) + 1)
    return "packing " + std::to_string(spec.packing) +
           " exceeds the segment field's " + std::to_string(kMaxSample + 1) +
           " samples";
  if (spec.modalities.size() > static_cast<size_t>(kMaxModalities))
    return std::to_string(spec.modalities.size()) +
           " modalities exceed the word's " + std::to_string(kMaxModalities);
  if (spec.textMask == TextMask::PrefixLm &&
      !(spec.prefixFraction >= 0.0 && spec.prefixFraction <= 1.0))
    return "the prefix fraction must be between 0 and 1";
  int64_t items = 0;
  for (size_t m = 0; m < spec.modalities.size(); ++m) {
    const ModalitySpec &mod = spec.modalities[m];
    std::string which = "modality " + std::to_string(m) + ": ";
    if (mod.tokensPerItem < 0)
      return which + "tokens per item must not be negative";
    if (mod.items < 0)
      return which + "items must not be negative";
    if (mod.placement == ItemPlacement::At) {
      if (mod.positions.size() != 1 &&
          static_cast<int64_t>(mod.positions.size()) != mod.items)
        return which + std::to_string(mod.positions.size()) +
               " positions for " + std::to_string(mod.items) +
               " items; give one position or one per item";
      for (double p : mod.positions)
        if (!(p >= 0.0 && p <= 1.0))
          return which + "positions must be fractions between 0 and 1";
    } else if (!mod.positions.empty()) {
      return which + "positions need placement 'at'";
    }
    if (mod.tokensPerItem > 0 && addOverflows(items, mod.items, items))
      return which + "too many items";
  }
  int64_t prefixText = spec.textMask == TextMask::PrefixLm
                           ? textOffset(spec.prefixFraction, spec.textTokens)
                           : 0;
  int64_t ids = items + (prefixText > 0 ? 1 : 0);
  if (ids > static_cast<int64_t>(kMaxItem))
    return std::to_string(ids) + " items per sample exceed the segment " +
           "field's " + std::to_string(kMaxItem);
  if (sequenceLength(spec) < 0)
    return "the sequence length overflows int64";
  return "";
}

TokenLayout mllm::kernels::buildSequenceLayout(const SequenceSpec &spec,
                                               std::vector<LayoutSpan> *spans) {
  TokenLayout layout;
  if (spans)
    spans->clear();
  int64_t total = sequenceLength(spec);
  if (total > 0) {
    layout.words.reserve(static_cast<size_t>(total));
    layout.segments.reserve(static_cast<size_t>(total));
  }
  LayoutBuilder builder(spec, layout, spans);
  for (int64_t s = 0; s < spec.packing; ++s)
    builder.sample(static_cast<uint32_t>(s));
  return layout;
}
