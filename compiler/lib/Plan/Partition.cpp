//===- Partition.cpp - pipeline stage partitioning ------------------------===//
//
// Min-max contiguous partitioning (cornstarch-brief §B.5), joint partitioning
// of colocated encoders, the multimodal 1F1B iteration estimate and the
// allocation of a GPU budget between encoders and the LLM.
//
// Every stage sum the partitioners compare is a difference of the same
// prefix sums, P[i] - P[j], so comparisons between them are exact and the
// results deterministic. With non-negative weights those differences are
// monotone in i and j even in floating point (rounding is monotone), which
// the binary searches below rely on.
//
//===----------------------------------------------------------------------===//

#include "mllm/Plan/Partition.h"

#include "llvm/ADT/STLExtras.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <limits>
#include <tuple>

using namespace mllm::plan;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
/// planPipeline's exactWorkLimit for colocated encoders.
constexpr double kColocatedExactWork = 2e6;

std::vector<double> prefixSums(llvm::ArrayRef<double> w) {
  std::vector<double> p(w.size() + 1, 0.0);
  for (size_t i = 0; i < w.size(); ++i)
    p[i + 1] = p[i] + w[i];
  return p;
}

/// The min-max DP of §B.5 over one chain, optionally with a per-stage
/// background load added to each stage (`bg[k]`, the other colocated
/// encoders' share of stage k). x[k][i] = best bottleneck of layers [0, i)
/// in stages 0..k (each >= 1 layer).
///
/// x[k][i] = min_{j in [k, i)} max(x[k-1][j], bg[k] + W(j, i)): the first
/// term is non-decreasing in j and the second non-increasing, so the
/// minimum sits where they cross, found by binary search.
class MinMaxTable {
public:
  MinMaxTable(llvm::ArrayRef<double> weights, int64_t maxStages,
              llvm::ArrayRef<double> background = {})
      : p(prefixSums(weights)), bg(background.begin(), background.end()),
        n(static_cast<int64_t>(weights.size())), maxK(maxStages) {
    assert(maxK >= 1 && maxK <= n && "need 1 <= stages <= layers");
    if (bg.empty())
      bg.assign(maxK, 0.0);
    assert(static_cast<int64_t>(bg.size()) >= maxK);
    x.assign(maxK, std::vector<double>(n + 1, kInf));
    for (int64_t i = 1; i <= n; ++i)
      x[0][i] = bg[0] + w(0, i);
    for (int64_t k = 1; k < maxK; ++k) {
      const std::vector<double> &prev = x[k - 1];
      for (int64_t i = k + 1; i <= n; ++i) {
        // Smallest j in [k, i) with prev[j] >= bg[k] + W(j, i).
        int64_t lo = k, hi = i;
        while (lo < hi) {
          int64_t mid = lo + (hi - lo) / 2;
          if (prev[mid] >= bg[k] + w(mid, i))
            hi = mid;
          else
            lo = mid + 1;
        }
        double best = kInf;
        if (lo < i)
          best = prev[lo];
        if (lo > k)
          best = std::min(best, bg[k] + w(lo - 1, i));
        x[k][i] = best;
      }
    }
  }

  double w(int64_t j, int64_t i) const { return p[i] - p[j]; }
  double bottleneck(int64_t stages) const { return x[stages - 1][n]; }

