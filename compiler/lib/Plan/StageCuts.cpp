//===- StageCuts.cpp - the cuts the allocators price ----------------------===//
//
// StageCuts (PartitionImpl.h): per stage count, the fastest cut whose
// stages fit one GPU with 1, 2, 4, ... microbatches in flight, and the
// closest miss where none fits.
//
//===----------------------------------------------------------------------===//
#include "PartitionImpl.h"

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
}

std::vector<int64_t> StageCuts::cut(int64_t k, int64_t level) const {
  if (level > 0 && level < levels() && tables[level].feasible(k))
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
