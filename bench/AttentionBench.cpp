//===- AttentionBench.cpp - CPU flash attention vs dense masked attention -===//
//
// Forward + backward of the tile-map flash kernel (kernels/cpu/Attention.h)
// against dense masked attention built from the same pieces: full S x S
// GEMMs for QK^T, PV, dO V^T, P^T dO, dS K and dS^T Q, the uint8 mask from
// buildDenseMask (not timed), and the kernel's own vectorised softmax and
// dS passes, so the comparison is skipping against not skipping. The dense
// backward keeps P from its forward (no recompute), as a dense
// implementation would.
//
// Prints one markdown row per (S, mask family, threads): plan time, best
// times over --reps repetitions in which flash and dense alternate, useful
// GFLOP/s (allowed pairs x 4d forward, x 8d backward, the same numerator
// for both paths), skipped tiles, and the measured speed-up beside the
// ideal 1 / (1 - skipped).
//
// Usage: mllm-bench-attention [--sizes=4096,8192,16384] [--threads=1,2]
//          [--families=causal,...] [--head-dim=64] [--reps=N]
//          [--span=KEYS] [--key-block=KEYS] [--no-dense] [--seed=N]
//
//===----------------------------------------------------------------------===//

#include "mllm/kernels/MaskFamilies.h"
#include "mllm/kernels/cpu/Attention.h"
#include "mllm/kernels/cpu/AttentionBlocks.h"

#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

using namespace mllm::kernels;
using namespace mllm::kernels::cpu;

namespace {

struct Config {
  std::vector<int64_t> sizes = {4096, 8192, 16384};
  std::vector<int> threads = {1, 2};
  std::vector<MaskFamily> families = allFamilies();
  int64_t headDim = 64;
  int reps = 0; // 0: 5 below 16k, else 3
  AttentionPlanOptions plan;
  bool dense = true; // --no-dense: the flash kernel alone (profiling)
  uint64_t seed = 2026;
};

double nowMs() {
  using Clock = std::chrono::steady_clock;
  return std::chrono::duration<double, std::milli>(
             Clock::now().time_since_epoch())
      .count();
}

/// Milliseconds fn() takes once.
template <typename Fn>
double timeMs(Fn fn) {
  double start = nowMs();
  fn();
  return nowMs() - start;
}

/// Best of `reps` timings of fn(), in milliseconds.
template <typename Fn>
double bestMs(int reps, Fn fn) {
  double best = INFINITY;
  for (int i = 0; i < reps; ++i)
    best = std::min(best, timeMs(fn));
  return best;
}

std::vector<std::string> splitList(const std::string &s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');)
    out.push_back(item);
  return out;
}

/// Dense masked attention of one head: Q, K, V [S, d], every S x S matrix
/// materialised. Element-wise passes run over row chunks with OpenMP,
/// GEMMs with OpenBLAS at `threads` threads.
class Dense {
public:
  Dense(int64_t s, int64_t d, const std::vector<uint8_t> &mask, int threads)
      : s(s), d(d), threads(threads), mask(mask), p(size_t(s * s)),
        dp(size_t(s * s)), rowMax(static_cast<size_t>(s)),
        rowSum(static_cast<size_t>(s)), alpha(static_cast<size_t>(s)),
        delta(static_cast<size_t>(s)) {}

