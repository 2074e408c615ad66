//===- CycleRatio.cpp - the largest cycle ratio of a periodic graph -------===//
//
// maxCycleRatio (CycleRatio.h): Howard's policy iteration, with bisection
// as its fallback and check.
//
//===----------------------------------------------------------------------===//
#include "CycleRatio.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

using namespace mllm::plan::detail;

namespace {

constexpr double kInfinity = std::numeric_limits<double>::infinity();

/// The graph without the events that reach no cycle, its edges by source.
struct Graph {
  std::vector<int> first; ///< Per event, into `out`; size nodes + 1.
  std::vector<int> out;   ///< Edge indices.
  std::vector<char> live; ///< Reaches a cycle.
  double totalWeight = 0;

  Graph(int nodes, llvm::ArrayRef<RatioEdge> edges) {
    // Peel the events left with no edge out: they close no cycle.
    std::vector<int> degree(nodes, 0), inFirst, in;
    for (const RatioEdge &e : edges)
      ++degree[e.from];
    group(
        nodes, edges, [](const RatioEdge &e) { return e.to; },
        [](const RatioEdge &) { return true; }, inFirst, in);
    live.assign(nodes, 1);
    std::vector<int> peel;
    for (int v = 0; v < nodes; ++v)
      if (degree[v] == 0)
        peel.push_back(v);
    while (!peel.empty()) {
      int v = peel.back();
      peel.pop_back();
      live[v] = 0;
      for (int i = inFirst[v]; i < inFirst[v + 1]; ++i)
        if (--degree[edges[in[i]].from] == 0)
          peel.push_back(edges[in[i]].from);
    }
    auto between = [&](const RatioEdge &e) {
      return live[e.from] && live[e.to];
    };
    group(
        nodes, edges, [](const RatioEdge &e) { return e.from; }, between, first,
        out);
    for (const RatioEdge &e : edges)
      if (between(e))
        totalWeight += std::abs(e.weight);
  }

  /// The indices of the edges `keep` accepts, grouped by `key` (a counting
  /// sort): those of v at list[first[v]] .. list[first[v + 1]].
  template <typename Key, typename Keep>
  static void group(int nodes, llvm::ArrayRef<RatioEdge> edges, Key key,
                    Keep keep, std::vector<int> &first,
                    std::vector<int> &list) {
    first.assign(nodes + 1, 0);
    for (const RatioEdge &e : edges)
      if (keep(e))
        ++first[key(e) + 1];
    for (int v = 0; v < nodes; ++v)
      first[v + 1] += first[v];
    list.resize(first[nodes]);
    std::vector<int> fill(first.begin(), first.end() - 1);
    for (size_t i = 0; i < edges.size(); ++i)
      if (keep(edges[i]))
        list[fill[key(edges[i])]++] = static_cast<int>(i);
  }
};

/// Whether no cycle weighs more than period x its lag: longest paths with
/// edge lengths weight - period x lag settle (Bellman-Ford).
bool feasible(int nodes, llvm::ArrayRef<RatioEdge> edges, double period,
              int64_t &work) {
  std::vector<double> dist(nodes, 0.0);
  for (int round = 0; round <= nodes; ++round) {
    work += static_cast<int64_t>(edges.size());
    bool changed = false;
    for (const RatioEdge &e : edges) {
      double d = dist[e.from] + e.weight - period * static_cast<double>(e.lag);
      if (d > dist[e.to] + 1e-12 * (1 + std::abs(d))) {
        dist[e.to] = d;
        changed = true;
      }
    }
    if (!changed)
      return true;
  }
  return false;
}

} // namespace

double mllm::plan::detail::maxCycleRatioByBisection(
    int nodes, llvm::ArrayRef<RatioEdge> edges, double lo, int64_t &work) {
  double hi = 0;
  for (const RatioEdge &e : edges)
    hi += std::abs(e.weight);
  // A simple cycle spans at least one microbatch and weighs at most all.
  if (!feasible(nodes, edges, hi, work))
    return kInfinity;
  lo = std::min(std::max(lo, 0.0), hi);
  if (feasible(nodes, edges, lo, work))
    return lo;
  for (int step = 0; step < 60 && hi - lo > 1e-9 * hi; ++step) {
    double mid = 0.5 * (lo + hi);
    (feasible(nodes, edges, mid, work) ? hi : lo) = mid;
  }
  return hi;
}

