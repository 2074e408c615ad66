//===- Partition.cpp - pipeline stage partitioning ------------------------===//
//
// Min-max contiguous partitioning (cornstarch-brief §B.5) and the joint
// partitioning of colocated encoders. Allocate.cpp chooses the stage counts.
//
// Every stage sum the partitioners compare is a difference of the same
// prefix sums, P[i] - P[j], so comparisons between them are exact and the
// results deterministic. With non-negative weights those differences are
// monotone in i and j even in floating point (rounding is monotone), which
// the binary searches below rely on.
//
//===----------------------------------------------------------------------===//

#include "PartitionImpl.h"

#include "llvm/ADT/STLExtras.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <limits>
#include <tuple>

using namespace mllm::plan;

namespace mllm::plan::detail {

/// Per-stage sums of `weights` for a partition (differences of prefix sums).
std::vector<double> stageLoads(llvm::ArrayRef<double> weights,
                               llvm::ArrayRef<int64_t> sizes) {
  std::vector<double> p = prefixSums(weights), loads;
  int64_t at = 0;
  for (int64_t s : sizes) {
    loads.push_back(p[at + s] - p[at]);
    at += s;
  }
  return loads;
}

/// Exact joint partition of colocated encoders by bisection on the
/// bottleneck B with a reachability DP. After i of K stages encoder e's
/// boundary lies in [i, N_e - (K - i)]; write it as i + d_e, so every inner
/// level is the same grid of offset vectors d (mixed radix, span_e = N_e - K
/// + 1 values each). Going from boundary p (level i - 1) to q (level i) needs
/// p_e < q_e for all e, i.e. d(p) <= d(q) componentwise, and costs
/// bg[i - 1] + C(q) - G(p) with C(q) = G(q) = sum_e P_e[q_e]. So q is
/// reachable within B iff bg + C(q) - max{G(p) : p reachable, d(p) <= d(q)}
/// <= B, and that dominance maximum is a prefix maximum over the grid,
/// computed with one sweep per dimension: O(K x S x E) per bisection step
/// (S grid points) instead of O(K x S^2). The bisection runs over the bit
/// patterns of non-negative doubles between a lower bound and `upper` (an
/// achievable bottleneck), so it ends on the smallest feasible double.
class ColocatedSearch {
public:
  ColocatedSearch(llvm::ArrayRef<std::vector<double>> weights, int64_t k,
                  llvm::ArrayRef<double> bg)
      : e(weights.size()), k(k), bg(bg.begin(), bg.end()) {
    if (this->bg.empty())
      this->bg.assign(k, 0.0);
    s = 1;
    for (const std::vector<double> &w : weights) {
      p.push_back(prefixSums(w));
      n.push_back(static_cast<int64_t>(w.size()));
      span.push_back(n.back() - k + 1);
      stride.push_back(s);
      s *= span.back();
    }
    offsets.assign(s * e, 0);
    for (int64_t idx = 0; idx < s; ++idx)
      for (size_t a = 0, rest = idx; a < e; ++a) {
        offsets[idx * e + a] = static_cast<int64_t>(rest % span[a]);
        rest /= span[a];
      }
    // G of every grid point at every inner level.
    gl.assign(k, {});
    for (int64_t level = 1; level < k; ++level) {
      gl[level].resize(s);
      for (int64_t idx = 0; idx < s; ++idx) {
        double sum = 0;
        for (size_t a = 0; a < e; ++a)
          sum += p[a][level + offsets[idx * e + a]];
        gl[level][idx] = sum;
      }
    }
  }

  static double work(llvm::ArrayRef<std::vector<double>> weights, int64_t k) {
    double w = static_cast<double>(k * weights.size());
    for (const std::vector<double> &x : weights)
      w *= static_cast<double>(x.size()) - k + 1;
    return w;
  }

  /// The partition with the smallest bottleneck <= upper, or empty.
  std::vector<std::vector<int64_t>> solve(double upper) {
    double total = 0, lower = 0;
    for (int64_t i = 0; i < k; ++i) {
      total += bg[i];
      lower = std::max(lower, bg[i]);
    }
    for (const std::vector<double> &x : p)
      total += x.back();
    lower = std::max(lower, total / static_cast<double>(k));
    lower = std::min(lower, upper);
    uint64_t lo = bits(lower), hi = bits(upper);
    if (!feasible(upper))
      return {};
    std::vector<std::vector<int64_t>> best = reconstruct(hi);
    // The best path found is usually optimal, or a few ulps from it (paths
    // whose loads differ only in rounding): probes one ulp below it prove
    // that in a few steps instead of ~50 of bisection. A run of probes that
    // keep improving falls back to bisection.
    int probes = 0;
    while (lo < hi) {
      const bool probe = probes >= 0 && probes < 8;
      uint64_t mid = probe ? hi - 1 : lo + (hi - lo) / 2;
      if (feasible(fromBits(mid))) { // Jump to what the path really needs.
        best = reconstruct(hi);
        probes = probe ? probes + 1 : 0;
      } else if (probe) {
        break; // Nothing below hi: hi is the optimum.
      } else {
        lo = mid + 1;
        probes = -1; // Bisect until the next improvement.
      }
    }
    return best;
  }

private:
  static uint64_t bits(double x) {
    uint64_t b;
    std::memcpy(&b, &x, sizeof(b));
    return b; // Monotone for non-negative doubles.
  }
  static double fromBits(uint64_t b) {
    double x;
    std::memcpy(&x, &b, sizeof(x));
    return x;
  }

