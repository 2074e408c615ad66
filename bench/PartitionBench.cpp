//===- PartitionBench.cpp - pipeline partitioning and allocation figures --===//
//
// Prints markdown tables:
//   1. planPipeline time and result for three encoders + an 80-layer LLM,
//      both encoder layouts, GPU budgets 32..256 (one GPU per stage);
//   2. the same model planned frozen-aware vs frozen-unaware (balancing
//      all-trainable times), charged the real times;
//   3. partitionColocated for the three encoders: exact search vs the
//      coordinate-descent heuristic, bottleneck and time per stage count;
//   4. partitionMinMax time vs layers x stages, and minMaxBottlenecks (all
//      stage counts up to K from one table);
//   5. cuts among those whose stages fit a GPU: planPipeline with a memory
//      model at several capacities, partitionMinMax with a stage predicate.
// Usage: mllm-bench-partition [--quick]
//
//===----------------------------------------------------------------------===//

#include "mllm/Plan/Memory.h"
#include "mllm/Plan/Partition.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>

using namespace mllm::plan;

namespace {

double nowMs() {
  using Clock = std::chrono::steady_clock;
  return std::chrono::duration<double, std::milli>(
             Clock::now().time_since_epoch())
      .count();
}

/// Median time of fn() in ms, over at least 5 runs and about 200 ms.
template <typename Fn>
double timeMs(Fn fn) {
  std::vector<double> t;
  double start = nowMs();
  while (t.size() < 5 || (nowMs() - start < 200 && t.size() < 1000)) {
    double s = nowMs();
    fn();
    t.push_back(nowMs() - s);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

PipelineModule module(const char *name, int64_t n, LayerTime t, bool llm,
                      uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> jitter(0.9, 1.1);
  PipelineModule m;
  m.name = name;
  m.isLLM = llm;
  for (int64_t i = 0; i < n; ++i)
    m.layers.push_back({t.fwd * jitter(rng), t.bwd * jitter(rng)});
  return m;
}

/// Three encoders (two frozen) and an 80-layer trainable LLM; seconds per
/// microbatch per layer, in the spirit of brief §E.3 (frozen backward ~0,
/// trainable backward ~2x forward).
std::vector<PipelineModule> model(bool frozenAware) {
  std::vector<PipelineModule> mods = {
      module("vision", 32, {0.040, 0.0005}, false, 1),
      module("audio", 24, {0.030, 0.060}, false, 2),
      module("video", 12, {0.050, 0.0005}, false, 3),
      module("llm", 80, {0.030, 0.060}, true, 4)};
  if (!frozenAware)
    for (PipelineModule &m : mods)
      for (const LayerTime &t : m.layers)
        m.balanceLayers.push_back({t.fwd, 2 * t.fwd});
  return mods;
}

std::string counts(const PipelinePlan &p) {
  std::string s;
  for (int64_t k : p.stagesPerModule)
    s += (s.empty() ? "" : "/") + std::to_string(k);
  return s;
}

const char *layoutName(Layout l) {
  return l == Layout::Parallel ? "parallel" : "colocated";
}

} // namespace

int main(int argc, char **argv) {
  bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  const int64_t micro = 64;
  std::vector<int64_t> budgets = {32, 48, 64, 96, 128, 192, 256};
  if (quick)
    budgets = {32, 128};

  std::printf("## planPipeline: vision(32, frozen) + audio(24) + "
              "video(12, frozen) + llm(80), %lld microbatches\n\n",
              static_cast<long long>(micro));
  std::printf("| layout | budget | time (ms) | stages v/a/vid/llm | GPUs | "
              "bottleneck (s) | iteration (s) |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  for (Layout layout : {Layout::Parallel, Layout::Colocated})
    for (int64_t budget : budgets) {
      std::vector<PipelineModule> mods = model(true);
      std::optional<PipelinePlan> plan;
      double ms = timeMs([&] {
        plan = planPipeline(mods, layout, Objective::MinMax, budget, micro);
      });
      if (!plan) {
        std::printf("| %s | %lld | %.3f | infeasible | | | |\n",
                    layoutName(layout), static_cast<long long>(budget), ms);
        continue;
      }
      std::printf("| %s | %lld | %.3f | %s | %lld | %.3f | %.2f |\n",
                  layoutName(layout), static_cast<long long>(budget), ms,
                  counts(*plan).c_str(), static_cast<long long>(plan->gpus),
                  plan->bottleneck, plan->iterationTime);
    }

  std::printf("\n## Frozen-aware vs frozen-unaware (balancing all-trainable "
              "times), real times charged\n\n");
  std::printf("| layout | budget | aware stages | aware iter (s) | unaware "
              "stages | unaware iter (s) | speed-up |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  for (Layout layout : {Layout::Parallel, Layout::Colocated})
    for (int64_t budget : {8, 16, 32, 64}) {
      std::optional<PipelinePlan> a =
          planPipeline(model(true), layout, Objective::MinMax, budget, micro);
      std::optional<PipelinePlan> u =
          planPipeline(model(false), layout, Objective::MinMax, budget, micro);
      if (!a || !u)
        continue;
      std::printf("| %s | %d | %s | %.2f | %s | %.2f | %.2fx |\n",
                  layoutName(layout), static_cast<int>(budget),
                  counts(*a).c_str(), a->iterationTime, counts(*u).c_str(),
                  u->iterationTime, u->iterationTime / a->iterationTime);
    }

  std::printf("\n## partitionColocated: vision + audio + video, exact vs "
              "heuristic\n\n");
  std::printf("| stages | exact bottleneck (s) | exact (ms) | heuristic "
              "bottleneck (s) | heuristic (ms) | independent min-max (s) |\n");
  std::printf("|---|---|---|---|---|---|\n");
  {
    std::vector<PipelineModule> mods = model(true);
    std::vector<std::vector<double>> w;
    for (size_t i = 0; i < 3; ++i) {
      w.emplace_back();
      for (const LayerTime &t : mods[i].layers)
        w.back().push_back(t.total());
    }
    auto jointMax = [&](const std::vector<std::vector<int64_t>> &sizes) {
      std::vector<double> l(sizes[0].size(), 0.0);
      for (size_t a = 0; a < w.size(); ++a) {
        size_t at = 0;
        for (size_t i = 0; i < sizes[a].size(); ++i)
          for (int64_t j = 0; j < sizes[a][i]; ++j)
            l[i] += w[a][at++];
      }
      return *std::max_element(l.begin(), l.end());
    };
    for (int64_t k : {2, 3, 4, 6, 8, 10, 12}) {
      std::vector<std::vector<int64_t>> ex, he, ind;
      double tEx = timeMs([&] { ex = partitionColocated(w, k, 1e12); });
      double tHe = timeMs([&] { he = partitionColocated(w, k, 0); });
      for (const std::vector<double> &x : w)
        ind.push_back(partitionMinMax(x, k));
      std::printf("| %lld | %.4f | %.3f | %.4f | %.3f | %.4f |\n",
                  static_cast<long long>(k), jointMax(ex), tEx, jointMax(he),
                  tHe, jointMax(ind));
    }
  }

  std::printf("\n## partitionMinMax scaling (random weights, median ms)\n\n");
  std::printf("minMaxBottlenecks = optimal bottleneck for every k <= stages "
              "from one table.\n\n");
  std::printf("| layers | stages | partitionMinMax | minMaxBottlenecks |\n");
  std::printf("|---|---|---|---|\n");
  std::vector<int64_t> layerCounts = {64, 128, 256, 512, 1024, 2048};
  if (quick)
    layerCounts = {64, 256};
  std::mt19937_64 rng(2026);
  std::uniform_real_distribution<double> u(0.5, 1.5);
  for (int64_t n : layerCounts) {
    std::vector<double> w(n);
    for (double &x : w)
      x = u(rng);
    for (int64_t k : {4, 16, 64, 256}) {
      if (k > n)
        continue;
      size_t sink = 0;
      double part = timeMs([&] { sink += partitionMinMax(w, k).size(); });
      double all = timeMs([&] { sink += minMaxBottlenecks(w, k).size(); });
      std::printf("| %lld | %lld | %.3f | %.3f |\n", static_cast<long long>(n),
                  static_cast<long long>(k), part, all);
      if (sink == 0)
        std::printf("unreachable\n");
    }
  }

  std::printf("\n## Cuts whose stages fit a GPU (median ms)\n\n");
  std::printf("planPipeline (encoders parallel) of the model above with a "
              "memory model: every layer 1 GiB of weights, gradients and "
              "optimizer state, the LLM's first 4 GiB (an embedding), 0.25 "
              "GiB of activations per layer; capacity 0 means unchecked.\n\n");
  std::printf("| capacity (GiB) | budget | time (ms) | stages v/a/vid/llm | "
              "fits | bottleneck (s) | iteration (s) |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  std::vector<PipelineModule> withMemory = model(true);
  for (PipelineModule &m : withMemory)
    for (size_t i = 0; i < m.layers.size(); ++i)
      m.memory.push_back(
          {(m.isLLM && i == 0 ? 4.0 : 1.0) * kGiB, 0, 0, 0.25 * kGiB});
  for (double capacity : {0.0, 12.0, 6.0})
    for (int64_t budget : {64, 128}) {
      PipelineResources res;
      res.gpuBudget = budget;
      res.microbatches = micro;
      res.memoryCapacity = capacity * kGiB;
      std::optional<PipelinePlan> plan;
      double t = timeMs([&] {
        plan =
            planPipeline(withMemory, Layout::Parallel, Objective::MinMax, res);
      });
      if (!plan)
        continue;
      std::printf("| %.0f | %lld | %.3f | %s | %s | %.3f | %.2f |\n", capacity,
                  static_cast<long long>(budget), t, counts(*plan).c_str(),
                  plan->fits ? "yes" : "no", plan->bottleneck,
                  plan->iterationTime);
    }

  std::printf("\npartitionMinMax with a stage predicate (at most 1.5x the "
              "mean layers per stage) against without one.\n\n");
  std::printf("| layers | stages | without | with predicate |\n");
  std::printf("|---|---|---|---|\n");
  for (int64_t n : layerCounts) {
    if (n > 1024)
      continue;
    std::vector<double> w(n);
    for (double &x : w)
      x = u(rng);
    for (int64_t k : {4, 16, 64}) {
      int64_t most = (3 * n + 2 * k - 1) / (2 * k);
      auto fits = [&](int64_t first, int64_t end) {
        return end - first <= most;
      };
      size_t sink = 0;
      double plain = timeMs([&] { sink += partitionMinMax(w, k).size(); });
      double with = timeMs([&] { sink += partitionMinMax(w, k, fits).size(); });
      std::printf("| %lld | %lld | %.3f | %.3f |\n", static_cast<long long>(n),
                  static_cast<long long>(k), plain, with);
      if (sink == 0)
        std::printf("unreachable\n");
    }
  }
  return 0;
}
