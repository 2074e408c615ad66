//===- Packing.h - samples into sequences, first fit ------------*- C++ -*-===//
//
// Packing needs only each sample's shape (its tokens and items per
// encoder), never its media, so a whole epoch is planned before anything is
// decoded and every replica plans the same one.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_DATA_PACKING_H
#define MLLM_RUNTIME_DATA_PACKING_H

#include "mllm/runtime/data/Geometry.h"

#include "llvm/ADT/ArrayRef.h"

#include <cstdint>
#include <vector>

namespace mllm::runtime::data {

struct SampleShape {
  int64_t tokens = 0;
  std::vector<int64_t> items; ///< Per encoder of the geometry.
  int64_t counted = 0;        ///< Tokens with a target.
};

struct PackOptions {
  /// Sequences kept open for later samples to fill; when one more would
  /// open, the oldest is closed. More finds better fits and costs
  /// O(samples x open) time.
  int64_t openSequences = 64;
  /// Samples per sequence at most; 0: only tokens and items limit it.
  int64_t maxSamples = 0;
};

/// Whether a sample of `shape` can ever be packed: at most seqLen tokens
/// (its items always fit an empty sequence; the manifest checks them).
bool fitsSequence(const SampleShape &shape, const DataGeometry &geometry);

/// First fit: each sample of `order` goes into the first open sequence with
/// room for its tokens (seq_len), its items (DataGeometry::itemCapacity per
/// encoder) and, if limited, one more sample; else into a new sequence.
/// Returns the sequences, in the order they were opened, as indices into
/// `shapes`. Every sample in `order` must fit an empty sequence.
std::vector<std::vector<int64_t>>
packFirstFit(llvm::ArrayRef<int64_t> order, llvm::ArrayRef<SampleShape> shapes,
             const DataGeometry &geometry, const PackOptions &options);

/// A permutation of 0..n-1, a pure function of (seed, epoch): Fisher-Yates
/// driven by SplitMix64, the same on every platform and standard library.
std::vector<int64_t> shuffledOrder(int64_t n, uint64_t seed, uint64_t epoch);

} // namespace mllm::runtime::data

#endif // MLLM_RUNTIME_DATA_PACKING_H
