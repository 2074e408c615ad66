//===- MaskBench.cpp - CP balancing quality and speed figures -------------===//
//
// Prints markdown tables:
//   1. max/mean workload per rank for each mask family, sequence length, CP
//      degree and policy (ilp with a short time limit where it is allowed);
//   2. per-batch balancing time vs tokens and ranks;
//   3. tile-map and block-workload build time vs tokens.
// Usage: mllm-bench-cp [--quick] [--no-ilp] [--ilp-seconds=S] [--seed=N]
//
//===----------------------------------------------------------------------===//

#include "mllm/kernels/MaskFamilies.h"
#include "mllm/runtime/Balance.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

using namespace mllm::kernels;
using namespace mllm::runtime;

namespace {

struct Config {
  bool quick = false, ilp = true;
  double ilpSeconds = 1.0;
  uint64_t seed = 2026;
};

double nowMs() {
  using Clock = std::chrono::steady_clock;
  return std::chrono::duration<double, std::milli>(
             Clock::now().time_since_epoch())
      .count();
}

/// Median of `reps` timings of fn(), in milliseconds.
template <typename Fn>
double timeMs(int reps, Fn fn) {
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    double start = nowMs();
    fn();
    t.push_back(nowMs() - start);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

std::string cell(llvm::Expected<BalanceResult> r) {
  if (!r) {
    llvm::consumeError(r.takeError());
    return "n/a";
  }
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.3f%s", r->imbalance(),
                r->policy == BalancePolicy::Ilp && r->provenOptimal ? "*" : "");
  return buf;
}

void qualityTables(const Config &cfg) {
  std::vector<int64_t> lengths = {16384, 65536, 131072};
  if (cfg.quick)
    lengths = {16384};
  std::printf("## max/mean workload per rank (1.000 = perfect)\n\n"
              "Workload = non-skipped 128x32 tiles of a rank's query blocks. "
              "LB = max(mean, heaviest block)/mean, a bound no policy beats. "
              "ilp: CBC, %.1f s limit, LPT start; * = proven optimal.\n\n",
              cfg.ilpSeconds);
  for (MaskFamily f : allFamilies()) {
    std::printf(
        "### %s\n\n| tokens | cp | uniform | zigzag | lpt | ilp | LB |\n"
        "|---|---|---|---|---|---|---|\n",
        familyName(f));
    for (int64_t n : lengths) {
      GeneratedMask g = generateMask(f, n, cfg.seed);
      std::vector<int64_t> work = blockWorkloads(g.layout, g.policy);
      int64_t sum = 0, heaviest = 0;
      for (int64_t w : work) {
        sum += w;
        heaviest = std::max(heaviest, w);
      }
      for (int64_t cp : {2, 4, 8, 16}) {
        std::string cells[4];
        BalancePolicy policies[] = {BalancePolicy::Uniform,
                                    BalancePolicy::Zigzag, BalancePolicy::Lpt,
                                    BalancePolicy::Ilp};
        double mean = static_cast<double>(sum) / cp;
        for (int p = 0; p < 4; ++p) {
          BalanceOptions opts;
          opts.policy = policies[p];
          opts.ilpTimeLimitSeconds = cfg.ilpSeconds;
          if (p == 3 && !cfg.ilp) {
            cells[p] = "skipped";
            continue;
          }
          cells[p] = cell(balanceBlocks(work, n, cp, opts));
        }
        std::printf("| %lldk | %lld | %s | %s | %s | %s | %.3f |\n",
                    static_cast<long long>(n / 1024),
                    static_cast<long long>(cp), cells[0].c_str(),
                    cells[1].c_str(), cells[2].c_str(), cells[3].c_str(),
                    std::max(mean, static_cast<double>(heaviest)) / mean);
      }
    }
    std::printf("\n");
  }
}

void speedTables(const Config &cfg) {
  std::vector<int64_t> lengths = {65536, 262144, 1048576};
  if (cfg.quick)
    lengths = {65536, 1048576};
  std::printf("## Per-batch balancing time (lpt, median ms)\n\n"
              "total = balanceTokens (block workloads + LPT + token lists); "
              "lpt only = balanceBlocks on precomputed workloads.\n\n"
              "| family | tokens | ranks | workloads | lpt only | total |\n"
              "|---|---|---|---|---|---|\n");
  for (MaskFamily f : {MaskFamily::Causal, MaskFamily::MllmEmbedded,
                       MaskFamily::MultimodalPacked}) {
    for (int64_t n : lengths) {
      GeneratedMask g = generateMask(f, n, cfg.seed);
      std::vector<int64_t> work;
      double wMs =
          timeMs(5, [&] { work = blockWorkloads(g.layout, g.policy); });
      for (int64_t cp : {8, 64}) {
        double lptMs = timeMs(5, [&] {
          llvm::consumeError(balanceBlocks(work, n, cp).takeError());
        });
        double totalMs = timeMs(5, [&] {
          llvm::consumeError(balanceTokens(g.layout, g.policy, cp).takeError());
        });
        std::printf("| %s | %lldk | %lld | %.2f | %.2f | %.2f |\n",
                    familyName(f), static_cast<long long>(n / 1024),
                    static_cast<long long>(cp), wMs, lptMs, totalMs);
      }
    }
  }
  std::printf("\n## Tile-map build time (median ms, 128x32 tiles)\n\n"
              "full map = every tile classified from summaries (O(tiles)); "
              "workloads = run-compressed per-row counts.\n\n"
              "| family | tokens | tiles | full map | workloads |\n"
              "|---|---|---|---|---|\n");
  std::vector<int64_t> mapLengths = {16384, 65536, 131072};
  if (cfg.quick)
    mapLengths = {16384, 65536};
  for (MaskFamily f : {MaskFamily::Causal, MaskFamily::MllmEmbedded,
                       MaskFamily::MultimodalPacked})
    for (int64_t n : mapLengths) {
      GeneratedMask g = generateMask(f, n, cfg.seed);
      double mapMs = timeMs(3, [&] { buildTileMap(g.layout, g.policy); });
      double wMs = timeMs(5, [&] { blockWorkloads(g.layout, g.policy); });
      std::printf("| %s | %lldk | %lld | %.2f | %.2f |\n", familyName(f),
                  static_cast<long long>(n / 1024),
                  static_cast<long long>((n / 128) * (n / 32)), mapMs, wMs);
    }
}

} // namespace

int main(int argc, char **argv) {
  Config cfg;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick"))
      cfg.quick = true;
    else if (!std::strcmp(argv[i], "--no-ilp"))
      cfg.ilp = false;
    else if (!std::strncmp(argv[i], "--ilp-seconds=", 14))
      cfg.ilpSeconds = std::atof(argv[i] + 14);
    else if (!std::strncmp(argv[i], "--seed=", 7))
      cfg.seed = std::strtoull(argv[i] + 7, nullptr, 10);
    else {
      std::fprintf(stderr,
                   "usage: %s [--quick] [--no-ilp] [--ilp-seconds=S] "
                   "[--seed=N]\n",
                   argv[0]);
      return 1;
    }
  }
  if (!ilpAvailable())
    cfg.ilp = false;
  qualityTables(cfg);
  speedTables(cfg);
  return 0;
}
