//===- StageCuts.cpp - the cuts the allocators price ----------------------===//
//
// StageCuts (PartitionImpl.h): per stage count, the fastest cut whose
// stages fit one GPU with 1, 2, 4, ... microbatches in flight, the fastest
// whose stages fit their whole 1F1B warm-up, and the closest miss where
// none fits.
//
//===----------------------------------------------------------------------===//
#include "PartitionImpl.h"

#include <algorithm>

using namespace mllm::plan;
using namespace mllm::plan::detail;

StageCuts::StageCuts(std::vector<double> balanceTimes, int64_t maxStages,
                     MemoryOf memory, double capacity, int64_t microbatches,
                     std::vector<double> bytes, double extraBytes)
    : balance(std::move(balanceTimes)), layerBytes(std::move(bytes)),
      lastExtraBytes(extraBytes), isChecked(memory && capacity > 0) {
  if (!isChecked) {
    tables.emplace_back(balance, maxStages);
    return;
  }
  auto n = static_cast<double>(balance.size());
  bool roomy = static_cast<double>(maxStages) * n * n <= kMinMaxExactWork;
  for (int64_t inFlight = 1;
       inFlight == 1 || (roomy && inFlight < microbatches); inFlight *= 2) {
    auto fits = [&](int64_t first, int64_t end) {
      StageMemory mem = memory(first, end);
      mem.wanted = mem.inFlight = inFlight;
      return mem.fits(capacity);
    };
    tables.emplace_back(balance, maxStages, llvm::ArrayRef<double>(),
                        SegmentFits(fits));
    // A level that fits no stage count adds nothing; nor do roomier ones.
    if (inFlight > 1 && !tables.back().feasible(maxStages)) {
      tables.pop_back();
      break;
    }
  }
  // The tapers: the last stage holds one microbatch, each before it one
  // more, up to a cap (2, 4, ..., then none). The DP runs over the layers
  // reversed, so that its stage index, counted from the last stage, gives
  // the warm-up whatever the count; the stages from the cap on share one
  // predicate. Like the roomier levels, for sizes whose search is exact.
  // Reversed, SegmentFits' monotonicity asks a stage that fits to fit
  // without its first layers, which holds but where it then no longer
  // starts the module (a tied head's copy): a taper can only miss a cut
  // there, never take one that does not fit.
  if (maxStages < 2 || microbatches < 2 || !roomy)
    return;
  std::vector<double> reversed(balance.rbegin(), balance.rend());
  auto layers = static_cast<int64_t>(balance.size());
  for (int64_t cap = 2;; cap = std::min(2 * cap, microbatches)) {
    auto fits = [&](int64_t fromLast, int64_t first, int64_t end) {
      StageMemory mem = memory(layers - end, layers - first);
      mem.wanted = mem.inFlight = std::min(fromLast + 1, cap);
      return mem.fits(capacity);
    };
    MinMaxTable t(reversed, maxStages, llvm::ArrayRef<double>(),
                  StageFits(fits), cap);
    // Deeper warm-ups come with more stages: feasible for some count, or
    // for none.
    bool any = false;
    for (int64_t k = 2; k <= maxStages && !any; ++k)
      any = t.feasible(k);
    if (any)
      tapers.push_back(std::move(t));
    if (cap >= microbatches)
      break;
  }
}

std::vector<int64_t> StageCuts::cut(int64_t k, int64_t level) const {
  auto uniform = static_cast<int64_t>(tables.size());
  if (level >= uniform && level < levels() &&
      tapers[level - uniform].feasible(k)) {
    std::vector<int64_t> sizes = tapers[level - uniform].reconstruct(k);
    std::reverse(sizes.begin(), sizes.end());
    return sizes;
  }
  if (level > 0 && level < uniform && tables[level].feasible(k))
    return tables[level].reconstruct(k);
  if (tables[0].feasible(k))
    return tables[0].reconstruct(k);
  // Nothing fits: the cut whose largest stage needs the least, the last
  // stage holding the extra (a tied head's copy) when it is not the only
  // one.
  std::vector<double> bg(k, 0.0);
  if (k > 1)
    bg[k - 1] = lastExtraBytes;
  return MinMaxTable(layerBytes, k, bg).reconstruct(k);
}
