//===- Sample.cpp - one sample's tokens and where its items go ------------===//

#include "mllm/runtime/data/Sample.h"

#include <tuple>

using namespace mllm::runtime::data;

llvm::Expected<SampleLayout>
mllm::runtime::data::layoutSample(const ManifestSample &sample,
                                  const DataGeometry &geometry,
                                  const Tokenizer &tokenizer, bool addEos) {
  const size_t numEncoders = geometry.encoders.size();
  SampleLayout out;
  out.itemCount.assign(numEncoders, 0);
  for (size_t e = 0; e < numEncoders; ++e)
    out.itemCount[e] = static_cast<int64_t>(sample.media[e].size());

  // (offset, phase, rank): phase 0 prepend, 1 marker or `at`, 2 append;
  // markers rank by appearance, `at` items after them by encoder and index.
  struct Pending {
    int64_t offset;
    int phase;
    int64_t rank;
    PlacedItem item;
  };
  std::vector<Pending> pending;
  std::vector<int64_t> marked(numEncoders, 0);

  // Text runs between markers, each tokenised on its own so a marker's
  // offset is exact whatever the tokenizer merges.
  llvm::StringRef text = sample.text;
  int64_t markers = 0;
  while (!text.empty()) {
    size_t best = llvm::StringRef::npos, length = 0;
    int which = -1;
    for (size_t e = 0; e < numEncoders; ++e) {
      std::string marker = "<" + geometry.encoders[e].name + ">";
      size_t at = text.find(marker);
      if (at < best) {
        best = at;
        length = marker.size();
        which = static_cast<int>(e);
      }
    }
    if (llvm::Error err = tokenizer.encode(text.take_front(best), out.text))
      return problem(Problem::BadSample, llvm::toString(std::move(err)));
    if (which < 0)
      break;
    text = text.drop_front(best + length);
    int64_t index = marked[which]++;
    if (index >= out.itemCount[which])
      return problem(Problem::BadMarker,
                     "<" + geometry.encoders[which].name + "> marker " +
                         llvm::Twine(index + 1) + " but the sample has " +
                         llvm::Twine(out.itemCount[which]) + " " +
                         geometry.encoders[which].name + " items");
    pending.push_back({static_cast<int64_t>(out.text.size()), 1, markers++,
                       PlacedItem{which, index, 0}});
  }
  if (addEos)
    if (std::optional<int64_t> eos = tokenizer.eos())
      out.text.push_back(*eos);
  const auto textTokens = static_cast<int64_t>(out.text.size());

  for (size_t e = 0; e < numEncoders; ++e) {
    const EncoderInput &in = geometry.encoders[e];
    for (int64_t j = marked[e]; j < out.itemCount[e]; ++j) {
      Pending p{0, 0, 0, PlacedItem{static_cast<int>(e), j, 0}};
      switch (in.placement) {
      case kernels::ItemPlacement::Prepend:
        break;
      case kernels::ItemPlacement::At: {
        double f = in.positions.empty()       ? 0.0
                   : in.positions.size() == 1 ? in.positions[0]
                                              : in.positions[j];
        p.offset = kernels::textOffset(f, textTokens);
        p.phase = 1;
        p.rank = markers + static_cast<int64_t>(e) * (1 << 20) + j;
        break;
      }
      case kernels::ItemPlacement::Append:
        p.offset = textTokens;
        p.phase = 2;
        break;
      }
      if (p.phase != 1)
        p.rank = static_cast<int64_t>(e) * (1 << 20) + j;
      pending.push_back(p);
    }
  }
  llvm::sort(pending, [](const Pending &a, const Pending &b) {
    return std::tie(a.offset, a.phase, a.rank) <
           std::tie(b.offset, b.phase, b.rank);
  });
  out.tokens = textTokens;
  for (Pending &p : pending) {
    p.item.offset = p.offset;
    out.items.push_back(p.item);
    out.tokens += geometry.encoders[p.item.encoder].tokensPerItem;
  }
  if (out.tokens == 0)
    return problem(Problem::BadSample, "the sample has no text and no items");
  return out;
}
