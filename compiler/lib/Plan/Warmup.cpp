//===- Warmup.cpp - the warm-ups of memory-aware multimodal 1F1B ----------===//
//
// WarmupShare and multimodalWarmups (Warmup.h): the schedule generator's
// and the iteration estimate's one rule.
//
//===----------------------------------------------------------------------===//
#include "mllm/Plan/Warmup.h"

#include <algorithm>
#include <cassert>
#include <cmath>

using namespace mllm::plan;

mllm::plan::WarmupShare mllm::plan::WarmupShare::of(int64_t warmup,
                                                    double trip) {
  WarmupShare share;
  if (trip > 0) {
    share.held = std::max<int64_t>(warmup, 0) + 1;
    share.trip = trip;
  }
  return share;
}

void mllm::plan::WarmupShare::meet(const WarmupShare &other) {
  if (other.held > 0 &&
      (held == 0 || static_cast<double>(other.held) * trip <
                        static_cast<double>(held) * other.trip)) {
    held = other.held;
    trip = other.trip;
  }
}

int64_t mllm::plan::WarmupShare::limit(int64_t warmup, double trip) const {
  if (held == 0)
    return warmup;
  // trip / this->trip is exactly 1 on the capped stage itself; the margin
  // keeps a product that rounding lifts past an integer from holding one
  // more.
  double needs = static_cast<double>(held) * (trip / this->trip);
  auto holds = static_cast<int64_t>(std::ceil(needs * (1 - 1e-9)));
  return std::min(warmup, std::max<int64_t>(holds, 1) - 1);
}

std::vector<int64_t>
mllm::plan::multimodalWarmups(llvm::ArrayRef<WarmupStage> stages,
                              llvm::ArrayRef<int> order, int64_t microbatches) {
  size_t n = stages.size();
  assert(order.size() == n && "an order lists every stage");
  std::vector<int64_t> warmup(n, microbatches);
  std::vector<WarmupShare> share(n);
  for (size_t s = 0; s < n; ++s) {
    const WarmupStage &st = stages[s];
    if (!st.backward)
      continue;
    warmup[s] = std::min(st.depth, microbatches);
    if (st.fits > 0 && st.fits - 1 < warmup[s]) {
      warmup[s] = st.fits - 1;
      share[s] = WarmupShare::of(warmup[s], st.trip);
    }
  }
  for (int t : order) {
    if (!stages[t].backward)
      continue;
    for (int p : stages[t].carriesFrom) {
      warmup[t] = std::min(warmup[t], warmup[p]);
      share[t].meet(share[p]);
    }
    warmup[t] = share[t].limit(warmup[t], stages[t].trip);
  }
  return warmup;
}
