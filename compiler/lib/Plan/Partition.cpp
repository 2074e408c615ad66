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
/// achievable bottleneck), so it ends on the smallest feasible double; a
/// feasible step lowers the upper end to the need of the path found, an
/// infeasible one raises the lower end to the least need it refused.
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
      assert(span.back() >= 1 && "an encoder has fewer layers than stages");
      stride.push_back(s);
      s *= span.back();
    }
    end = this->bg[k - 1];
    for (const std::vector<double> &x : p)
      end += x.back();
    // G of every grid point at every inner level, summed over the encoders
    // in order; encoder a's term is constant over runs of stride[a] points.
    gl.assign(k, {});
    for (int64_t level = 1; level < k; ++level) {
      std::vector<double> &g = gl[level];
      g.assign(s, 0.0);
      for (size_t a = 0; a < e; ++a) {
        const double *pa = p[a].data() + level;
        for (int64_t at = 0; at < s;)
          for (int64_t d = 0; d < span[a]; ++d, at += stride[a])
            addTo(g.data() + at, pa[d], stride[a]);
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
    // The best path found is often optimal, or a few ulps from it (paths
    // whose loads differ only in rounding): a probe one ulp below it
    // proves that in one step instead of ~50 of bisection. After a probe
    // that improves, bisection takes over until the next improvement.
    bool probe = true;
    while (lo < hi) {
      uint64_t mid = probe ? hi - 1 : lo + (hi - lo) / 2;
      if (feasible(fromBits(mid))) { // Jump to what the path really needs.
        best = reconstruct(hi);
        probe = !probe;
      } else if (probe) {
        break; // Nothing below hi: hi is the optimum.
      } else { // Nothing changes below the least need feasible() refused.
        lo = std::max(mid + 1, bits(refused));
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

  /// Whether grid point q of `level` was reached in the last feasible().
  bool reached(int64_t level, int64_t q) const {
    return need[level][q] <= limit;
  }

  /// Fills need[level] (levels 1..k-1) for bottleneck b; true if the end
  /// (every encoder done after k stages) is reachable. Written as flat
  /// passes over the grid that the compiler vectorizes; the hot ones (the
  /// prefix maximum along every dimension but the first) touch contiguous
  /// runs of `stride` points.
  bool feasible(double b) {
    limit = b;
    // Kept between calls: a search calls this tens of times on one grid.
    need.resize(k);
    prefixMax.resize(s);
    double *pm = prefixMax.data();
    for (int64_t level = 1; level < k; ++level) {
      std::vector<double> &nd = need[level];
      nd.resize(s);
      const double *g = gl[level].data(), base = bg[level - 1];
      if (level == 1) {
        for (int64_t q = 0; q < s; ++q)
          nd[q] = base + g[q];
        continue;
      }
      // pm[q] = max G over reached points of the previous level with
      // offsets <= q's: a prefix maximum, one sweep per dimension.
      const double *prevNeed = need[level - 1].data(),
                   *prevG = gl[level - 1].data();
      for (int64_t q = 0; q < s; ++q) {
        const double gq = prevG[q]; // Loaded either way: a select.
        pm[q] = prevNeed[q] <= b ? gq : -kInf;
      }
      runningMax(pm);
      for (size_t a = 1; a < e; ++a) {
        const int64_t step = stride[a], block = step * span[a];
        for (int64_t at = 0; at < s; at += block)
          for (int64_t row = at + step; row < at + block; row += step)
            maxInto(pm + row, pm + row - step, step);
      }
      for (int64_t q = 0; q < s; ++q)
        nd[q] = base + g[q] - pm[q];
    }
    double most = -kInf;
    for (int64_t q = 0; q < s; ++q)
      if (reached(k - 1, q))
        most = std::max(most, gl[k - 1][q]);
    const double endNeed = end - most;
    if (endNeed <= b)
      return true;
    // Nothing changes below the least need refused (every need above is
    // computed from the same reached sets): bisection may skip to it.
    double least = endNeed; // A local: stores to a member would alias.
    for (int64_t level = 1; level < k; ++level)
      for (double x : need[level])
        if (x > b)
          least = std::min(least, x);
    refused = least;
    return false;
  }

  /// The prefix maximum along the first dimension (stride 1): a running
  /// maximum per run of span[0] points, four runs at a time so that their
  /// chains of dependent maxima overlap.
  void runningMax(double *pm) const {
    const int64_t len = span[0], runs = s / len;
    int64_t r = 0;
    for (; r + 4 <= runs; r += 4) {
      double *x = pm + r * len, *y = x + len, *z = y + len, *w = z + len;
      double mx = x[0], my = y[0], mz = z[0], mw = w[0];
      for (int64_t t = 1; t < len; ++t) {
        x[t] = mx = std::max(mx, x[t]);
        y[t] = my = std::max(my, y[t]);
        z[t] = mz = std::max(mz, z[t]);
        w[t] = mw = std::max(mw, w[t]);
      }
    }
    for (; r < runs; ++r) {
      double *x = pm + r * len, mx = x[0];
      for (int64_t t = 1; t < len; ++t)
        x[t] = mx = std::max(mx, x[t]);
    }
  }

  static void addTo(double *x, double v, int64_t n) {
    for (int64_t t = 0; t < n; ++t)
      x[t] += v;
  }

  /// dst[t] = max(dst[t], src[t]) for t < n; the ranges do not overlap.
  static void maxInto(double *__restrict dst, const double *__restrict src,
                      int64_t n) {
    for (int64_t t = 0; t < n; ++t)
      dst[t] = std::max(dst[t], src[t]);
  }

  /// Walks back from the end choosing, per level, the reached predecessor
  /// with the largest G among those the current point dominates (the one
  /// the forward pass relied on; first in grid order on ties). Sets `hi`
  /// to the bits of the path's bottleneck, in the forward pass's
  /// arithmetic (so feasible() accepts it).
  std::vector<std::vector<int64_t>> reconstruct(uint64_t &hi) const {
    double needed = 0, cost = end; // C of the end plus its stage's background.
    std::vector<std::vector<int64_t>> sizes(e, std::vector<int64_t>(k, 0));
    std::vector<int64_t> at(n); // Boundary positions at the current level.
    std::vector<int64_t> box(e), d(e);
    for (size_t a = 0; a < e; ++a)
      box[a] = span[a] - 1; // The end dominates the whole grid.
    for (int64_t level = k; level >= 2; --level) {
      // The points of the box [0, box] in grid order: runs along the first
      // dimension, the others counted like an odometer.
      int64_t arg = -1, q = 0;
      double most = -kInf;
      std::fill(d.begin(), d.end(), 0);
      for (;;) {
        for (int64_t t = 0; t <= box[0]; ++t)
          if (reached(level - 1, q + t) && gl[level - 1][q + t] > most) {
            most = gl[level - 1][q + t];
            arg = q + t;
          }
        size_t a = 1;
        for (; a < e; ++a) {
          if (d[a] < box[a]) {
            ++d[a];
            q += stride[a];
            break;
          }
          q -= d[a] * stride[a];
          d[a] = 0;
        }
        if (a == e)
          break;
      }
      assert(arg >= 0 && "colocated search lost its path");
      needed = std::max(needed, cost - most);
      cost = bg[level - 2] + most;
      for (size_t a = 0; a < e; ++a) {
        box[a] = arg / stride[a] % span[a];
        int64_t pos = level - 1 + box[a];
        sizes[a][level - 1] = at[a] - pos;
        at[a] = pos;
      }
    }
    for (size_t a = 0; a < e; ++a)
      sizes[a][0] = at[a];
    needed = std::max(needed, cost);
    hi = std::min(hi, bits(needed));
    return sizes;
  }

  size_t e;
  int64_t k, s = 1;
  std::vector<double> bg;
  std::vector<std::vector<double>> p;
  std::vector<int64_t> n, span, stride;
  /// G(q) = sum_e P_e[q_e] of every grid point at every inner level.
  std::vector<std::vector<double>> gl;
  /// C of the end (every encoder done) plus the last stage's background.
  double end = 0;
  /// need[level][q]: the cost of the last stage into q from the best
  /// predecessor reached in the last feasible() (infinite: none); q was
  /// reached iff it is at most `limit`, that call's bottleneck.
  std::vector<std::vector<double>> need;
  double limit = 0;
  std::vector<double> prefixMax;
  double refused = kInf; ///< The least need above the bottleneck refused.
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
