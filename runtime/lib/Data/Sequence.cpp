//===- Sequence.cpp - packed samples as one LLM sequence ------------------===//

#include "mllm/runtime/data/Sequence.h"

#include "mllm/kernels/Bitfield.h"

#include <algorithm>
#include <cassert>

using namespace mllm;
using namespace mllm::runtime::data;
using kernels::LayoutSpan;

namespace {

/// Appends one sample's runs to a sequence, as kernels::buildSequenceLayout
/// does for a declared sample (item ids in sequence order from 1; the
/// prefix one private item).
class SampleWriter {
public:
  SampleWriter(const DataGeometry &g, PackedSequence &out)
      : g(g), out(out), textWord(kernels::textWord(g.numModalities)) {}

  void write(const SampleLayout &s, uint32_t sampleId) {
    sample = sampleId;
    nextItem = 1;
    prefixItem = 0;
    start = out.layout.size();
    const auto T = static_cast<int64_t>(s.text.size());
    prefixEnd = g.textMask == kernels::TextMask::PrefixLm
                    ? kernels::textOffset(g.prefixFraction, T)
                    : 0;
    int64_t cursor = 0;
    for (const PlacedItem &item : s.items) {
      text(s, cursor, item.offset);
      cursor = item.offset;
      const EncoderInput &in = g.encoders[item.encoder];
      out.items[item.encoder].push_back(
          {static_cast<int64_t>(sampleId), item.index, out.layout.size()});
      emit(LayoutSpan::Item, in.tokensPerItem,
           kernels::modalityWord(in.modality, in.causal), nextItem++,
           in.modality, item.index);
      out.tokenIds.insert(out.tokenIds.end(), in.tokensPerItem, 0);
    }
    text(s, cursor, T);
  }

private:
  void text(const SampleLayout &s, int64_t from, int64_t to) {
    if (from >= to)
      return;
    if (from < prefixEnd) {
      int64_t end = std::min(to, prefixEnd);
      if (prefixItem == 0)
        prefixItem = nextItem++;
      emit(LayoutSpan::Prefix, end - from, textWord & ~kernels::kCausalBit,
           prefixItem);
      out.tokenIds.insert(out.tokenIds.end(), s.text.begin() + from,
                          s.text.begin() + end);
      from = end;
    }
    if (from < to) {
      emit(LayoutSpan::Text, to - from, textWord, 0);
      out.tokenIds.insert(out.tokenIds.end(), s.text.begin() + from,
                          s.text.begin() + to);
    }
  }

  void emit(LayoutSpan::Kind kind, int64_t n, uint64_t word, uint32_t item,
            int64_t modality = -1, int64_t index = -1) {
    LayoutSpan span;
    span.kind = kind;
    span.sample = sample;
    span.modality = modality;
    span.itemIndex = index;
    span.segmentItem = item;
    span.start = out.layout.size();
    span.length = n;
    out.spans.push_back(span);
    out.layout.words.insert(out.layout.words.end(), n, word);
    out.layout.segments.insert(out.layout.segments.end(), n,
                               kernels::makeSegment(sample, item));
    for (int64_t i = 0; i < n; ++i)
      out.positions.push_back(span.start + i - start);
  }

  const DataGeometry &g;
  PackedSequence &out;
  uint64_t textWord;
  uint32_t sample = 0, nextItem = 1, prefixItem = 0;
  int64_t start = 0, prefixEnd = 0;
};

} // namespace

PackedSequence
mllm::runtime::data::buildSequence(llvm::ArrayRef<const SampleLayout *> samples,
                                   const DataGeometry &geometry,
                                   int64_t length) {
  PackedSequence out;
  out.items.resize(geometry.encoders.size());
  out.layout.words.reserve(static_cast<size_t>(length));
  out.layout.segments.reserve(static_cast<size_t>(length));
  SampleWriter writer(geometry, out);
  for (size_t s = 0; s < samples.size(); ++s)
    writer.write(*samples[s], static_cast<uint32_t>(s));
  out.samples = static_cast<int64_t>(samples.size());
  assert(out.layout.size() <= length && "samples overflow the sequence");

  // Padding: a sample id of its own, so no tile straddles it and a sample.
  int64_t used = out.layout.size();
  out.padding = length - used;
  out.layout.words.resize(static_cast<size_t>(length), 0);
  out.layout.segments.resize(
      static_cast<size_t>(length),
      kernels::makeSegment(static_cast<uint32_t>(samples.size()), 0));
  for (int64_t i = used; i < length; ++i)
    out.positions.push_back(i - used);
  out.tokenIds.resize(static_cast<size_t>(length), 0);

  out.targets.assign(static_cast<size_t>(length), kIgnoreTarget);
  std::vector<int64_t> targeted = kernels::targetPositions(out.spans);
  for (int64_t i : targeted)
    out.targets[i] = out.tokenIds[i + 1];
  out.counted = static_cast<int64_t>(targeted.size());
  return out;
}