  /// The partition into `stages` stages with the optimal bottleneck whose
  /// stage sizes, read from the last stage, are lexicographically smallest:
  /// each stage (from the last) is the shortest one whose remaining prefix
  /// can still meet the bottleneck.
  std::vector<int64_t> reconstruct(int64_t stages) const {
    double b = bottleneck(stages);
    std::vector<int64_t> sizes(stages, 0);
    int64_t end = n;
    for (int64_t k = stages - 1; k >= 1; --k) {
      int64_t chosen = -1;
      for (int64_t j = end - 1; j >= k; --j) {
        if (bg[k] + w(j, end) > b)
          break; // Longer last stages only get heavier.
        if (x[k - 1][j] <= b) {
          chosen = j;
          break;
        }
      }
      assert(chosen >= 0 && "DP table inconsistent");
      sizes[k] = end - chosen;
      end = chosen;
    }
    sizes[0] = end;
    return sizes;
  }

private:
  std::vector<double> p, bg;
  int64_t n, maxK;
  std::vector<std::vector<double>> x;
};

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
    while (lo < hi) {
      uint64_t mid = lo + (hi - lo) / 2;
      if (feasible(fromBits(mid))) // Jump to what the path really needs.
        best = reconstruct(hi);
      else
        lo = mid + 1;
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
    reach.assign(k, {});
    std::vector<double> best(s);
    for (int64_t level = 1; level < k; ++level) {
      std::vector<char> &r = reach[level];
      r.assign(s, 0);
      if (level == 1) {
        for (int64_t q = 0; q < s; ++q)
          r[q] = bg[0] + g(1, q) <= b;
      } else {
        // best[q] = max G over reachable points of the previous level with
        // offsets <= q's: a prefix maximum, one sweep per dimension.
        const std::vector<char> &prev = reach[level - 1];
        for (int64_t q = 0; q < s; ++q)
          best[q] = prev[q] ? g(level - 1, q) : -kInf;
        for (size_t a = 0; a < e; ++a)
          for (int64_t q = 0; q < s; ++q)
            if (offsets[q * e + a] > 0)
              best[q] = std::max(best[q], best[q - stride[a]]);
        for (int64_t q = 0; q < s; ++q)
          r[q] = bg[level - 1] + g(level, q) - best[q] <= b;
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

std::vector<int64_t> uniformSizes(int64_t n, int64_t k) {
  std::vector<int64_t> sizes(k, n / k);
  for (int64_t i = 0; i < n % k; ++i)
    ++sizes[i];
  return sizes;
}

/// What planPipeline knows about one module.
struct ModuleInfo {
  int64_t n = 0, lo = 1, hi = 1, gpus = 1;
  std::vector<double> balance; ///< Per-layer balance fwd + bwd.
  bool useExplicit = false, useUniform = false;
  /// Bottleneck of the balance times for k = lo..hi (element k - lo).
  std::vector<double> bottleneck;
  std::optional<MinMaxTable> table;

  std::vector<int64_t> sizes(const PipelineModule &m, int64_t k) const {
    if (useExplicit)
      return m.explicitStages;
    if (useUniform)
      return uniformSizes(n, k);
    if (table)
      return table->reconstruct(k);
    return MinMaxTable(balance, k).reconstruct(k);
  }
};

std::vector<StagePlan> stagePlans(const PipelineModule &m,
                                  llvm::ArrayRef<LayerTime> times,
                                  llvm::ArrayRef<int64_t> sizes) {
  std::vector<StagePlan> out;
  int64_t at = 0;
  for (int64_t s : sizes) {
    StagePlan sp;
    sp.module = m.name;
    sp.firstLayer = at;
    sp.numLayers = s;
    for (int64_t l = at; l < at + s; ++l) {
      sp.fwd += times[l].fwd;
      sp.bwd += times[l].bwd;
    }
    out.push_back(std::move(sp));
    at += s;
  }
  return out;
}

} // namespace

std::vector<int64_t> mllm::plan::partitionMinMax(llvm::ArrayRef<double> weights,
                                                 int64_t stages) {
  return MinMaxTable(weights, stages).reconstruct(stages);
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

double mllm::plan::estimateIterationTime(
    const std::vector<std::vector<StagePlan>> &paths, int64_t microbatches) {
  double bottleneck = 0, longest = 0;
  bool any = false;
  for (const std::vector<StagePlan> &path : paths) {
    double sum = 0;
    for (const StagePlan &s : path) {
      double t = s.fwd + s.bwd;
      sum += t;
      bottleneck = std::max(bottleneck, t);
      any = true;
    }
    longest = std::max(longest, sum);
  }
  if (!any)
    return 0;
  return longest - bottleneck + static_cast<double>(microbatches) * bottleneck;
}

std::optional<PipelinePlan>
mllm::plan::planPipeline(const std::vector<PipelineModule> &modules,
                         Layout layout, Objective objective, int64_t gpuBudget,
                         int64_t microbatches) {
  if (modules.empty() || microbatches < 1)
    return std::nullopt;
  int64_t llm = -1;
  std::vector<size_t> encoders;
  for (size_t i = 0; i < modules.size(); ++i) {
    if (modules[i].isLLM) {
      if (llm >= 0)
        return std::nullopt; // At most one LLM.
      llm = static_cast<int64_t>(i);
    } else {
      encoders.push_back(i);
    }
  }

  // Per-module facts: balance weights, allowed stage counts.
  std::vector<ModuleInfo> info(modules.size());
  for (size_t i = 0; i < modules.size(); ++i) {
    const PipelineModule &m = modules[i];
    ModuleInfo &mi = info[i];
    mi.n = static_cast<int64_t>(m.layers.size());
    mi.gpus = m.gpusPerStage;
    if (mi.n == 0 || mi.gpus < 1)
      return std::nullopt;
    const std::vector<LayerTime> &bal =
        m.balanceLayers.empty() ? m.layers : m.balanceLayers;
    if (bal.size() != m.layers.size())
      return std::nullopt;
    for (const LayerTime &t : bal)
      mi.balance.push_back(t.total());
    mi.lo = 1;
    mi.hi = mi.n;
    if (m.stages) {
      if (*m.stages < 1 || *m.stages > mi.n)
        return std::nullopt;
      mi.lo = mi.hi = *m.stages;
    }
    if (objective == Objective::Explicit && !m.explicitStages.empty()) {
      int64_t k = static_cast<int64_t>(m.explicitStages.size()), sum = 0;
      for (int64_t s : m.explicitStages) {
        if (s < 1)
          return std::nullopt;
        sum += s;
      }
      if (sum != mi.n || (m.stages && *m.stages != k))
        return std::nullopt;
      mi.lo = mi.hi = k;
      mi.useExplicit = true;
    }
    mi.useUniform = objective == Objective::Uniform;
  }

  // Bottlenecks of one module (not colocated) for every allowed k.
  auto fillBottlenecks = [&](size_t i) {
    ModuleInfo &mi = info[i];
    const PipelineModule &m = modules[i];
    mi.bottleneck.clear();
    if (!mi.useExplicit && !mi.useUniform) {
      mi.table.emplace(mi.balance, mi.hi);
      for (int64_t k = mi.lo; k <= mi.hi; ++k)
        mi.bottleneck.push_back(mi.table->bottleneck(k));
      return;
    }
    for (int64_t k = mi.lo; k <= mi.hi; ++k)
      mi.bottleneck.push_back(maxOf(stageLoads(mi.balance, mi.sizes(m, k))));
  };

  // The choice: stage count per module (colocated encoders share one).
  std::vector<int64_t> chosen(modules.size(), 0);
  std::vector<std::vector<int64_t>> colocatedSizes; // Per encoder, if any.
  bool pipelined = microbatches > 1;

  if (layout == Layout::EncodersParallel || encoders.empty()) {
    for (size_t i = 0; i < modules.size(); ++i)
      fillBottlenecks(i);
    auto minK = [&](size_t i, double target) -> int64_t {
      const ModuleInfo &mi = info[i];
      for (int64_t k = mi.lo; k <= mi.hi; ++k)
        if (mi.bottleneck[k - mi.lo] <= target)
          return k;
      return -1;
    };
    // For a bottleneck target the fewest GPUs come from each module's
    // smallest stage count meeting it; that assignment is unique, so the
    // other tie-breaks never fire. Sweep targets upwards.
    std::vector<double> targets;
    if (pipelined) {
      for (const ModuleInfo &mi : info)
        targets.insert(targets.end(), mi.bottleneck.begin(),
                       mi.bottleneck.end());
      llvm::sort(targets);
      targets.erase(std::unique(targets.begin(), targets.end()), targets.end());
    } else {
      targets.push_back(kInf); // Everything ties: fewest GPUs.
    }
    bool found = false;
    for (double target : targets) {
      int64_t gpus = 0;
      bool ok = true;
      for (size_t i = 0; i < modules.size() && ok; ++i) {
        int64_t k = minK(i, target);
        if (k < 0) {
          ok = false;
        } else {
          gpus += k * info[i].gpus;
          chosen[i] = k;
        }
      }
      if (ok && gpus <= gpuBudget) {
        found = true;
        break;
      }
    }
    if (!found)
      return std::nullopt;
  } else {
    // Encoders colocated: shared K_enc, equal gpusPerStage.
    int64_t gEnc = info[encoders[0]].gpus, loEnc = 1,
            hiEnc = std::numeric_limits<int64_t>::max();
    for (size_t e : encoders) {
      if (info[e].gpus != gEnc)
        return std::nullopt;
      loEnc = std::max(loEnc, info[e].lo);
      hiEnc = std::min(hiEnc, info[e].hi);
    }
    if (loEnc > hiEnc)
      return std::nullopt;
    int64_t llmLo = 0, llmHi = 0, gLlm = 0;
    if (llm >= 0) {
      fillBottlenecks(llm);
      llmLo = info[llm].lo;
      llmHi = info[llm].hi;
      gLlm = info[llm].gpus;
    }
    // Encoders partitioned jointly (MinMax) or individually (Uniform,
    // Explicit); under Explicit the MinMax fallbacks balance against the
    // explicit encoders' loads.
    std::vector<size_t> joint, fixed;
    for (size_t e : encoders)
      (info[e].useExplicit || info[e].useUniform ? fixed : joint).push_back(e);
    std::vector<std::vector<double>> jointWeights;
    for (size_t e : joint)
      jointWeights.push_back(info[e].balance);

    using Key = std::tuple<double, int64_t, int64_t, int64_t>;
    std::optional<Key> bestKey;
    for (int64_t kEnc = loEnc; kEnc <= hiEnc; ++kEnc) {
      int64_t encGpus = kEnc * gEnc;
      if (encGpus + llmLo * gLlm > gpuBudget)
        break;
      std::vector<double> bg(kEnc, 0.0);
      std::vector<std::vector<int64_t>> sizes(encoders.size());
      for (size_t a = 0; a < encoders.size(); ++a) {
        size_t e = encoders[a];
        if (!info[e].useExplicit && !info[e].useUniform)
          continue;
        sizes[a] = info[e].sizes(modules[e], kEnc);
        std::vector<double> l = stageLoads(info[e].balance, sizes[a]);
        for (int64_t i = 0; i < kEnc; ++i)
          bg[i] += l[i];
      }
      std::vector<std::vector<int64_t>> js =
          colocatedImpl(jointWeights, kEnc, bg, kColocatedExactWork);
      for (size_t a = 0, j = 0; a < encoders.size(); ++a)
        if (sizes[a].empty())
          sizes[a] = js[j++];
      std::vector<std::vector<double>> allWeights;
      for (size_t e : encoders)
        allWeights.push_back(info[e].balance);
      double encB = maxOf(colocatedLoads(allWeights, sizes, kEnc, {}));
      auto consider = [&](int64_t kLlm, double llmB) {
        int64_t gpus = encGpus + kLlm * gLlm;
        if (gpus > gpuBudget)
          return;
        double b = pipelined ? std::max(encB, llmB) : 0.0;
        Key key{b, gpus, -kLlm, kEnc};
        if (!bestKey || key < *bestKey) {
          bestKey = key;
          colocatedSizes = sizes;
          for (size_t e : encoders)
            chosen[e] = kEnc;
          if (llm >= 0)
            chosen[llm] = kLlm;
        }
      };
      if (llm < 0)
        consider(0, 0.0);
      for (int64_t k = llmLo; llm >= 0 && k <= llmHi; ++k)
        consider(k, info[llm].bottleneck[k - llmLo]);
    }
    if (!bestKey)
      return std::nullopt;
  }

  // Build the plan: per-module stages (real and balance times), paths.
  PipelinePlan plan;
  std::vector<std::vector<StagePlan>> real(modules.size()),
      balanced(modules.size());
  for (size_t i = 0; i < modules.size(); ++i) {
    const PipelineModule &m = modules[i];
    std::vector<int64_t> sizes;
    if (layout == Layout::EncodersColocated && !m.isLLM) {
      size_t a = llvm::find(encoders, i) - encoders.begin();
      sizes = colocatedSizes[a];
    } else {
      sizes = info[i].sizes(m, chosen[i]);
    }
    real[i] = stagePlans(m, m.layers, sizes);
    balanced[i] = stagePlans(
        m, m.balanceLayers.empty() ? m.layers : m.balanceLayers, sizes);
    plan.stages.insert(plan.stages.end(), real[i].begin(), real[i].end());
    plan.stagesPerModule.push_back(chosen[i]);
  }

  auto makePaths = [&](const std::vector<std::vector<StagePlan>> &per) {
    std::vector<std::vector<StagePlan>> paths;
    std::vector<StagePlan> tail;
    if (llm >= 0)
      tail = per[llm];
    if (encoders.empty()) {
      paths.push_back(tail);
    } else if (layout == Layout::EncodersParallel) {
      for (size_t e : encoders) {
        std::vector<StagePlan> path = per[e];
        path.insert(path.end(), tail.begin(), tail.end());
        paths.push_back(std::move(path));
      }
    } else {
      std::vector<StagePlan> path;
      for (int64_t s = 0; s < chosen[encoders[0]]; ++s) {
        StagePlan merged;
        for (size_t e : encoders) {
          const StagePlan &sp = per[e][s];
          merged.module += (merged.module.empty() ? "" : "+") + sp.module;
          merged.numLayers += sp.numLayers;
          merged.fwd += sp.fwd;
          merged.bwd += sp.bwd;
        }
        path.push_back(std::move(merged));
      }
      path.insert(path.end(), tail.begin(), tail.end());
      paths.push_back(std::move(path));
    }
    return paths;
  };

  plan.paths = makePaths(real);
  for (const std::vector<StagePlan> &path : plan.paths)
    for (const StagePlan &s : path)
      plan.bottleneck = std::max(plan.bottleneck, s.fwd + s.bwd);
  plan.iterationTime = estimateIterationTime(plan.paths, microbatches);
  plan.balanceIterationTime =
      estimateIterationTime(makePaths(balanced), microbatches);
  if (layout == Layout::EncodersColocated && !encoders.empty()) {
    plan.gpus = chosen[encoders[0]] * info[encoders[0]].gpus;
    if (llm >= 0)
      plan.gpus += chosen[llm] * info[llm].gpus;
  } else {
    for (size_t i = 0; i < modules.size(); ++i)
      plan.gpus += chosen[i] * info[i].gpus;
  }
  return plan;
}
