//===- KeyCache.cpp - generation's keys and values, kept per layer --------===//
#include "mllm/runtime/exec/KeyCache.h"

#include "llvm/Support/FormatVariadic.h"

#include <algorithm>

using namespace mllm::runtime;
using namespace mllm::runtime::exec;

static llvm::Error internal(const llvm::Twine &why) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 "generation's key cache: " + why +
                                     " (internal error)");
}

llvm::Error KeyCache::unused() {
  return internal("a collective other than the K/V all-gather");
}

void KeyCache::clear() {
  layers.clear();
  next = 0;
  kept = added = 0;
  failed = false;
}

void KeyCache::beginRound(int64_t tokens) {
  next = 0;
  added = tokens;
}

llvm::Error KeyCache::endRound() {
  // The first round meets every layer; later ones must meet as many.
  if (failed || next != layers.size()) {
    const size_t served = next, all = layers.size();
    clear();
    return internal(
        llvm::formatv("{0} of {1} layers' keys were served", served, all));
  }
  kept += added;
  added = 0;
  next = 0;
  return llvm::Error::success();
}

llvm::Error KeyCache::allGather(const float *local,
                                llvm::ArrayRef<int64_t> counts, float *out) {
  // One sequence: each rank's block is [K | V] of its tokens.
  const bool first = kept == 0 && next == layers.size();
  if (counts.size() != 2 || added < 1 || counts[1] % (2 * added) != 0 ||
      (!first && next >= layers.size())) {
    failed = true;
    return internal("an all-gather that no layer's keys fit");
  }
  const int64_t width = counts[1] / (2 * added);
  if (first)
    layers.push_back({width, {}, {}});
  Layer &l = layers[next++];
  if (l.width != width || counts[0] != 2 * kept * width) {
    failed = true;
    return internal(llvm::formatv("layer {0} asks for {1} values of {2} kept "
                                  "tokens of width {3}",
                                  next - 1, counts[0], kept, l.width));
  }
  const int64_t n = added * width;
  out = std::copy(l.k.begin(), l.k.end(), out);
  out = std::copy(l.v.begin(), l.v.end(), out);
  std::copy_n(local, 2 * n, out);
  l.k.insert(l.k.end(), local, local + n);
  l.v.insert(l.v.end(), local + n, local + 2 * n);
  return llvm::Error::success();
}
