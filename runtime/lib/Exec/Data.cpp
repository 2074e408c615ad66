//===- Data.cpp - the batches a training run reads ------------------------===//
#include "mllm/runtime/exec/Data.h"

#include "mllm/runtime/SafeTensors.h"

#include "llvm/ADT/STLExtras.h"

#include <cmath>

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::exec;

namespace {

/// SplitMix64: a counter-based generator, so any element is reproducible
/// from its coordinates alone.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t key(std::initializer_list<uint64_t> parts) {
  uint64_t h = 0x243f6a8885a308d3ull;
  for (uint64_t p : parts)
    h = mix(h ^ mix(p));
  return h;
}

/// A standard normal from two uniform draws (Box-Muller).
float normal(uint64_t k) {
  double u1 = (static_cast<double>(mix(k) >> 11) + 0.5) * 0x1.0p-53;
  double u2 =
      (static_cast<double>(mix(k ^ 0x5555555555555555ull) >> 11) + 0.5) *
      0x1.0p-53;
  return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) *
                            std::cos(6.283185307179586 * u2));
}

} // namespace

SyntheticData::SyntheticData(const Model &model, uint64_t seed)
    : model(model), seed(seed), dp(model.plan().job.dp),
      microbatches(model.plan().data.microbatches) {}

llvm::Expected<MicrobatchData> SyntheticData::get(int64_t step, int64_t replica,
                                                  int64_t mb) {
  MicrobatchData d;
  int64_t n = model.seqLen, vocab = std::max<int64_t>(model.vocab, 1);
  d.tokenIds.assign(model.sequences * n, 0);
  d.targets.assign(model.sequences * n, -100);
  const std::vector<int64_t> targeted = kernels::targetPositions(model.spans);
  for (int64_t b = 0; b < model.sequences; ++b) {
    int64_t *ids = d.tokenIds.data() + b * n;
    int64_t *targets = d.targets.data() + b * n;
    // One recurrence per sample, running through all of its text.
    std::vector<int64_t> state;
    for (const kernels::LayoutSpan &s : model.spans) {
      if (s.kind == kernels::LayoutSpan::Item)
        continue;
      if (static_cast<int64_t>(state.size()) <= s.sample)
        state.resize(s.sample + 1, -1);
      int64_t &t = state[s.sample];
      if (t < 0)
        t = static_cast<int64_t>(
            key({seed, 1, uint64_t(step), uint64_t(replica), uint64_t(mb),
                 uint64_t(b), uint64_t(s.sample)}) %
            static_cast<uint64_t>(vocab));
      for (int64_t i = s.start; i < s.start + s.length; ++i) {
        ids[i] = t;
        t = (5 * t + 3) % vocab;
      }
    }
    for (int64_t i : targeted)
      targets[i] = ids[i + 1];
  }
  for (size_t e = 0; e < model.encoders.size(); ++e) {
    const EncoderGeometry &g = model.encoders[e];
    std::vector<float> &media = d.media[g.name];
    media.resize(g.items * g.windows * g.mediaPerSequence);
    for (size_t i = 0; i < media.size(); ++i)
      media[i] = normal(key({seed, 2, uint64_t(step), uint64_t(replica),
                             uint64_t(mb), uint64_t(e), uint64_t(i)}));
  }
  d.lossScale =
      1.0 /
      static_cast<double>(std::max<int64_t>(
          model.countedTokensPerSequence * model.sequences * microbatches * dp,
          1));
  return std::move(d);
}

//===----------------------------------------------------------------------===//
// RecordingData
//===----------------------------------------------------------------------===//

llvm::Expected<MicrobatchData> RecordingData::get(int64_t step, int64_t replica,
                                                  int64_t mb) {
  auto d = inner.get(step, replica, mb);
  if (!d)
    return d.takeError();
  recorded.push_back({"s" + std::to_string(step) + ".d" +
                          std::to_string(replica) + ".m" + std::to_string(mb),
                      *d});
  return d;
}

llvm::Error RecordingData::write(llvm::StringRef path) const {
  SafeTensorsWriter w;
  // The writer reads the data at write(): keep every buffer alive here.
  std::vector<std::vector<int64_t>> ints;
  std::vector<std::vector<double>> doubles;
  auto addInts = [&](const std::string &name, std::vector<int64_t> v) {
    ints.push_back(std::move(v));
    w.add(name, {static_cast<int64_t>(ints.back().size())},
          llvm::ArrayRef<int64_t>(ints.back()));
  };
  ints.reserve((3 + model.encoders.size()) * (1 + recorded.size()) +
               2 * recorded.size());
  doubles.reserve(recorded.size());
  // A sequence's layout under `prefix`: its words, segments and positions.
  auto addLayout = [&](const std::string &prefix,
                       const kernels::TokenLayout &layout,
                       const std::vector<int64_t> &positions) {
    addInts(prefix + "layout.words",
            std::vector<int64_t>(layout.words.begin(), layout.words.end()));
    std::vector<int64_t> segments;
    for (int64_t i = 0; i < layout.size(); ++i)
      segments.push_back(layout.segment(i));
    addInts(prefix + "layout.segments", segments);
    addInts(prefix + "layout.positions", positions);
  };
  // The LLM row of each projected token of an encoder's first `items`
  // media items, in media order (-1: an item the batch does not have);
  // `starts` holds (media item, first row).
  auto addFanIn = [&](const std::string &name, size_t e, int64_t items,
                      const std::vector<std::pair<int64_t, int64_t>> &starts) {
    const int64_t length = model.encoders[e].llmTokensPerItem;
    std::vector<int64_t> rows(static_cast<size_t>(items * length), -1);
    for (auto [index, start] : starts)
      for (int64_t t = 0; t < length && index < items; ++t)
        rows[index * length + t] = start + t;
    addInts(name, rows);
  };
  addLayout("", model.layout, model.positions);
  // Per encoder, one sequence's items (samples, then items).
  for (size_t e = 0; e < model.encoders.size(); ++e) {
    std::vector<std::pair<int64_t, int64_t>> starts;
    for (const kernels::LayoutSpan &s : model.spans)
      if (s.kind == kernels::LayoutSpan::Item &&
          s.modality == static_cast<int64_t>(e))
        starts.push_back(
            {s.sample * model.encoders[e].itemsPerSample + s.itemIndex,
             s.start});
    addFanIn("fan_in." + model.encoders[e].name, e,
             static_cast<int64_t>(starts.size()), starts);
  }
  for (const auto &[name, d] : recorded) {
    // Real data: each microbatch has its own layout and items (its media
    // holds the items present first, then padding to the plan's count).
    if (d.layout) {
      addLayout(name + ".", d.layout->tokens, d.layout->positions);
      for (size_t e = 0; e < model.encoders.size(); ++e) {
        std::vector<std::pair<int64_t, int64_t>> starts;
        if (e < d.layout->items.size())
          for (const BatchLayout::Item &item : d.layout->items[e])
            starts.push_back({item.media, item.row});
        addFanIn(name + ".fan_in." + model.encoders[e].name, e,
                 model.encoders[e].items, starts);
      }
    }
    addInts(name + ".token_ids", d.tokenIds);
    addInts(name + ".targets", d.targets);
    doubles.push_back({d.lossScale});
    w.add(name + ".loss_scale", {1}, llvm::ArrayRef<double>(doubles.back()));
    for (const auto &[encoder, media] : d.media)
      w.add(name + ".media." + encoder, {static_cast<int64_t>(media.size())},
            llvm::ArrayRef<float>(media));
  }
  return w.write(path);
}
