//===- BatchSplit.cpp - a batch's own context-parallel split --------------===//
#include "mllm/runtime/exec/BatchSplit.h"

#include "mllm/runtime/Balance.h"

#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <chrono>

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::exec;

const PlanCPAssignment *exec::llmAssignment(const Plan &plan) {
  if (plan.llm().cp <= 1)
    return nullptr;
  for (const PlanCPAssignment &a : plan.cpAssignments)
    if (a.part == plan.llm().name)
      return &a;
  return nullptr;
}

/// max / mean of per-rank sums of the blocks' work, the blocks given by
/// their owner.
static double imbalanceOf(llvm::ArrayRef<int64_t> work,
                          llvm::ArrayRef<int32_t> owner, int64_t cp) {
  std::vector<int64_t> sum(cp, 0);
  int64_t total = 0;
  for (size_t b = 0; b < work.size(); ++b) {
    sum[owner[b]] += work[b];
    total += work[b];
  }
  if (total == 0)
    return 0;
  return static_cast<double>(*std::max_element(sum.begin(), sum.end())) /
         (static_cast<double>(total) / static_cast<double>(cp));
}

/// The balancer's options for every batch of `assignment`: its policy, block
/// and key tile, ilp re-run as lpt.
static llvm::Expected<BalanceOptions>
balanceOptions(const PlanCPAssignment &assignment) {
  auto policy = parseBalancePolicy(assignment.policy);
  if (!policy)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "the plan's CP policy '" +
                                       assignment.policy + "' is unknown");
  BalanceOptions options;
  options.policy = *policy == BalancePolicy::Ilp ? BalancePolicy::Lpt : *policy;
  options.tiles.rows = assignment.block;
  options.tiles.cols = assignment.keyTile;
  options.tokenWeight = assignment.tokenWeight;
  return options;
}

llvm::Error exec::splitBatchForCP(const Plan &plan, MicrobatchData &batch) {
  const PlanCPAssignment *cp = llmAssignment(plan);
  if (!cp)
    return llvm::Error::success();
  auto layout = std::make_shared<BatchLayout>(*batch.layout);
  if (llvm::Error e = splitForCP(*cp, *layout))
    return e;
  batch.layout = std::move(layout);
  return llvm::Error::success();
}

llvm::Error exec::splitForCP(const PlanCPAssignment &assignment,
                             BatchLayout &layout) {
  auto start = std::chrono::steady_clock::now();
  auto balance = balanceOptions(assignment);
  if (!balance)
    return balance.takeError();
  const BalanceOptions &options = *balance;
  kernels::MaskPolicy mask; // the LLM's: the segment-aware MLLM policy
  const kernels::TokenLayout &tokens = layout.tokens;
  int64_t n = tokens.size();
  if (n != assignment.tokens)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        llvm::formatv("the batch's sequence has {0} tokens, the plan's CP "
                      "assignment {1}",
                      n, assignment.tokens)
            .str());
  auto result = balanceTokens(tokens, mask, assignment.cp, options);
  if (!result)
    return result.takeError();
  layout.cpTokens.clear();
  for (RankShard &r : result->ranks)
    layout.cpTokens.push_back(std::move(r.tokens));
  layout.cpImbalance = result->imbalance();

  // The plan's split on this batch: each block's owner from the plan's
  // token ranges (they are whole blocks).
  std::vector<int64_t> work =
      kernels::blockWorkloads(tokens, mask, options.tiles);
  std::vector<int32_t> owner(work.size(), 0);
  for (size_t r = 0; r < assignment.ranks.size(); ++r)
    for (auto [begin, end] : assignment.ranks[r])
      for (int64_t t = begin; t < end; t += assignment.block)
        if (size_t b = static_cast<size_t>(t / assignment.block);
            b < owner.size())
          owner[b] = static_cast<int32_t>(r);
  layout.cpDeclaredImbalance = imbalanceOf(work, owner, assignment.cp);
  layout.cpSeconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  return llvm::Error::success();
}

llvm::Expected<int64_t> exec::largestShare(const PlanCPAssignment &assignment) {
  auto balance = balanceOptions(assignment);
  if (!balance)
    return balance.takeError();
  const BalanceOptions &options = *balance;
  const int64_t n = assignment.tokens, block = assignment.block;
  // Zero workloads: the balancer's errors for a split of this shape (a
  // rank without a block), and the split of uniform and zigzag, which
  // ignore the workloads.
  const int64_t blocks = block > 0 ? (n + block - 1) / block : 0;
  auto result =
      balanceBlocks(std::vector<int64_t>(static_cast<size_t>(blocks), 0), n,
                    assignment.cp, options);
  if (!result)
    return result.takeError();
  int64_t most = 0;
  for (const RankShard &r : result->ranks)
    most = std::max(most, static_cast<int64_t>(r.tokens.size()));
  if (options.policy == BalancePolicy::Uniform ||
      options.policy == BalancePolicy::Zigzag || assignment.cp < 2)
    return most;
  // The other ranks hold at least the cp - 1 smallest blocks: the last
  // (perhaps short) and cp - 2 whole ones.
  const int64_t last = n - (n - 1) / block * block;
  return n - last - (assignment.cp - 2) * block;
}
