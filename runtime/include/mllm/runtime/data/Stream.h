//===- Stream.h - the epochs of packed microbatches, and DP shards -*- C++ -*-//
//
// Epoch e shuffles the usable samples with (seed, e), packs them first-fit
// into sequences and groups consecutive sequences into microbatches of the
// plan's microbatch_size (the last one of an epoch padded with empty
// sequences). The epochs, one after another, form one stream of
// microbatches; a step takes the next dp x microbatches of them, and
// replica d takes every dp-th one:
//
//   stream index of (step, replica, mb) = (step x microbatches + mb) x dp
//                                         + replica
//
// So the shards are disjoint, every replica sees the whole plan (the loss
// scale of a step is known everywhere without communication), and a
// position is one integer that resumes exactly. docs/data.md, "Sharding".
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_DATA_STREAM_H
#define MLLM_RUNTIME_DATA_STREAM_H

#include "mllm/runtime/data/Packing.h"

#include <map>
#include <memory>
#include <mutex>

namespace mllm::runtime::data {

/// A microbatch of the stream: the `index`-th of epoch `epoch`.
struct BatchRef {
  int64_t epoch = 0, index = 0;
  bool operator==(const BatchRef &o) const {
    return epoch == o.epoch && index == o.index;
  }
};

class BatchStream {
public:
  /// `shapes`: the usable samples (each fits a sequence), at least one.
  BatchStream(std::vector<SampleShape> shapes, const DataGeometry &geometry,
              const PackOptions &options, uint64_t seed);

  static int64_t streamIndex(const DataGeometry &geometry, int64_t step,
                             int64_t replica, int64_t microbatch) {
    return (step * geometry.microbatches + microbatch) * geometry.dp + replica;
  }

  /// Where stream microbatch `k` lies. Thread-safe.
  BatchRef locate(int64_t k) const;
  /// Microbatches in epoch `epoch`.
  int64_t batchesInEpoch(int64_t epoch) const;
  /// Per sequence of the microbatch, its samples (indices into the shapes);
  /// empty sequences pad the epoch's last microbatch.
  std::vector<std::vector<int64_t>> sequences(BatchRef ref) const;
  /// Tokens with a target in the microbatch (from the shapes alone).
  int64_t countedTokens(BatchRef ref) const;

  const std::vector<SampleShape> &shapes() const { return sampleShapes; }

private:
  using Epoch = std::vector<std::vector<int64_t>>; // sequences of samples
  std::shared_ptr<const Epoch> epoch(int64_t e) const;

  std::vector<SampleShape> sampleShapes;
  DataGeometry geometry;
  PackOptions options;
  uint64_t seed;
  mutable std::mutex lock;
  /// The last few epochs' packings, and every epoch's first stream index
  /// so far (starts[e + 1] - starts[e] = its microbatches).
  mutable std::map<int64_t, std::shared_ptr<const Epoch>> cache;
  mutable std::vector<int64_t> starts{0};
};

} // namespace mllm::runtime::data

#endif // MLLM_RUNTIME_DATA_STREAM_H
