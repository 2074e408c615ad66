//===- Stream.cpp - the epochs of packed microbatches, and DP shards ------===//

#include "mllm/runtime/data/Stream.h"

#include <algorithm>

using namespace mllm::runtime::data;

BatchStream::BatchStream(std::vector<SampleShape> shapes,
                         const DataGeometry &geometry,
                         const PackOptions &options, uint64_t seed)
    : sampleShapes(std::move(shapes)), geometry(geometry), options(options),
      seed(seed) {}

std::shared_ptr<const BatchStream::Epoch> BatchStream::epoch(int64_t e) const {
  {
    std::lock_guard<std::mutex> hold(lock);
    auto it = cache.find(e);
    if (it != cache.end())
      return it->second;
  }
  // Packed outside the lock: two threads may pack the same epoch, with the
  // same result.
  auto order = shuffledOrder(static_cast<int64_t>(sampleShapes.size()), seed,
                             static_cast<uint64_t>(e));
  auto packed = std::make_shared<const Epoch>(
      packFirstFit(order, sampleShapes, geometry, options));
  std::lock_guard<std::mutex> hold(lock);
  // Readers move forward through epochs; a handful covers replicas and
  // prefetch threads that straddle an epoch boundary.
  if (cache.size() >= 4)
    cache.erase(cache.begin());
  cache[e] = packed;
  return packed;
}

int64_t BatchStream::batchesInEpoch(int64_t e) const {
  auto sequences = static_cast<int64_t>(epoch(e)->size());
  int64_t per = std::max<int64_t>(geometry.sequences, 1);
  return (sequences + per - 1) / per;
}

BatchRef BatchStream::locate(int64_t k) const {
  int64_t known;
  {
    std::lock_guard<std::mutex> hold(lock);
    known = static_cast<int64_t>(starts.size()) - 1;
    if (starts.back() > k) {
      auto it = std::upper_bound(starts.begin(), starts.end(), k);
      int64_t e = (it - starts.begin()) - 1;
      return {e, k - starts[e]};
    }
  }
  // Extend the epochs' starts until one holds k (a resume far ahead packs
  // every epoch before it once).
  for (int64_t e = known;; ++e) {
    int64_t n = batchesInEpoch(e);
    std::lock_guard<std::mutex> hold(lock);
    if (static_cast<int64_t>(starts.size()) == e + 1)
      starts.push_back(starts.back() + n);
    if (starts[e + 1] > k)
      return {e, k - starts[e]};
  }
}

std::vector<std::vector<int64_t>> BatchStream::sequences(BatchRef ref) const {
  auto packed = epoch(ref.epoch);
  int64_t per = std::max<int64_t>(geometry.sequences, 1);
  std::vector<std::vector<int64_t>> out(static_cast<size_t>(per));
  for (int64_t s = 0; s < per; ++s) {
    auto i = static_cast<size_t>(ref.index * per + s);
    if (i < packed->size())
      out[s] = (*packed)[i];
  }
  return out;
}

int64_t BatchStream::countedTokens(BatchRef ref) const {
  int64_t n = 0;
  for (const auto &seq : sequences(ref))
    for (int64_t s : seq)
      n += sampleShapes[s].counted;
  return n;
}