  /// G(q) = sum_e P_e[q_e] of grid point idx at level (1 <= level < k).
  double g(int64_t level, int64_t idx) const { return gl[level][idx]; }

  /// Fills reach[level] (levels 1..k-1) for bottleneck b; true if the end
  /// (every encoder done after k stages) is reachable.
  bool feasible(double b) {
    // Kept between calls: a search calls this ~50 times on the same grid.
    reach.resize(k);
    prefixMax.resize(s);
    for (int64_t level = 1; level < k; ++level) {
      std::vector<char> &r = reach[level];
      r.assign(s, 0);
      if (level == 1) {
        for (int64_t q = 0; q < s; ++q)
          r[q] = bg[0] + g(1, q) <= b;
      } else {
        // prefixMax[q] = max G over reachable points of the previous level with
        // offsets <= q's: a prefix maximum, one sweep per dimension.
        const std::vector<char> &prev = reach[level - 1];
        for (int64_t q = 0; q < s; ++q)
          prefixMax[q] = prev[q] ? g(level - 1, q) : -kInf;
        // Points with offset_a > 0 are, per block of stride * span, all
        // but the first `stride`: contiguous runs, no per-point test.
        for (size_t a = 0; a < e; ++a) {
          const int64_t step = stride[a], block = step * span[a];
          for (int64_t base = 0; base < s; base += block)
            for (int64_t q = base + step; q < base + block; ++q)
              prefixMax[q] = std::max(prefixMax[q], prefixMax[q - step]);
        }
        for (int64_t q = 0; q < s; ++q)
          r[q] = bg[level - 1] + g(level, q) - prefixMax[q] <= b;
      }
    }
    double end = bg[k - 1];
    for (const std::vector<double> &x : p)
      end += x.back();
    double most = -kInf;
    for (int64_t q = 0; q < s; ++q)
      if (reach[k - 1][q])
        most = std::max(most, g(k - 1, q));
    return end - most <= b;
  }

  /// Walks back from the end choosing, per level, the reachable predecessor
  /// with the largest G (the one the forward pass relied on; first in grid
  /// order on ties). Sets `hi` to the bits of the path's bottleneck, in the
  /// forward pass's arithmetic (so feasible() accepts it).
  std::vector<std::vector<int64_t>> reconstruct(uint64_t &hi) const {
    double need = 0, cost = bg[k - 1];
    for (const std::vector<double> &x : p)
      cost += x.back(); // C of the end plus its stage's background.
    std::vector<std::vector<int64_t>> sizes(e, std::vector<int64_t>(k, 0));
    std::vector<int64_t> at(n); // Boundary positions at the current level.
    int64_t cur = -1;           // Grid index at the current level (k: end).
    for (int64_t level = k; level >= 2; --level) {
      int64_t arg = -1;
      double most = -kInf;
      for (int64_t q = 0; q < s; ++q) {
        if (!reach[level - 1][q])
          continue;
        bool below = true;
        for (size_t a = 0; a < e && below && cur >= 0; ++a)
          below = offsets[q * e + a] <= offsets[cur * e + a];
        double v = below ? g(level - 1, q) : -kInf;
        if (v > most) {
          most = v;
          arg = q;
        }
      }
      assert(arg >= 0 && "colocated search lost its path");
      need = std::max(need, cost - most);
      cost = bg[level - 2] + most;
      for (size_t a = 0; a < e; ++a) {
        int64_t pos = level - 1 + offsets[arg * e + a];
        sizes[a][level - 1] = at[a] - pos;
        at[a] = pos;
      }
      cur = arg;
    }
    for (size_t a = 0; a < e; ++a)
      sizes[a][0] = at[a];
    need = std::max(need, cost);
    hi = std::min(hi, bits(need));
    return sizes;
  }

