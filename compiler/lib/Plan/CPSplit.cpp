//===- CPSplit.cpp - a context-parallel split as the cost model sees it ---===//
//
// The memo makes the balancer a pure function of its inputs for the whole
// process: mllm-partition prices the split before mllm-balance-cp records
// it, and the ilp policy must not run CBC twice for that.
//
//===----------------------------------------------------------------------===//
#include "mllm/Plan/CPSplit.h"

#include "mllm/Model/SequenceSpec.h"
#include "mllm/Plan/CostModel.h"
#include "mllm/Plan/JobModel.h"
#include "mllm/kernels/SequenceLayout.h"

#include "llvm/ADT/STLExtras.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <tuple>

using namespace mllm;
using namespace mllm::plan;

namespace {

using MemoKey = std::tuple<std::vector<int64_t>, int64_t, int64_t, int, int64_t,
                           int64_t, double, int64_t, double>;

/// Results by every input that decides them. A compile balances one or two
/// sequences, so the memo stays small; it is bounded anyway.
struct Memo {
  std::mutex mutex;
  std::map<MemoKey, runtime::BalanceResult> results;
};

Memo &memo() {
  static Memo m;
  return m;
}

constexpr size_t kMemoEntries = 64;

} // namespace

llvm::Expected<runtime::BalanceResult>
plan::balanceBlocksOnce(llvm::ArrayRef<int64_t> blockWork, int64_t numTokens,
                        int64_t cp, const runtime::BalanceOptions &options) {
  MemoKey key{blockWork.vec(),
              numTokens,
              cp,
              static_cast<int>(options.policy),
              options.tiles.rows,
              options.tiles.cols,
              options.ilpTimeLimitSeconds,
              options.ilpMaxBlocks,
              options.tokenWeight};
  Memo &m = memo();
  {
    std::lock_guard<std::mutex> lock(m.mutex);
    auto it = m.results.find(key);
    if (it != m.results.end())
      return it->second;
  }
  llvm::Expected<runtime::BalanceResult> result =
      runtime::balanceBlocks(blockWork, numTokens, cp, options);
  if (result) {
    std::lock_guard<std::mutex> lock(m.mutex);
    if (m.results.size() >= kMemoEntries)
      m.results.clear();
    m.results.emplace(std::move(key), *result);
  }
  return result;
}

double plan::cpTokenWeight(mlir::ModuleOp module,
                           llvm::ArrayRef<int64_t> blockWork) {
  auto model = getFirst<ModelOp>(module);
  auto data = getFirst<DataOp>(module);
  double tiles = 0;
  for (int64_t w : blockWork)
    tiles += static_cast<double>(w);
  if (!model || !data || !(tiles > 0))
    return 0;
  LLMOp llm = model.getLLM();
  if (!llm)
    return 0;
  mlir::FailureOr<llvm::DenseMap<mlir::Operation *, GroupGrads>> grads =
      analyzeGradients(model);
  if (failed(grads))
    return 0;
  // One sequence, unsplit: a rank's FLOPs are linear in its tokens outside
  // attention and in its share of the mask's tiles inside it (the cost
  // model prices the dense attention at that share: docs/cost-model.md,
  // "Context parallelism"), so the ratio holds for any rank and any TP
  // degree (which divides both). Summed over the LLM's layers that attend,
  // a step's FLOPs as the stage times count them: the forward, the weight
  // and input gradients the frozen analysis leaves, the recomputation.
  Workload w;
  w.tokens = w.attentionSpan = static_cast<int64_t>(data.getSeqLen());
  double matmul = 0, attention = 0;
  for (auto group : llm->getRegion(0).front().getOps<LayersOp>()) {
    LayerCost c = layerCost(group.getKind(),
                            model::fromConfig(group.getConfig()), w, Device());
    if (!(c.attnFlops > 0))
      continue;
    const GroupGrads &g = grads->lookup(group);
    double m = c.fwdFlops - c.attnFlops, a = c.attnFlops;
    for (uint64_t i = 0; i < group.getCount(); ++i) {
      bool input = g.inputGradAt(static_cast<int64_t>(i));
      matmul += m * (1 + (g.weightGrad ? 1 : 0) + (input ? 1 : 0) +
                     (g.recompute ? 1 : 0));
      attention += a * (1 + (input ? 2 : 0) + (g.recompute ? 1 : 0));
    }
  }
  if (!(attention > 0) || w.tokens <= 0)
    return 0;
  double perToken = matmul / static_cast<double>(w.tokens);
  double perTile = attention / tiles;
  return std::clamp(perToken / perTile, 0.0, runtime::kMaxTokenWeight);
}

runtime::BalancePolicy plan::effectivePolicy(runtime::BalancePolicy requested,
                                             int64_t blocks,
                                             const CPBalanceOptions &options) {
  if (requested == runtime::BalancePolicy::Ilp &&
      (!runtime::ilpAvailable() || blocks > options.ilpMaxBlocks))
    return runtime::BalancePolicy::Lpt;
  return requested;
}

