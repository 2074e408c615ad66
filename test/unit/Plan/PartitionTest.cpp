//===- PartitionTest.cpp - min-max partitioning and stage allocation ------===//
//
// partitionMinMax, partitionColocated and planPipeline against brute force
// over every composition on small random instances; the 1F1B closed form;
// frozen-aware against frozen-unaware balancing; objectives; infeasibility;
// determinism.
//
//===----------------------------------------------------------------------===//

#include "mllm/Plan/Partition.h"

#include "gtest/gtest.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>

using namespace mllm::plan;

namespace {

/// Every composition of n into k positive parts.
std::vector<std::vector<int64_t>> compositions(int64_t n, int64_t k) {
  std::vector<std::vector<int64_t>> out;
  std::vector<int64_t> cur;
  std::function<void(int64_t, int64_t)> rec = [&](int64_t left, int64_t parts) {
    if (parts == 1) {
      cur.push_back(left);
      out.push_back(cur);
      cur.pop_back();
      return;
    }
    for (int64_t s = 1; s <= left - parts + 1; ++s) {
      cur.push_back(s);
      rec(left - s, parts - 1);
      cur.pop_back();
    }
  };
  rec(n, k);
  return out;
}

std::vector<double> loads(const std::vector<double> &w,
                          const std::vector<int64_t> &sizes) {
  std::vector<double> out;
  size_t at = 0;
  for (int64_t s : sizes) {
    double sum = 0;
    for (int64_t i = 0; i < s; ++i)
      sum += w[at++];
    out.push_back(sum);
  }
  return out;
}

double maxLoad(const std::vector<double> &w,
               const std::vector<int64_t> &sizes) {
  std::vector<double> l = loads(w, sizes);
  return *std::max_element(l.begin(), l.end());
}

bool near(double a, double b) {
  return std::fabs(a - b) <= 1e-9 * std::max({1.0, std::fabs(a), std::fabs(b)});
}

std::vector<int64_t> reversed(std::vector<int64_t> v) {
  std::reverse(v.begin(), v.end());
  return v;
}

TEST(Partition, MinMaxMatchesBruteForce) {
  std::mt19937_64 rng(7);
  for (int iter = 0; iter < 600; ++iter) {
    bool integral = iter % 2 == 0; // Integer weights: exact ties.
    int64_t n = 1 + rng() % 12;
    int64_t k = 1 + rng() % n;
    std::vector<double> w(n);
    for (double &x : w)
      x = integral ? static_cast<double>(rng() % 6)
                   : std::uniform_real_distribution<double>(0, 10)(rng);
    double best = INFINITY;
    std::vector<int64_t> bestSizes;
    for (const std::vector<int64_t> &c : compositions(n, k)) {
      double b = maxLoad(w, c);
      if (b < best || (b == best && reversed(c) < reversed(bestSizes))) {
        best = b;
        bestSizes = c;
      }
    }
    std::vector<int64_t> got = partitionMinMax(w, k);
    ASSERT_EQ(static_cast<int64_t>(got.size()), k);
    int64_t sum = 0;
    for (int64_t s : got) {
      EXPECT_GE(s, 1);
      sum += s;
    }
    EXPECT_EQ(sum, n);
    EXPECT_TRUE(near(maxLoad(w, got), best)) << "iter " << iter;
    if (integral) // Exact sums: the documented tie rule must hold.
      EXPECT_EQ(got, bestSizes) << "iter " << iter;
    std::vector<double> all = minMaxBottlenecks(w, n);
    EXPECT_TRUE(near(all[k - 1], best)) << "iter " << iter;
  }
}

TEST(Partition, MinMaxTieRule) {
  // All equal: the last stage is as short as the bottleneck allows.
  EXPECT_EQ(partitionMinMax({1, 1, 1, 1, 1, 1, 1}, 3),
            (std::vector<int64_t>{3, 3, 1}));
  // Zero-weight tail: the last stage keeps a single layer.
  EXPECT_EQ(partitionMinMax({4, 4, 0, 0, 0}, 2), (std::vector<int64_t>{1, 4}));
  EXPECT_EQ(partitionMinMax({5}, 1), (std::vector<int64_t>{1}));
}

TEST(Partition, ColocatedMatchesBruteForce) {
  std::mt19937_64 rng(11);
  int heuristicOptimal = 0, total = 0;
  for (int iter = 0; iter < 300; ++iter) {
    int encoders = 2 + rng() % 2;
    std::vector<std::vector<double>> w(encoders);
    int64_t minN = 100;
    for (std::vector<double> &e : w) {
      e.resize(1 + rng() % 5);
      for (double &x : e)
        x = static_cast<double>(rng() % 8);
      minN = std::min<int64_t>(minN, e.size());
    }
    int64_t k = 1 + rng() % minN;
    // Brute force over every joint partition.
    std::vector<std::vector<std::vector<int64_t>>> options;
    for (const std::vector<double> &e : w)
      options.push_back(compositions(e.size(), k));
    double best = INFINITY;
    std::vector<size_t> idx(encoders, 0);
    while (true) {
      std::vector<double> l(k, 0.0);
      for (int a = 0; a < encoders; ++a) {
        std::vector<double> la = loads(w[a], options[a][idx[a]]);
        for (int64_t i = 0; i < k; ++i)
          l[i] += la[i];
      }
      best = std::min(best, *std::max_element(l.begin(), l.end()));
      int a = 0;
      while (a < encoders && ++idx[a] == options[a].size())
        idx[a++] = 0;
      if (a == encoders)
        break;
    }
    auto jointMax = [&](const std::vector<std::vector<int64_t>> &sizes) {
      std::vector<double> l(k, 0.0);
      for (int a = 0; a < encoders; ++a) {
        EXPECT_EQ(static_cast<int64_t>(sizes[a].size()), k);
        int64_t sum = 0;
        for (int64_t s : sizes[a]) {
          EXPECT_GE(s, 1);
          sum += s;
        }
        EXPECT_EQ(sum, static_cast<int64_t>(w[a].size()));
        std::vector<double> la = loads(w[a], sizes[a]);
        for (int64_t i = 0; i < k; ++i)
          l[i] += la[i];
      }
      return *std::max_element(l.begin(), l.end());
    };
    EXPECT_EQ(jointMax(partitionColocated(w, k)), best) << "iter " << iter;
    // The heuristic (forced) is never better than optimal, never worse than
    // independent per-encoder min-max.
    double heur = jointMax(partitionColocated(w, k, /*exactWorkLimit=*/0));
    std::vector<std::vector<int64_t>> independent;
    for (const std::vector<double> &e : w)
      independent.push_back(partitionMinMax(e, k));
    EXPECT_GE(heur, best);
    EXPECT_LE(heur, jointMax(independent));
    heuristicOptimal += heur == best;
    ++total;
  }
  // Record, not a requirement beyond the bounds above.
  std::printf("colocated heuristic optimal on %d/%d instances\n",
              heuristicOptimal, total);
}

/// Brute force for planPipeline: every stage count and every partition
/// (MinMax) or the uniform one (Uniform); returns the best estimate under
/// the balance times, and the fewest GPUs / most LLM stages among the
/// optima (exact with integer times).
struct Brute {
  bool feasible = false;
  double best = INFINITY;
  int64_t gpus = 0, llmStages = 0;
};

Brute bruteForce(const std::vector<PipelineModule> &mods, Layout layout,
                 Objective objective, int64_t budget, int64_t m) {
  size_t nm = mods.size();
  std::vector<std::vector<std::vector<int64_t>>> options(nm);
  for (size_t i = 0; i < nm; ++i) {
    int64_t n = mods[i].layers.size();
    for (int64_t k = 1; k <= n; ++k) {
      if (mods[i].stages && *mods[i].stages != k)
        continue;
      if (objective == Objective::Uniform) {
        std::vector<int64_t> u(k, n / k);
        for (int64_t j = 0; j < n % k; ++j)
          ++u[j];
        options[i].push_back(u);
      } else {
        for (const std::vector<int64_t> &c : compositions(n, k))
          options[i].push_back(c);
      }
    }
  }
  auto stagesOf = [&](size_t i, const std::vector<int64_t> &sizes) {
    const std::vector<LayerTime> &t =
        mods[i].balanceLayers.empty() ? mods[i].layers : mods[i].balanceLayers;
    std::vector<StagePlan> out;
    size_t at = 0;
    for (int64_t s : sizes) {
      StagePlan sp;
      for (int64_t j = 0; j < s; ++j, ++at) {
        sp.fwd += t[at].fwd;
        sp.bwd += t[at].bwd;
      }
      out.push_back(sp);
    }
    return out;
  };
  Brute r;
  std::vector<size_t> idx(nm, 0);
  while (true) {
    std::vector<size_t> enc;
    int64_t llm = -1;
    for (size_t i = 0; i < nm; ++i) {
      if (mods[i].isLLM)
        llm = static_cast<int64_t>(i);
      else
        enc.push_back(i);
    }
    bool ok = true;
    int64_t gpus = 0;
    std::vector<std::vector<StagePlan>> paths;
    std::vector<StagePlan> tail;
    if (llm >= 0) {
      tail = stagesOf(llm, options[llm][idx[llm]]);
      gpus += static_cast<int64_t>(tail.size()) * mods[llm].gpusPerStage;
    }
    if (layout == Layout::Parallel || enc.empty()) {
      for (size_t e : enc) {
        std::vector<StagePlan> p = stagesOf(e, options[e][idx[e]]);
        gpus += static_cast<int64_t>(p.size()) * mods[e].gpusPerStage;
        p.insert(p.end(), tail.begin(), tail.end());
        paths.push_back(p);
      }
      if (enc.empty())
        paths.push_back(tail);
    } else {
      size_t k = options[enc[0]][idx[enc[0]]].size();
      std::vector<StagePlan> merged(k);
      for (size_t e : enc) {
        std::vector<StagePlan> p = stagesOf(e, options[e][idx[e]]);
        if (p.size() != k)
          ok = false;
        for (size_t s = 0; s < p.size() && ok; ++s) {
          merged[s].fwd += p[s].fwd;
          merged[s].bwd += p[s].bwd;
        }
      }
      gpus += static_cast<int64_t>(k) * mods[enc[0]].gpusPerStage;
      merged.insert(merged.end(), tail.begin(), tail.end());
      paths.push_back(merged);
    }
    if (ok && gpus <= budget) {
      double t = estimateIterationTime(paths, m);
      int64_t ls =
          llm >= 0 ? static_cast<int64_t>(options[llm][idx[llm]].size()) : 0;
      if (!r.feasible || t < r.best ||
          (t == r.best &&
           (gpus < r.gpus || (gpus == r.gpus && ls > r.llmStages)))) {
        r.best = t;
        r.gpus = gpus;
        r.llmStages = ls;
      }
      r.feasible = true;
    }
    size_t a = 0;
    while (a < nm && ++idx[a] == options[a].size())
      idx[a++] = 0;
    if (a == nm)
      break;
  }
  return r;
}

std::vector<LayerTime> randomLayers(std::mt19937_64 &rng, int64_t n,
                                    bool integral) {
  std::vector<LayerTime> out(n);
  std::uniform_real_distribution<double> u(0, 5);
  for (LayerTime &t : out) {
    t.fwd = integral ? static_cast<double>(1 + rng() % 4) : u(rng);
    t.bwd = integral ? static_cast<double>(rng() % 7) : u(rng);
  }
  return out;
}

void checkPlanAgainstBruteForce(Layout layout, Objective objective,
                                uint64_t seed) {
  std::mt19937_64 rng(seed);
  int feasible = 0;
  for (int iter = 0; iter < 150; ++iter) {
    bool integral = iter % 3 != 0;
    int nm = 2 + rng() % 2;
    std::vector<PipelineModule> mods(nm);
    int64_t gEnc = 1 + rng() % 2, sumStages = 0;
    for (int i = 0; i < nm; ++i) {
      PipelineModule &m = mods[i];
      m.name = "m" + std::to_string(i);
      int64_t n = 1 + rng() % (nm == 3 ? 5 : 6);
      m.layers = randomLayers(rng, n, integral);
      if (rng() % 3 == 0) // Balance on something else (frozen-unaware).
        m.balanceLayers = randomLayers(rng, n, integral);
      if (rng() % 6 == 0)
        m.stages = 1 + rng() % n;
      sumStages += n;
    }
    // Exactly one LLM.
    for (PipelineModule &m : mods)
      m.isLLM = false;
    mods[rng() % nm].isLLM = true;
    for (PipelineModule &m : mods)
      m.gpusPerStage =
          (m.isLLM || layout == Layout::Parallel) ? 1 + rng() % 2 : gEnc;
    int64_t budget = 1 + rng() % (2 * sumStages + 2);
    int64_t micro = 1 + rng() % 8;
    Brute b = bruteForce(mods, layout, objective, budget, micro);
    std::optional<PipelinePlan> plan =
        planPipeline(mods, layout, objective, budget, micro);
    ASSERT_EQ(plan.has_value(), b.feasible) << "iter " << iter;
    if (!plan)
      continue;
    ++feasible;
    EXPECT_TRUE(near(plan->balanceIterationTime, b.best))
        << "iter " << iter << " got " << plan->balanceIterationTime << " want "
        << b.best;
    EXPECT_LE(plan->gpus, budget);
    EXPECT_TRUE(
        near(plan->iterationTime, estimateIterationTime(plan->paths, micro)));
    if (integral) { // Exact arithmetic: the tie-breaks must match too.
      EXPECT_EQ(plan->gpus, b.gpus) << "iter " << iter;
      for (size_t i = 0; i < mods.size(); ++i)
        if (mods[i].isLLM)
          EXPECT_EQ(plan->stagesPerModule[i], b.llmStages) << "iter " << iter;
    }
    // Stages cover every module's layers in order, with the real times.
    size_t at = 0;
    for (size_t i = 0; i < mods.size(); ++i) {
      int64_t next = 0;
      for (int64_t s = 0; s < plan->stagesPerModule[i]; ++s, ++at) {
        const StagePlan &sp = plan->stages.at(at);
        EXPECT_EQ(sp.module, mods[i].name);
        EXPECT_EQ(sp.firstLayer, next);
        EXPECT_GE(sp.numLayers, 1);
        double f = 0;
        for (int64_t l = sp.firstLayer; l < sp.firstLayer + sp.numLayers; ++l)
          f += mods[i].layers[l].fwd;
        EXPECT_TRUE(near(sp.fwd, f));
        next += sp.numLayers;
      }
      EXPECT_EQ(next, static_cast<int64_t>(mods[i].layers.size()));
    }
    EXPECT_EQ(at, plan->stages.size());
  }
  EXPECT_GT(feasible, 50);
}

TEST(Partition, PlanMatchesBruteForceParallel) {
  checkPlanAgainstBruteForce(Layout::Parallel, Objective::MinMax, 1);
}

TEST(Partition, PlanMatchesBruteForceColocated) {
  checkPlanAgainstBruteForce(Layout::Colocated, Objective::MinMax, 2);
}

TEST(Partition, PlanMatchesBruteForceUniform) {
  checkPlanAgainstBruteForce(Layout::Parallel, Objective::Uniform, 3);
  checkPlanAgainstBruteForce(Layout::Colocated, Objective::Uniform, 4);
}

PipelineModule module(std::string name, int64_t n, LayerTime t,
                      bool llm = false) {
  PipelineModule m;
  m.name = std::move(name);
  m.layers.assign(n, t);
  m.isLLM = llm;
  return m;
}

TEST(Partition, ClosedFormUniformStages) {
  // Layers of 1 + 2 = 3, two per stage: t = 6, exact in binary.
  for (int64_t p : {1, 2, 4, 8})
    for (int64_t m : {1, 4, 16, 64}) {
      PipelineModule llm = module("llm", 2 * p, {1, 2}, true);
      llm.stages = p;
      std::optional<PipelinePlan> plan =
          planPipeline({llm}, Layout::Parallel, Objective::MinMax, p, m);
      ASSERT_TRUE(plan);
      EXPECT_EQ(plan->bottleneck, 6.0);
      EXPECT_EQ(plan->iterationTime, (m + p - 1) * 6.0);
      // Encoder path: p_e + p_llm stages of the same t.
      PipelineModule enc = module("enc", 3 * 2, {1, 2});
      enc.stages = 3;
      for (Layout layout : {Layout::Parallel, Layout::Colocated}) {
        plan = planPipeline({enc, llm}, layout, Objective::MinMax, p + 3, m);
        ASSERT_TRUE(plan);
        EXPECT_EQ(plan->iterationTime, (m + p + 3 - 1) * 6.0);
      }
    }
  // Direct: a hand-made non-uniform path.
  auto stage = [](const char *name, double fwd, double bwd) {
    StagePlan s;
    s.module = name;
    s.numLayers = 1;
    s.fwd = fwd;
    s.bwd = bwd;
    return s;
  };
  std::vector<std::vector<StagePlan>> paths(2);
  paths[0] = {stage("a", 1, 0), stage("l", 2, 2)};
  paths[1] = {stage("b", 3, 3), stage("l", 2, 2)};
  // B = 6, longest path 10: 10 - 6 + 5 x 6.
  EXPECT_EQ(estimateIterationTime(paths, 5), 34.0);
  EXPECT_EQ(estimateIterationTime({}, 5), 0.0);
}

TEST(Partition, FrozenAwareBeatsUnaware) {
  // Frozen encoder: backward ~0. Trainable LLM: backward = 2 x forward. The
  // unaware baseline balances as if the encoder were trainable too.
  PipelineModule enc = module("vision", 24, {1.0, 0.01});
  PipelineModule llm = module("llm", 24, {1.0, 2.0}, true);
  PipelineModule encUnaware = enc;
  encUnaware.balanceLayers.assign(24, {1.0, 2.0});
  for (Layout layout : {Layout::Parallel, Layout::Colocated}) {
    std::optional<PipelinePlan> aware =
        planPipeline({enc, llm}, layout, Objective::MinMax, 8, 32);
    std::optional<PipelinePlan> unaware =
        planPipeline({encUnaware, llm}, layout, Objective::MinMax, 8, 32);
    ASSERT_TRUE(aware && unaware);
    EXPECT_LT(aware->iterationTime, unaware->iterationTime);
    EXPECT_LT(aware->bottleneck, unaware->bottleneck);
    double awareLayers = 24.0 / aware->stagesPerModule[0];
    double unawareLayers = 24.0 / unaware->stagesPerModule[0];
    EXPECT_GT(awareLayers, unawareLayers);
    EXPECT_GT(aware->stagesPerModule[1], unaware->stagesPerModule[1]);
  }
  // The numbers, encoders-parallel: unaware 4 + 4 stages (LLM stage 6 x 3
  // = 18), aware 2 + 6 (encoder 12 x 1.01 = 12.12, LLM 4 x 3 = 12).
  std::optional<PipelinePlan> aware =
      planPipeline({enc, llm}, Layout::Parallel, Objective::MinMax, 8, 32);
  std::optional<PipelinePlan> unaware = planPipeline(
      {encUnaware, llm}, Layout::Parallel, Objective::MinMax, 8, 32);
  EXPECT_EQ(unaware->stagesPerModule, (std::vector<int64_t>{4, 4}));
  EXPECT_EQ(aware->stagesPerModule, (std::vector<int64_t>{2, 6}));
  EXPECT_NEAR(aware->bottleneck, 12.12, 1e-9);
  EXPECT_NEAR(unaware->bottleneck, 18.0, 1e-9);
}

TEST(Partition, UniformObjective) {
  PipelineModule llm = module("llm", 10, {1, 2}, true);
  llm.layers[0] = {10, 20}; // Heavy first layer: min-max would isolate it.
  llm.stages = 3;
  std::optional<PipelinePlan> plan =
      planPipeline({llm}, Layout::Parallel, Objective::Uniform, 3, 4);
  ASSERT_TRUE(plan);
  ASSERT_EQ(plan->stages.size(), 3u);
  EXPECT_EQ(plan->stages[0].numLayers, 4);
  EXPECT_EQ(plan->stages[1].numLayers, 3);
  EXPECT_EQ(plan->stages[2].numLayers, 3);
  EXPECT_EQ(plan->stages[1].firstLayer, 4);
  EXPECT_EQ(plan->bottleneck, 30.0 + 9.0);
  std::optional<PipelinePlan> minmax =
      planPipeline({llm}, Layout::Parallel, Objective::MinMax, 3, 4);
  EXPECT_EQ(minmax->stages[0].numLayers, 1);
  EXPECT_LT(minmax->bottleneck, plan->bottleneck);
}

TEST(Partition, ExplicitObjective) {
  PipelineModule enc = module("enc", 6, {1, 0});
  enc.explicitStages = {1, 5};
  PipelineModule llm = module("llm", 8, {1, 2}, true);
  llm.explicitStages = {2, 2, 4};
  std::optional<PipelinePlan> plan =
      planPipeline({enc, llm}, Layout::Parallel, Objective::Explicit, 5, 8);
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->stagesPerModule, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(plan->stages[1].numLayers, 5);
  EXPECT_EQ(plan->stages[4].numLayers, 4);
  EXPECT_EQ(plan->bottleneck, 12.0);
  // Path enc -> llm: 6 + 24 = 30; 30 - 12 + 8 x 12.
  EXPECT_EQ(plan->iterationTime, 114.0);
  // Explicit needs the budget for its fixed counts.
  EXPECT_FALSE(
      planPipeline({enc, llm}, Layout::Parallel, Objective::Explicit, 4, 8));
  // Invalid explicit partitions.
  PipelineModule bad = llm;
  bad.explicitStages = {2, 2, 3};
  EXPECT_FALSE(
      planPipeline({enc, bad}, Layout::Parallel, Objective::Explicit, 16, 8));
  bad.explicitStages = {2, 2, 4};
  bad.stages = 2;
  EXPECT_FALSE(
      planPipeline({enc, bad}, Layout::Parallel, Objective::Explicit, 16, 8));
  // Under other objectives explicitStages are ignored.
  std::optional<PipelinePlan> mm =
      planPipeline({enc, llm}, Layout::Parallel, Objective::MinMax, 5, 8);
  ASSERT_TRUE(mm);
  EXPECT_LT(mm->bottleneck, plan->bottleneck);
  // A module without explicitStages falls back to MinMax.
  PipelineModule free = module("free", 4, {1, 1});
  std::optional<PipelinePlan> mixed =
      planPipeline({free, llm}, Layout::Parallel, Objective::Explicit, 6, 8);
  ASSERT_TRUE(mixed);
  EXPECT_EQ(mixed->stagesPerModule[1], 3);
}

TEST(Partition, Infeasible) {
  PipelineModule enc = module("enc", 4, {1, 0});
  PipelineModule llm = module("llm", 4, {1, 2}, true);
  EXPECT_FALSE(
      planPipeline({enc, llm}, Layout::Parallel, Objective::MinMax, 1, 4));
  EXPECT_TRUE(
      planPipeline({enc, llm}, Layout::Parallel, Objective::MinMax, 2, 4));
  llm.gpusPerStage = 4;
  EXPECT_FALSE(
      planPipeline({enc, llm}, Layout::Parallel, Objective::MinMax, 4, 4));
  EXPECT_TRUE(
      planPipeline({enc, llm}, Layout::Parallel, Objective::MinMax, 5, 4));
  // Colocated encoders need equal gpusPerStage.
  PipelineModule enc2 = module("enc2", 4, {1, 0});
  enc2.gpusPerStage = 2;
  EXPECT_FALSE(planPipeline({enc, enc2, llm}, Layout::Colocated,
                            Objective::MinMax, 100, 4));
  EXPECT_TRUE(planPipeline({enc, enc2, llm}, Layout::Parallel,
                           Objective::MinMax, 100, 4));
  // Colocated encoders share a stage count: fixed counts must agree.
  enc2.gpusPerStage = 1;
  enc.stages = 2;
  enc2.stages = 3;
  EXPECT_FALSE(planPipeline({enc, enc2, llm}, Layout::Colocated,
                            Objective::MinMax, 100, 4));
  // More stages than layers; no layers; two LLMs.
  PipelineModule thin = module("llm", 2, {1, 1}, true);
  thin.stages = 3;
  EXPECT_FALSE(planPipeline({thin}, Layout::Parallel, Objective::MinMax, 9, 4));
  EXPECT_FALSE(planPipeline({module("e", 0, {1, 1}), llm}, Layout::Parallel,
                            Objective::MinMax, 9, 4));
  EXPECT_FALSE(
      planPipeline({llm, llm}, Layout::Parallel, Objective::MinMax, 99, 4));
  EXPECT_FALSE(planPipeline({llm}, Layout::Parallel, Objective::MinMax, 99, 0));
}

TEST(Partition, ColocatedSharesStages) {
  // Two encoders colocated: one stage count, GPUs counted once.
  PipelineModule a = module("a", 6, {2, 0});
  PipelineModule b = module("b", 3, {1, 0});
  PipelineModule llm = module("llm", 8, {1, 2}, true);
  std::optional<PipelinePlan> plan =
      planPipeline({a, b, llm}, Layout::Colocated, Objective::MinMax, 6, 16);
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->stagesPerModule[0], plan->stagesPerModule[1]);
  EXPECT_EQ(plan->gpus, plan->stagesPerModule[0] + plan->stagesPerModule[2]);
  ASSERT_EQ(plan->paths.size(), 1u);
  EXPECT_EQ(plan->paths[0][0].module, "a+b");
  EXPECT_EQ(
      plan->paths[0].size(),
      static_cast<size_t>(plan->stagesPerModule[0] + plan->stagesPerModule[2]));
  // Total work 12 + 3 + 24 = 39 on the only path.
  EXPECT_NEAR(plan->iterationTime, 39 + 15 * plan->bottleneck, 1e-9);
}

