//===- CPSimBench.cpp - CP policies in simulated iteration time -----------===//
//
// The CP policies on the mask families (kernels/MaskFamilies.h, brief
// §C.1), in what they cost a training iteration rather than in max/mean
// tiles (mllm-bench-cp): for each family, length, CP degree and policy, the
// balancer splits one sequence, every CP rank's Llama-3.1-8B block is
// priced by the cost model (its tokens' matmuls, its share of the
// sequence's attention, the K/V all-gather and dK/dV reduce-scatter on an
// H100 node's links), a stage of 8 blocks costs what its slowest rank
// costs, and a 4-stage frozen-LLM pipeline (16 microbatches, multimodal
// 1F1B) is simulated.
//
// Usage: mllm-bench-cp-sim [--quick] [--no-ilp] [--seed=N]
//
//===----------------------------------------------------------------------===//

#include "mllm/Plan/CostModel.h"
#include "mllm/Sched/Generate.h"
#include "mllm/Sim/Simulate.h"
#include "mllm/kernels/MaskFamilies.h"
#include "mllm/runtime/Balance.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using namespace mllm;
using namespace mllm::kernels;
using namespace mllm::runtime;

namespace {

struct Config {
  bool quick = false, ilp = true;
  uint64_t seed = 2026;
};

model::LayerShape llama8bBlock() {
  model::LayerShape s;
  s.hidden = 4096;
  s.ffn = 14336;
  s.heads = 32;
  s.kvHeads = 8;
  s.headDim = 128;
  s.gated = true;
  return s;
}

plan::Device h100() {
  plan::Device d;
  d.peakFlops = 989e12;
  d.memoryBandwidth = 3.35e12;
  d.intraNodeBandwidth = 450e9;
  d.interNodeBandwidth = 400e9;
  d.gpusPerNode = 8;
  return d;
}

constexpr int kBlocksPerStage = 8, kStages = 4, kMicrobatches = 16;

/// Seconds of one frozen block (forward, input gradient, recompute) on the
/// slowest rank of `r`.
double slowestBlock(const BalanceResult &r, int64_t tokens) {
  int64_t total = 0;
  for (const RankShard &s : r.ranks)
    total += s.workload;
  double slowest = 0;
  for (const RankShard &s : r.ranks) {
    plan::Workload w;
    w.tokens = tokens;
    w.attentionSpan = tokens;
    w.cp = static_cast<int64_t>(r.ranks.size());
    w.cpTokens = static_cast<int64_t>(s.tokens.size());
    w.cpAttentionShare =
        total > 0 ? static_cast<double>(s.workload) / total : 0.0;
    plan::LayerCost c =
        plan::layerCost(LayerKind::TransformerBlock, llama8bBlock(), w, h100());
    slowest = std::max(slowest, 2 * c.fwd + c.igrad);
  }
  return slowest;
}

/// Simulated seconds of the pipeline whose stages hold blocks of `block`
/// seconds (forward a third, the rest the input backward with recompute).
double iteration(double block, int64_t cp) {
  sched::PipelineGraph g;
  g.microbatches = kMicrobatches;
  for (int s = 0; s < kStages; ++s) {
    sched::StageInfo st;
    st.name = "llm_s" + std::to_string(s);
    st.part = "llm";
    st.isLLM = true;
    st.cp = cp;
    st.fwd = kBlocksPerStage * block / 3;
    st.bwdInput = kBlocksPerStage * block * 2 / 3;
    st.needsInputGrad = true;
    st.firstRank = s * cp;
    if (s > 0) {
      st.prev = {s - 1};
      st.gradToPrev = {true};
    }
    if (s + 1 < kStages)
      st.next = {s + 1};
    g.stages.push_back(st);
  }
  std::vector<sched::Program> programs =
      sched::generateSchedule(g, sched::ScheduleKind::MultimodalOneFOneB);
  sched::SimOptions options;
  options.recordEvents = false;
  auto r = sched::simulate(g, programs, options);
  return r ? r->iterationTime : -1;
}

void run(const Config &cfg) {
  std::vector<int64_t> lengths = {32768, 65536};
  std::vector<int64_t> degrees = {4, 8};
  if (cfg.quick) {
    lengths = {32768};
    degrees = {4};
  }
  const BalancePolicy policies[] = {BalancePolicy::Lpt, BalancePolicy::Ilp,
                                    BalancePolicy::Zigzag,
                                    BalancePolicy::Uniform};
  std::printf("Simulated iteration (s) of a 4-stage frozen Llama-3.1-8B "
              "pipeline (8 blocks per stage, 16 microbatches of one sequence, "
              "H100), each stage priced at its slowest CP rank; in brackets "
              "the policy's max/mean attention tiles. ilp: CBC, 5 s limit.\n\n"
              "| family | tokens | cp | lpt | ilp | zigzag | uniform | "
              "zigzag / lpt | uniform / lpt |\n"
              "|---|---|---|---|---|---|---|---|---|\n");
  for (MaskFamily family : allFamilies())
    for (int64_t n : lengths) {
      GeneratedMask m = generateMask(family, n, cfg.seed);
      for (int64_t cp : degrees) {
        double t[4] = {-1, -1, -1, -1};
        std::string cells[4];
        for (int p = 0; p < 4; ++p) {
          if (policies[p] == BalancePolicy::Ilp &&
              (!cfg.ilp || !ilpAvailable() || n / 128 > 512)) {
            cells[p] = "n/a";
            continue;
          }
          BalanceOptions opts;
          opts.policy = policies[p];
          auto r = balanceTokens(m.layout, m.policy, cp, opts);
          if (!r) {
            cells[p] = "error";
            llvm::consumeError(r.takeError());
            continue;
          }
          t[p] = iteration(slowestBlock(*r, n), cp);
          char buf[64];
          std::snprintf(buf, sizeof(buf), "%.3f (%.3f)", t[p], r->imbalance());
          cells[p] = buf;
        }
        std::printf("| %s | %lldk | %lld | %s | %s | %s | %s | %.3fx | "
                    "%.3fx |\n",
                    familyName(family), static_cast<long long>(n / 1024),
                    static_cast<long long>(cp), cells[0].c_str(),
                    cells[1].c_str(), cells[2].c_str(), cells[3].c_str(),
                    t[0] > 0 ? t[2] / t[0] : 0.0, t[0] > 0 ? t[3] / t[0] : 0.0);
      }
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
    else if (!std::strncmp(argv[i], "--seed=", 7))
      cfg.seed = std::strtoull(argv[i] + 7, nullptr, 10);
    else {
      std::fprintf(stderr, "usage: %s [--quick] [--no-ilp] [--seed=N]\n",
                   argv[0]);
      return 1;
    }
  }
  run(cfg);
  return 0;
}