int64_t CPSplit::totalWorkload() const {
  int64_t sum = 0;
  for (int64_t w : workload)
    sum += w;
  return sum;
}

double CPSplit::attentionShare(int64_t r) const {
  int64_t total = totalWorkload();
  if (total > 0)
    return static_cast<double>(workload[r]) / static_cast<double>(total);
  return sequenceTokens > 0 ? static_cast<double>(tokens[r]) /
                                  static_cast<double>(sequenceTokens)
                            : 0.0;
}

double CPSplit::imbalance() const {
  int64_t total = totalWorkload();
  if (total <= 0 || workload.empty())
    return 0;
  int64_t most = *std::max_element(workload.begin(), workload.end());
  return static_cast<double>(most) * static_cast<double>(workload.size()) /
         static_cast<double>(total);
}

int64_t CPSplit::maxTokens() const {
  return tokens.empty() ? 0 : *std::max_element(tokens.begin(), tokens.end());
}

/// The recorded assignment of `part`, if it splits `cp` ranks with the
/// balancer's `options` (an older build's, with other tiles or another
/// token weight, is balanced again).
static std::optional<CPSplit> recorded(mlir::ModuleOp module,
                                       llvm::StringRef part, int64_t cp,
                                       const runtime::BalanceOptions &options) {
  for (CPAssignmentOp op : module.getOps<CPAssignmentOp>()) {
    double weight =
        op.getTokenWeight() ? op.getTokenWeight()->convertToDouble() : 0.0;
    if (op.getPart() != part || static_cast<int64_t>(op.getCp()) != cp ||
        getBalancePolicy(op.getPolicy()) != options.policy ||
        static_cast<int64_t>(op.getBlock()) != options.tiles.rows ||
        static_cast<int64_t>(op.getKeyTile()) != options.tiles.cols ||
        std::abs(weight - options.tokenWeight) >
            1e-12 * std::max(1.0, options.tokenWeight))
      continue;
    CPSplit split;
    split.cp = cp;
    split.policy = options.policy;
    split.tokenWeight = weight;
    split.sequenceTokens = static_cast<int64_t>(op.getTokens());
    for (int64_t r = 0; r < cp; ++r) {
      int64_t tokens = 0;
      for (auto [start, end] : op.getRankRanges(r))
        tokens += end - start;
      split.tokens.push_back(tokens);
    }
    split.workload.assign(op.getWorkload().begin(), op.getWorkload().end());
    if (static_cast<int64_t>(split.workload.size()) != cp)
      return std::nullopt;
    return split;
  }
  return std::nullopt;
}

std::optional<CPSplit>
plan::splitContextParallel(mlir::ModuleOp module, llvm::StringRef part,
                           int64_t cp, CPBalance policy,
                           const CPBalanceOptions &options) {
  auto data = getFirst<DataOp>(module);
  auto model = getFirst<ModelOp>(module);
  if (cp <= 1 || !data || options.block <= 0 || options.keyTile <= 0)
    return std::nullopt;
  kernels::SequenceSpec spec = getSequenceSpec(data, model);
  if (!kernels::checkSequenceSpec(spec).empty())
    return std::nullopt;
  int64_t numTokens = kernels::sequenceLength(spec);
  int64_t blocks = (numTokens + options.block - 1) / options.block;
  runtime::BalancePolicy wanted =
      effectivePolicy(getBalancePolicy(policy), blocks, options);

  kernels::TokenLayout layout = kernels::buildSequenceLayout(spec);
  kernels::TileShape tiles;
  tiles.rows = options.block;
  tiles.cols = options.keyTile;
  if (layout.size() < tiles.rows * cp)
    return std::nullopt;
  std::vector<int64_t> work =
      kernels::blockWorkloads(layout, kernels::MaskPolicy(), tiles);
  runtime::BalanceOptions bo;
  bo.policy = wanted;
  bo.tiles = tiles;
  bo.tokenWeight = cpTokenWeight(module, work);
  bo.ilpTimeLimitSeconds = options.ilpTimeLimit;
  bo.ilpMaxBlocks = options.ilpMaxBlocks;
  if (std::optional<CPSplit> r = recorded(module, part, cp, bo))
    return r;
  auto result = balanceBlocksOnce(work, layout.size(), cp, bo);
  if (!result && wanted == runtime::BalancePolicy::Ilp) {
    // A solver failure falls back to lpt, as mllm-balance-cp does.
    llvm::consumeError(result.takeError());
    bo.policy = runtime::BalancePolicy::Lpt;
    result = balanceBlocksOnce(work, layout.size(), cp, bo);
  }
  if (!result) {
    llvm::consumeError(result.takeError());
    return std::nullopt;
  }
  CPSplit split;
  split.cp = cp;
  split.policy = result->policy;
  split.tokenWeight = bo.tokenWeight;
  split.sequenceTokens = layout.size();
  for (const runtime::RankShard &shard : result->ranks) {
    split.tokens.push_back(static_cast<int64_t>(shard.tokens.size()));
    split.workload.push_back(shard.workload);
  }
  return split;
}