/// The benchmark's shape: three encoders and an 80-layer LLM.
std::vector<PipelineModule> bigModel() {
  std::vector<PipelineModule> mods;
  mods.push_back(module("vision", 32, {0.040, 0.001}));
  mods.push_back(module("audio", 24, {0.030, 0.060}));
  mods.push_back(module("video", 12, {0.050, 0.001}));
  PipelineModule llm = module("llm", 80, {0.030, 0.060}, true);
  for (int64_t i = 0; i < 80; i += 7)
    llm.layers[i].fwd *= 1.5; // Not quite uniform.
  mods.push_back(llm);
  return mods;
}

TEST(Partition, Deterministic) {
  for (Layout layout : {Layout::Parallel, Layout::Colocated})
    for (int64_t budget : {16, 64, 128}) {
      std::optional<PipelinePlan> a =
          planPipeline(bigModel(), layout, Objective::MinMax, budget, 64);
      std::optional<PipelinePlan> b =
          planPipeline(bigModel(), layout, Objective::MinMax, budget, 64);
      ASSERT_TRUE(a && b);
      EXPECT_EQ(a->stagesPerModule, b->stagesPerModule);
      ASSERT_EQ(a->stages.size(), b->stages.size());
      for (size_t i = 0; i < a->stages.size(); ++i)
        EXPECT_EQ(a->stages[i].numLayers, b->stages[i].numLayers);
      EXPECT_EQ(a->iterationTime, b->iterationTime);
      EXPECT_LE(a->gpus, budget);
    }
}

TEST(Partition, MoreBudgetNeverHurts) {
  double prev = INFINITY;
  for (int64_t budget = 4; budget <= 160; budget += 4) {
    std::optional<PipelinePlan> p = planPipeline(bigModel(), Layout::Parallel,
                                                 Objective::MinMax, budget, 64);
    ASSERT_TRUE(p);
    EXPECT_LE(p->balanceIterationTime, prev + 1e-12);
    prev = p->balanceIterationTime;
  }
}

} // namespace