double mllm::plan::detail::maxCycleRatio(int nodes,
                                         llvm::ArrayRef<RatioEdge> edges,
                                         int64_t &work) {
  Graph g(nodes, edges);
  if (g.out.empty())
    return -kInfinity;
  double tol = 1e-10 * std::max(g.totalWeight, 1e-300);

  // The policy: each live event's edge, first the heaviest.
  std::vector<int> policy(nodes, -1);
  for (int v = 0; v < nodes; ++v)
    for (int i = g.first[v]; i < g.first[v + 1]; ++i)
      if (policy[v] < 0 || edges[g.out[i]].weight > edges[policy[v]].weight)
        policy[v] = g.out[i];

  std::vector<double> ratio(nodes, -kInfinity), potential(nodes, 0.0);
  std::vector<int> state(nodes), walk;
  double best = -kInfinity;
  auto length = [&](const RatioEdge &e, double r) {
    return e.weight - r * static_cast<double>(e.lag);
  };
  // A generous bound (CycleRatio.h).
  for (int round = 0; round < 100 + nodes; ++round) {
    work += static_cast<int64_t>(g.out.size()) + nodes;
    // Value determination: the policy's cycles give their events' ratio;
    // potentials follow the policy back from a root on each cycle.
    std::fill(state.begin(), state.end(), 0); // 0 new, 1 on walk, 2 valued
    best = -kInfinity;
    for (int start = 0; start < nodes; ++start) {
      if (!g.live[start] || state[start])
        continue;
      walk.clear();
      int v = start;
      while (!state[v]) {
        state[v] = 1;
        walk.push_back(v);
        v = edges[policy[v]].to;
      }
      size_t root = walk.size(); // The new cycle's root's place, if any.
      if (state[v] == 1) {       // A new cycle, from v to the walk's end.
        root = std::find(walk.begin(), walk.end(), v) - walk.begin();
        double weight = 0;
        int64_t lag = 0;
        for (size_t i = root; i < walk.size(); ++i) {
          weight += edges[policy[walk[i]]].weight;
          lag += edges[policy[walk[i]]].lag;
        }
        if (lag <= 0)
          return kInfinity;
        ratio[v] = weight / static_cast<double>(lag);
        potential[v] = 0;
        state[v] = 2;
      }
      // Back along the walk, each event from the one its edge leads to.
      for (size_t i = walk.size(); i-- > 0;) {
        if (i == root)
          continue;
        const RatioEdge &e = edges[policy[walk[i]]];
        ratio[walk[i]] = ratio[e.to];
        potential[walk[i]] = length(e, ratio[e.to]) + potential[e.to];
        state[walk[i]] = 2;
      }
    }
    for (int v = 0; v < nodes; ++v)
      if (g.live[v])
        best = std::max(best, ratio[v]);

    // Improvement: first towards larger ratios; where none is, towards
    // larger potentials at the same ratio.
    bool changed = false;
    for (int v = 0; v < nodes; ++v) {
      if (!g.live[v])
        continue;
      double top = ratio[v] + tol;
      for (int i = g.first[v]; i < g.first[v + 1]; ++i) {
        const RatioEdge &e = edges[g.out[i]];
        if (ratio[e.to] > top) {
          top = ratio[e.to];
          policy[v] = g.out[i];
          changed = true;
        }
      }
    }
    if (changed)
      continue;
    for (int v = 0; v < nodes; ++v) {
      if (!g.live[v])
        continue;
      double top = potential[v] + tol;
      for (int i = g.first[v]; i < g.first[v + 1]; ++i) {
        const RatioEdge &e = edges[g.out[i]];
        // The same ratio: the same cycle's, copied. Nearly equal ratios of
        // two cycles mix potentials of different ratios, which can cycle.
        if (ratio[e.to] != ratio[v])
          continue;
        double through = length(e, ratio[v]) + potential[e.to];
        if (through > top) {
          top = through;
          policy[v] = g.out[i];
          changed = true;
        }
      }
    }
    if (!changed)
      return best;
  }
  return maxCycleRatioByBisection(nodes, edges, best, work);
}
