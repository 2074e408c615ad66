//===- CycleRatioTest.cpp - the largest cycle ratio -----------------------===//
//
// maxCycleRatio (Howard's policy iteration) against every simple cycle of
// small random graphs, and against bisection on graphs shaped like a
// capped pipeline's steady state.
//
//===----------------------------------------------------------------------===//
#include "CycleRatio.h"

#include "gtest/gtest.h"

#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <vector>

using mllm::plan::detail::maxCycleRatio;
using mllm::plan::detail::maxCycleRatioByBisection;
using mllm::plan::detail::RatioEdge;

namespace {

constexpr double kInfinity = std::numeric_limits<double>::infinity();

/// Every simple cycle's weight / lag, the largest; +infinity if a cycle
/// has lag <= 0, -infinity if there is none. Each cycle is walked from its
/// smallest event.
double everyCycle(int nodes, const std::vector<RatioEdge> &edges) {
  double best = -kInfinity;
  std::vector<char> on(nodes, 0);
  std::function<void(int, int, double, int64_t)> extend = [&](int start, int v,
                                                              double weight,
                                                              int64_t lag) {
    for (const RatioEdge &e : edges) {
      if (e.from != v || e.to < start)
        continue;
      double w = weight + e.weight;
      int64_t l = lag + e.lag;
      if (e.to == start) {
        best = std::max(best, l <= 0 ? kInfinity : w / static_cast<double>(l));
      } else if (!on[e.to]) {
        on[e.to] = 1;
        extend(start, e.to, w, l);
        on[e.to] = 0;
      }
    }
  };
  for (int s = 0; s < nodes; ++s) {
    on[s] = 1;
    extend(s, s, 0, 0);
    on[s] = 0;
  }
  return best;
}

TEST(CycleRatio, SmallCases) {
  int64_t work = 0;
  // No cycle: a path.
  EXPECT_EQ(maxCycleRatio(3, {{0, 1, 1, 0}, {1, 2, 1, 0}}, work), -kInfinity);
  // A self-loop, and an event that only leads to it.
  EXPECT_DOUBLE_EQ(maxCycleRatio(2, {{0, 0, 3, 2}, {1, 0, 9, 0}}, work), 1.5);
  // Two separate cycles: the larger ratio, whichever the first edges pick.
  std::vector<RatioEdge> two = {
      {0, 1, 5, 1}, {1, 0, 5, 1}, {2, 3, 1, 0}, {3, 2, 6, 1}};
  EXPECT_DOUBLE_EQ(maxCycleRatio(4, two, work), 7.0);
  // The heaviest edge out of 0 leads to the smaller cycle.
  std::vector<RatioEdge> lure = {{0, 1, 9, 0}, {1, 1, 1, 1}, {0, 2, 1, 0},
                                 {2, 0, 2, 1}, {2, 2, 0, 1}, {0, 0, 0, 1}};
  EXPECT_DOUBLE_EQ(maxCycleRatio(3, lure, work), 3.0);
  // A cycle within one microbatch: no period allows it.
  EXPECT_EQ(maxCycleRatio(2, {{0, 1, 1, 1}, {1, 0, 1, -1}}, work), kInfinity);
  EXPECT_GT(work, 0);
}

TEST(CycleRatio, EverySimpleCycleOfRandomGraphs) {
  std::mt19937 rng(7);
  int compared = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    int nodes = 1 + static_cast<int>(rng() % 7);
    int count = static_cast<int>(rng() % (3 * nodes + 1));
    std::vector<RatioEdge> edges;
    for (int i = 0; i < count; ++i) {
      RatioEdge e;
      e.from = static_cast<int>(rng() % nodes);
      e.to = static_cast<int>(rng() % nodes);
      // Integer-ish weights make ties between cycles common.
      e.weight = rng() % 3 ? static_cast<double>(rng() % 5)
                           : std::uniform_real_distribution<>(0, 4)(rng);
      e.lag = static_cast<int64_t>(rng() % 5) - 1;
      edges.push_back(e);
    }
    double exact = everyCycle(nodes, edges);
    int64_t work = 0;
    double howard = maxCycleRatio(nodes, edges, work);
    if (std::isinf(exact)) {
      // A cycle of lag <= 0 need not be the policy's: only the other way
      // round is promised.
      if (exact < 0)
        EXPECT_EQ(howard, exact) << "trial " << trial;
      continue;
    }
    ASSERT_TRUE(std::isfinite(howard)) << "trial " << trial;
    EXPECT_NEAR(howard, exact, 1e-9 * (1 + exact)) << "trial " << trial;
    ++compared;
  }
  // Most random graphs with a cycle of positive lag throughout.
  EXPECT_GT(compared, 600);
}

/// The steady state of a pipeline of `stages` stages under random caps, as
/// Estimate.cpp builds it: F, Bd, Bw per stage; warm-ups carried down.
std::vector<RatioEdge> pipeline(std::mt19937 &rng, int stages,
                                int64_t microbatches) {
  std::vector<RatioEdge> edges;
  std::uniform_real_distribution<> time(0.5, 2.0);
  int64_t carried = microbatches;
  double previousF = 0;
  for (int s = 0; s < stages; ++s) {
    int64_t w = std::min<int64_t>(stages - 1 - s, microbatches);
    if (rng() % 3 == 0)
      w = std::min<int64_t>(w, static_cast<int64_t>(rng() % 3));
    w = carried = std::min(w, carried);
    double f = time(rng), bd = 2 * time(rng), bw = time(rng);
    edges.push_back({3 * s, 3 * s + 1, f, -w});
    edges.push_back({3 * s + 1, 3 * s + 2, bd, 0});
    edges.push_back({3 * s + 2, 3 * s, bw, w + 1});
    if (s > 0) {
      double transfer = 0.1 * time(rng);
      edges.push_back({3 * (s - 1), 3 * s, previousF + transfer, 0});
      edges.push_back({3 * s + 1, 3 * (s - 1) + 1, bd + transfer, 0});
    }
    previousF = f;
  }
  return edges;
}

TEST(CycleRatio, CappedPipelinesAgainstBisection) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 200; ++trial) {
    int stages = 2 + static_cast<int>(rng() % 40);
    std::vector<RatioEdge> edges = pipeline(rng, stages, 4 + rng() % 60);
    int nodes = 3 * stages;
    int64_t howardWork = 0, bisectionWork = 0;
    double howard = maxCycleRatio(nodes, edges, howardWork);
    double bisection = maxCycleRatioByBisection(nodes, edges, 0, bisectionWork);
    ASSERT_TRUE(std::isfinite(howard)) << "trial " << trial;
    // Bisection stops within 1e-9 of the total weight, above the ratio.
    double total = 0;
    for (const RatioEdge &e : edges)
      total += e.weight;
    EXPECT_NEAR(howard, bisection, 2e-9 * total) << "trial " << trial;
    EXPECT_LE(howard, bisection + 1e-12 * total) << "trial " << trial;
  }
}

} // namespace
