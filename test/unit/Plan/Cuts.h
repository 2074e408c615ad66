//===- Cuts.h - every cut of a chain of layers, for brute force -*- C++ -*-===//
//
// Shared by the partitioner tests that check a result against every cut.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_TEST_UNIT_PLAN_CUTS_H
#define MLLM_TEST_UNIT_PLAN_CUTS_H

#include <algorithm>
#include <cstdint>
#include <functional>
#include <vector>

namespace mllm::plan::test {

/// Calls f with every cut of n layers into k contiguous stages (each >= 1),
/// as layers per stage.
inline void
forEachCut(int64_t n, int64_t k,
           const std::function<void(const std::vector<int64_t> &)> &f) {
  std::vector<int64_t> sizes;
  std::function<void(int64_t, int64_t)> rec = [&](int64_t left, int64_t parts) {
    if (parts == 1) {
      sizes.push_back(left);
      f(sizes);
      sizes.pop_back();
      return;
    }
    for (int64_t s = 1; s <= left - parts + 1; ++s) {
      sizes.push_back(s);
      rec(left - s, parts - 1);
      sizes.pop_back();
    }
  };
  rec(n, k);
}

/// The largest stage sum of `w` under the cut `sizes`.
inline double maxStageSum(const std::vector<double> &w,
                          const std::vector<int64_t> &sizes) {
  double most = 0;
  size_t at = 0;
  for (int64_t s : sizes) {
    double sum = 0;
    for (int64_t i = 0; i < s; ++i)
      sum += w[at++];
    most = std::max(most, sum);
  }
  return most;
}

} // namespace mllm::plan::test

#endif // MLLM_TEST_UNIT_PLAN_CUTS_H