  void forward(const float *q, const float *k, const float *v, float scale,
               float *o, float *lse) {
    openblas_set_num_threads(threads);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(s), int(s), int(d),
                scale, q, int(d), k, int(d), 0.0f, p.data(), int(s));
    const float ninf = -INFINITY;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t i = 0; i < s; ++i) {
      float *row = &p[size_t(i * s)];
      const uint8_t *m = &mask[size_t(i * s)];
#pragma omp simd
      for (int64_t j = 0; j < s; ++j)
        row[j] = m[j] ? row[j] : ninf;
      rowMax[i] = ninf;
      rowSum[i] = 0.0f;
      impl::softmaxBlock(row, s, 1, s, &rowMax[i], &rowSum[i], &alpha[i]);
      lse[i] = softmaxLse(rowMax[i], rowSum[i]);
      alpha[i] = softmaxNormalizer(rowSum[i]);
      impl::scaleRows(row, s, 1, s, &alpha[i]); // P normalised for backward
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(s), int(d),
                int(s), 1.0f, p.data(), int(s), v, int(d), 0.0f, o, int(d));
  }

  void backward(const float *q, const float *k, const float *v, const float *o,
                const float *dO, float scale, float *dq, float *dk, float *dv) {
    openblas_set_num_threads(threads);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(s), int(d), int(s),
                1.0f, p.data(), int(s), dO, int(d), 0.0f, dv, int(d));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(s), int(s), int(d),
                1.0f, dO, int(d), v, int(d), 0.0f, dp.data(), int(s));
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t i = 0; i < s; ++i) {
      float sum = 0.0f;
      for (int64_t x = 0; x < d; ++x)
        sum += dO[i * d + x] * o[i * d + x];
      delta[i] = sum;
      impl::gradBlock(&dp[size_t(i * s)], &p[size_t(i * s)], s, 1, s,
                      &delta[i]);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(s), int(d),
                int(s), scale, dp.data(), int(s), k, int(d), 0.0f, dq, int(d));
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(s), int(d), int(s),
                scale, dp.data(), int(s), q, int(d), 0.0f, dk, int(d));
  }

private:
  int64_t s, d;
  int threads;
  const std::vector<uint8_t> &mask;
  std::vector<float> p, dp, rowMax, rowSum, alpha, delta;
};

double maxAbsDiff(const std::vector<float> &a, const std::vector<float> &b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::isfinite(a[i]) || std::isfinite(b[i]))
      m = std::max(m, std::abs(double(a[i]) - double(b[i])));
  return m;
}

