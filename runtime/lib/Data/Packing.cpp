//===- Packing.cpp - samples into sequences, first fit --------------------===//

#include "mllm/runtime/data/Packing.h"

#include "mllm/kernels/Bitfield.h"

#include <deque>
#include <numeric>

using namespace mllm::runtime::data;

bool mllm::runtime::data::fitsSequence(const SampleShape &shape,
                                       const DataGeometry &geometry) {
  if (shape.tokens > geometry.seqLen)
    return false;
  for (size_t e = 0; e < shape.items.size(); ++e)
    if (shape.items[e] > geometry.itemCapacity(e))
      return false;
  return true;
}

namespace {

struct OpenSequence {
  size_t index; // into the result
  int64_t tokens = 0;
  std::vector<int64_t> items;
};

} // namespace

std::vector<std::vector<int64_t>> mllm::runtime::data::packFirstFit(
    llvm::ArrayRef<int64_t> order, llvm::ArrayRef<SampleShape> shapes,
    const DataGeometry &geometry, const PackOptions &options) {
  std::vector<std::vector<int64_t>> sequences;
  std::deque<OpenSequence> open;
  const size_t numEncoders = geometry.encoders.size();
  auto fits = [&](const OpenSequence &seq, const SampleShape &s) {
    if (seq.tokens + s.tokens > geometry.seqLen)
      return false;
    // The segment's sample field also numbers the padding after the
    // samples: at most kMaxSample samples leave it an id.
    auto samples = static_cast<int64_t>(sequences[seq.index].size());
    if (samples >= static_cast<int64_t>(mllm::kernels::kMaxSample) ||
        (options.maxSamples > 0 && samples >= options.maxSamples))
      return false;
    for (size_t e = 0; e < numEncoders; ++e)
      if (seq.items[e] + s.items[e] > geometry.itemCapacity(e))
        return false;
    return true;
  };
  for (int64_t sample : order) {
    const SampleShape &s = shapes[sample];
    OpenSequence *target = nullptr;
    for (OpenSequence &seq : open)
      if (fits(seq, s)) {
        target = &seq;
        break;
      }
    if (!target) {
      if (static_cast<int64_t>(open.size()) >=
          std::max<int64_t>(options.openSequences, 1))
        open.pop_front();
      open.push_back({sequences.size(), 0, std::vector<int64_t>(numEncoders)});
      sequences.emplace_back();
      target = &open.back();
    }
    target->tokens += s.tokens;
    for (size_t e = 0; e < numEncoders; ++e)
      target->items[e] += s.items[e];
    sequences[target->index].push_back(sample);
    // A full sequence takes nothing more: close it now rather than scan it
    // for every later sample.
    if (target->tokens == geometry.seqLen) {
      for (auto it = open.begin(); it != open.end(); ++it)
        if (it->index == target->index) {
          open.erase(it);
          break;
        }
    }
  }
  return sequences;
}

static uint64_t splitmix(uint64_t &state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

std::vector<int64_t>
mllm::runtime::data::shuffledOrder(int64_t n, uint64_t seed, uint64_t epoch) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t(0));
  uint64_t state = seed ^ (0xd1b54a32d192ed03ull * (epoch + 1));
  splitmix(state);
  for (int64_t i = n - 1; i > 0; --i) {
    // Lemire's multiply-shift: a draw in [0, i] without division; its bias
    // (< i / 2^64) does not matter for a shuffle.
    auto j =
        static_cast<int64_t>((static_cast<unsigned __int128>(splitmix(state)) *
                              static_cast<uint64_t>(i + 1)) >>
                             64);
    std::swap(order[i], order[j]);
  }
  return order;
}
