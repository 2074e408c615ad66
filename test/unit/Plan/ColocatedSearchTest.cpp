//===- ColocatedSearchTest.cpp - the exact joint cut of colocated encoders ===//
//
// The joint partition of colocated encoders (colocatedImpl) against an
// independent exact DP over boundary vectors, on grids larger than brute
// force reaches: two to four encoders of up to 18 layers, with and without
// a background load per stage (the explicit encoders' share), weights that
// tie (small integers) and weights that do not.
//
//===----------------------------------------------------------------------===//
#include "PartitionImpl.h"

#include "gtest/gtest.h"

#include <algorithm>
#include <cmath>
#include <random>

using namespace mllm::plan;

namespace {

/// The least bottleneck of k stages over the encoders `w` plus `bg`:
/// best[i][b] over the boundary vectors b after stage i, each encoder's
/// boundary moving by at least one layer per stage; every predecessor is
/// tried (no dominance sweep, no bisection). Loads are summed layer by
/// layer, so with integer weights the result is exact.
double referenceBottleneck(const std::vector<std::vector<double>> &w, int64_t k,
                           const std::vector<double> &bg) {
  size_t e = w.size();
  std::vector<int64_t> n;
  for (const std::vector<double> &x : w)
    n.push_back(static_cast<int64_t>(x.size()));
  // Every boundary vector with 0 <= b_a <= n_a, as a flat index.
  int64_t points = 1;
  for (int64_t x : n)
    points *= x + 1;
  std::vector<int64_t> coord(points * e);
  for (int64_t idx = 0; idx < points; ++idx)
    for (size_t a = 0, rest = idx; a < e; ++a) {
      coord[idx * e + a] = static_cast<int64_t>(rest % (n[a] + 1));
      rest /= n[a] + 1;
    }
  // seg[a][from][to]: encoder a's layers [from, to), summed one by one.
  std::vector<std::vector<std::vector<double>>> seg(e);
  for (size_t a = 0; a < e; ++a) {
    seg[a].assign(n[a] + 1, std::vector<double>(n[a] + 1, 0.0));
    for (int64_t from = 0; from <= n[a]; ++from)
      for (int64_t to = from + 1; to <= n[a]; ++to)
        seg[a][from][to] = seg[a][from][to - 1] + w[a][to - 1];
  }
  std::vector<double> best(points, INFINITY);
  best[0] = 0; // Every boundary at 0 before the first stage.
  for (int64_t stage = 0; stage < k; ++stage) {
    std::vector<double> next(points, INFINITY);
    for (int64_t q = 0; q < points; ++q)
      for (int64_t p = 0; p < q; ++p) {
        if (best[p] == INFINITY)
          continue;
        double load = bg[stage];
        size_t a = 0;
        for (; a < e; ++a) {
          int64_t from = coord[p * e + a], to = coord[q * e + a];
          if (from >= to)
            break; // Each encoder moves by at least one layer.
          load += seg[a][from][to];
        }
        if (a == e)
          next[q] = std::min(next[q], std::max(best[p], load));
      }
    best = std::move(next);
  }
  return best[points - 1];
}

double bottleneckOf(const std::vector<std::vector<double>> &w,
                    const std::vector<std::vector<int64_t>> &sizes, int64_t k,
                    const std::vector<double> &bg) {
  std::vector<double> loads = bg;
  for (size_t a = 0; a < w.size(); ++a) {
    EXPECT_EQ(static_cast<int64_t>(sizes[a].size()), k);
    int64_t at = 0;
    for (int64_t i = 0; i < k; ++i) {
      EXPECT_GE(sizes[a][i], 1);
      for (int64_t l = at; l < at + sizes[a][i]; ++l)
        loads[i] += w[a][l];
      at += sizes[a][i];
    }
    EXPECT_EQ(at, static_cast<int64_t>(w[a].size()));
  }
  return *std::max_element(loads.begin(), loads.end());
}

void checkAgainstReference(bool integral, bool background, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> real(0.01, 1.0);
  int exactCalls = 0;
  for (int iter = 0; iter < 200; ++iter) {
    size_t encoders = 2 + rng() % 3;
    // Four encoders stay short: the reference is quadratic in the grid.
    int64_t most = encoders == 4 ? 6 : encoders == 3 ? 10 : 18;
    std::vector<std::vector<double>> w(encoders);
    int64_t minN = most;
    for (std::vector<double> &x : w) {
      x.resize(2 + rng() % (most - 1));
      for (double &v : x)
        v = integral ? static_cast<double>(rng() % 6) : real(rng);
      minN = std::min<int64_t>(minN, static_cast<int64_t>(x.size()));
    }
    int64_t k = 2 + static_cast<int64_t>(rng() % (minN - 1));
    std::vector<double> bg(k, 0.0);
    if (background)
      for (double &v : bg)
        v = integral ? static_cast<double>(rng() % 10) : 3 * real(rng);
    double want = referenceBottleneck(w, k, bg);
    std::vector<std::vector<int64_t>> got =
        detail::colocatedImpl(w, k, bg, detail::kColocatedExactWork);
    ASSERT_EQ(got.size(), encoders);
    double have = bottleneckOf(w, got, k, bg);
    if (integral)
      EXPECT_EQ(have, want) << "iter " << iter;
    else // Prefix-sum differences against layer-by-layer sums.
      EXPECT_NEAR(have, want, 1e-12 * want) << "iter " << iter;
    exactCalls += detail::colocatedImpl(w, k, bg, 0) != got;
  }
  // The instances reach the exact search, not only the heuristic's answer.
  EXPECT_GT(exactCalls, 0);
}

TEST(ColocatedSearch, TiedWeightsMatchTheReference) {
  checkAgainstReference(/*integral=*/true, /*background=*/false, 21);
}

TEST(ColocatedSearch, TiedWeightsWithABackgroundMatchTheReference) {
  checkAgainstReference(/*integral=*/true, /*background=*/true, 22);
}

TEST(ColocatedSearch, RealWeightsMatchTheReference) {
  checkAgainstReference(/*integral=*/false, /*background=*/false, 23);
  checkAgainstReference(/*integral=*/false, /*background=*/true, 24);
}

} // namespace