void run(const Config &cfg) {
  std::printf(
      "| S | mask | thr | skip | partial | plan ms | flash fwd ms | flash bwd "
      "ms "
      "| dense fwd ms | dense bwd ms | flash GFLOP/s | dense GFLOP/s "
      "| speed-up | 1/(1-skip) | ratio | max err |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  std::fflush(stdout);
  const int64_t d = cfg.headDim;
  for (int64_t s : cfg.sizes) {
    std::mt19937_64 rng(cfg.seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> q(size_t(s * d)), k(q.size()), v(q.size()), dO(q.size());
    for (std::vector<float> *t : {&q, &k, &v, &dO})
      for (float &x : *t)
        x = u(rng);
    int reps = cfg.reps > 0 ? cfg.reps : (s < 16384 ? 5 : 3);
    for (MaskFamily f : cfg.families) {
      GeneratedMask g = generateMask(f, s, cfg.seed);
      AttentionTokens tokens = AttentionTokens::whole(g.layout, g.policy);
      AttentionPlan plan;
      double planMs =
          bestMs(reps, [&] { plan = prepareAttention(tokens, cfg.plan); });
      int64_t partial = 0;
      for (int64_t r = 0; r < plan.rowTiles; ++r)
        for (int64_t c = 0; c < plan.colTiles; ++c)
          partial += plan.tileClass(r, c) == TileClass::Partial;
      double skip = plan.skippedFraction();
      double pairs = double(plan.visiblePairs());
      std::vector<uint8_t> mask;
      if (cfg.dense)
        mask = buildDenseMask(g.layout, g.policy);
      AttentionHeads heads;
      heads.headDim = d;
      heads.scale = 1.0 / std::sqrt(double(d));
      auto scale = float(heads.scale);
      for (int threads : cfg.threads) {
        std::vector<float> o(q.size()), lse(static_cast<size_t>(s)),
            dq(q.size()), dk(q.size()), dv(q.size());
        AttentionOptions opt;
        opt.threads = threads;
        std::vector<float> o2(q.size()), lse2(static_cast<size_t>(s)),
            dq2(q.size()), dk2(q.size()), dv2(q.size());
        std::unique_ptr<Dense> dense;
        if (cfg.dense)
          dense = std::make_unique<Dense>(s, d, mask, threads);
        // Flash and dense alternate within each repetition so that load
        // from other processes hits both alike; best of each is kept.
        double ff = INFINITY, fb = INFINITY, df = INFINITY, db = INFINITY;
        for (int rep = 0; rep < reps; ++rep) {
          ff = std::min(ff, timeMs([&] {
                          attentionForward(plan, heads, q.data(), k.data(),
                                           v.data(), o.data(), lse.data(), opt);
                        }));
          fb = std::min(fb, timeMs([&] {
                          attentionBackward(plan, heads, q.data(), k.data(),
                                            v.data(), o.data(), lse.data(),
                                            dO.data(), dq.data(), dk.data(),
                                            dv.data(), opt);
                        }));
          if (!dense)
            continue;
          df = std::min(df, timeMs([&] {
                          dense->forward(q.data(), k.data(), v.data(), scale,
                                         o2.data(), lse2.data());
                        }));
          db = std::min(db, timeMs([&] {
                          dense->backward(q.data(), k.data(), v.data(),
                                          o2.data(), dO.data(), scale,
                                          dq2.data(), dk2.data(), dv2.data());
                        }));
        }
        double err = NAN;
        if (dense)
          err = std::max({maxAbsDiff(o, o2), maxAbsDiff(dq, dq2),
                          maxAbsDiff(dk, dk2), maxAbsDiff(dv, dv2)});
        else
          df = db = NAN;
        double useful = pairs * 12.0 * double(d); // 4d forward + 8d backward
        double speedup = (df + db) / (ff + fb), ideal = 1.0 / (1.0 - skip);
        std::printf(
            "| %lldk | %s | %d | %.1f%% | %.1f%% | %.2f | %.1f | %.1f | %.1f "
            "| %.1f | %.1f | %.1f | %.2fx | %.2fx | %.2f | %.1e |\n",
            static_cast<long long>(s / 1024), familyName(f), threads,
            100.0 * skip, 100.0 * double(partial) / plan.numTiles(), planMs, ff,
            fb, df, db, useful / (ff + fb) / 1e6, useful / (df + db) / 1e6,
            speedup, ideal, speedup / ideal, err);
        std::fflush(stdout);
      }
    }
  }
}

} // namespace

int main(int argc, char **argv) {
  Config cfg;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char *flag) -> const char * {
      size_t n = std::strlen(flag);
      return a.compare(0, n, flag) == 0 ? a.c_str() + n : nullptr;
    };
    if (const char *v = value("--sizes=")) {
      cfg.sizes.clear();
      for (const std::string &x : splitList(v))
        cfg.sizes.push_back(std::stoll(x));
    } else if (const char *v = value("--threads=")) {
      cfg.threads.clear();
      for (const std::string &x : splitList(v))
        cfg.threads.push_back(std::stoi(x));
    } else if (const char *v = value("--families=")) {
      cfg.families.clear();
      for (const std::string &x : splitList(v))
        for (MaskFamily f : allFamilies())
          if (x == familyName(f))
            cfg.families.push_back(f);
    } else if (const char *v = value("--head-dim=")) {
      cfg.headDim = std::stoll(v);
    } else if (const char *v = value("--reps=")) {
      cfg.reps = std::stoi(v);
    } else if (a == "--no-dense") {
      cfg.dense = false;
    } else if (const char *v = value("--span=")) {
      cfg.plan.spanKeys = std::stoll(v);
    } else if (const char *v = value("--key-block=")) {
      cfg.plan.keyBlockKeys = std::stoll(v);
    } else if (const char *v = value("--seed=")) {
      cfg.seed = std::stoull(v);
    } else {
      std::fprintf(stderr,
                   "usage: mllm-bench-attention [--sizes=4096,8192,16384] "
                   "[--threads=1,2] [--families=causal,...] [--head-dim=64] "
                   "[--reps=N] [--span=KEYS] [--key-block=KEYS] [--no-dense] "
                   "[--seed=N]\n");
      return 1;
    }
  }
  run(cfg);
  return 0;
}