  size_t e;
  int64_t k, s = 1;
  std::vector<double> bg;
  std::vector<std::vector<double>> p;
  std::vector<int64_t> n, span, stride, offsets;
  std::vector<std::vector<char>> reach;
  std::vector<double> prefixMax;
  std::vector<std::vector<double>> gl;
};

/// Per-stage loads of colocated encoders (sum over encoders) plus `bg`.
std::vector<double> colocatedLoads(llvm::ArrayRef<std::vector<double>> weights,
                                   llvm::ArrayRef<std::vector<int64_t>> sizes,
                                   int64_t k, llvm::ArrayRef<double> bg) {
  std::vector<double> loads(k, 0.0);
  if (!bg.empty())
    for (int64_t i = 0; i < k; ++i)
      loads[i] = bg[i];
  for (size_t a = 0; a < weights.size(); ++a) {
    std::vector<double> l = stageLoads(weights[a], sizes[a]);
    for (int64_t i = 0; i < k; ++i)
      loads[i] += l[i];
  }
  return loads;
}

double maxOf(llvm::ArrayRef<double> v) {
  double m = 0;
  for (double x : v)
    m = std::max(m, x);
  return m;
}

/// Coordinate descent: re-partition one encoder at a time exactly against
/// the others' (and `bg`'s) per-stage loads; keep strict improvements only.
std::vector<std::vector<int64_t>>
colocatedHeuristic(llvm::ArrayRef<std::vector<double>> weights, int64_t k,
                   llvm::ArrayRef<double> bg) {
  size_t e = weights.size();
  std::vector<std::vector<int64_t>> sizes;
  for (size_t a = 0; a < e; ++a)
    sizes.push_back(MinMaxTable(weights[a], k).reconstruct(k));
  double best = maxOf(colocatedLoads(weights, sizes, k, bg));
  for (int round = 0; round < 64; ++round) {
    bool improved = false;
    for (size_t a = 0; a < e; ++a) {
      std::vector<double> others(k, 0.0);
      if (!bg.empty())
        others.assign(bg.begin(), bg.begin() + k);
      for (size_t b = 0; b < e; ++b) {
        if (b == a)
          continue;
        std::vector<double> l = stageLoads(weights[b], sizes[b]);
        for (int64_t i = 0; i < k; ++i)
          others[i] += l[i];
      }
      MinMaxTable t(weights[a], k, others);
      std::vector<int64_t> cand = t.reconstruct(k);
      std::vector<std::vector<int64_t>> trial = sizes;
      trial[a] = cand;
      double v = maxOf(colocatedLoads(weights, trial, k, bg));
      if (v < best) {
        best = v;
        sizes = std::move(trial);
        improved = true;
      }
    }
    if (!improved)
      break;
  }
  return sizes;
}

std::vector<std::vector<int64_t>>
colocatedImpl(llvm::ArrayRef<std::vector<double>> weights, int64_t k,
              llvm::ArrayRef<double> bg, double exactWorkLimit) {
  if (weights.empty())
    return {};
  if (weights.size() == 1) // Exact: one chain against a fixed background.
    return {MinMaxTable(weights[0], k, bg).reconstruct(k)};
  if (k == 1) {
    std::vector<std::vector<int64_t>> one;
    for (const std::vector<double> &w : weights)
      one.push_back({static_cast<int64_t>(w.size())});
    return one;
  }
  // The heuristic's answer bounds the search and is kept if rounding makes
  // the search's partition no better.
  std::vector<std::vector<int64_t>> heur = colocatedHeuristic(weights, k, bg);
  if (ColocatedSearch::work(weights, k) > exactWorkLimit)
    return heur;
  double heurMax = maxOf(colocatedLoads(weights, heur, k, bg));
  std::vector<std::vector<int64_t>> exact =
      ColocatedSearch(weights, k, bg).solve(heurMax);
  if (exact.empty() || maxOf(colocatedLoads(weights, exact, k, bg)) > heurMax)
    return heur;
  return exact;
}

} // namespace mllm::plan::detail

using namespace mllm::plan::detail;

std::vector<int64_t> mllm::plan::partitionMinMax(llvm::ArrayRef<double> weights,
                                                 int64_t stages) {
  return MinMaxTable(weights, stages).reconstruct(stages);
}

std::vector<int64_t> mllm::plan::partitionMinMax(
    llvm::ArrayRef<double> weights, int64_t stages,
    llvm::function_ref<bool(int64_t first, int64_t end)> fits,
    double exactWorkLimit) {
  MinMaxTable table(weights, stages, {}, fits, exactWorkLimit);
  if (!table.feasible(stages))
    return {};
  return table.reconstruct(stages);
}

std::vector<double>
mllm::plan::minMaxBottlenecks(llvm::ArrayRef<double> weights,
                              int64_t maxStages) {
  MinMaxTable t(weights, maxStages);
  std::vector<double> out;
  for (int64_t k = 1; k <= maxStages; ++k)
    out.push_back(t.bottleneck(k));
  return out;
}

std::vector<std::vector<int64_t>>
mllm::plan::partitionColocated(llvm::ArrayRef<std::vector<double>> weights,
                               int64_t stages, double exactWorkLimit) {
  return colocatedImpl(weights, stages, {}, exactWorkLimit);
}
