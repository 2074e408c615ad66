//===- BalanceCP.cpp - Assign the LLM's tokens to its CP ranks ------------===//
//
// mllm-balance-cp: builds the token layout of one sequence from the declared
// data layout (kernels::buildSequenceLayout), balances it over the LLM's
// context-parallel ranks with the runtime's balancer (runtime::balanceTokens)
// and records the result as an mllm.cp_assignment. The runtime calls the same
// two functions on every batch, so the declared layout gets the same split
// in the plan and at run time.
//
//===----------------------------------------------------------------------===//
#include "mllm/Model/SequenceSpec.h"
#include "mllm/Plan/CPSplit.h"
#include "mllm/Transforms/MLLM/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>

namespace mllm {
#define GEN_PASS_DEF_BALANCECPPASS
#include "mllm/Transforms/MLLM/Passes.h.inc"
} // namespace mllm

using namespace mlir;
using namespace mllm;

//===----------------------------------------------------------------------===//
// From the IR to the shared libraries
//===----------------------------------------------------------------------===//

static CPBalance getCPBalance(runtime::BalancePolicy policy) {
  return *symbolizeCPBalance(runtime::policyName(policy));
}

//===----------------------------------------------------------------------===//
// The pass
//===----------------------------------------------------------------------===//

namespace {

class BalanceCP : public mllm::impl::BalanceCPPassBase<BalanceCP> {
public:
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto parallel = getFirst<ParallelOp>(module);
    if (!parallel)
      return;
    if (blockSize <= 0 || keyTile <= 0 || ilpMaxBlocks < 0 ||
        !(ilpTimeLimit > 0.0) || maxTokens <= 0) {
      module.emitError("mllm-balance-cp: the options 'block', 'key-tile', "
                       "'ilp-time-limit' and 'max-tokens' must be positive");
      return signalPassFailure();
    }
    auto model = getFirst<ModelOp>(module);
    auto data = getFirst<DataOp>(module);
    bool failed = false;
    for (auto mp : parallel.getBody().front().getOps<ModuleParallelOp>()) {
      if (mp.getCp() <= 1)
        continue;
      if (mlir::failed(balance(module, parallel, mp, model, data)))
        failed = true;
    }
    if (failed)
      signalPassFailure();
  }

private:
  LogicalResult balance(ModuleOp module, ParallelOp parallel,
                        ModuleParallelOp mp, ModelOp model, DataOp data);
};

} // namespace

LogicalResult BalanceCP::balance(ModuleOp module, ParallelOp parallel,
                                 ModuleParallelOp mp, ModelOp model,
                                 DataOp data) {
  StringRef part = mp.getPart();
  int64_t cp = mp.getCp();
  if (!data)
    return mp.emitError("balancing the tokens of '")
           << part << "' over " << cp << " CP ranks needs an 'mllm.data'";

  kernels::SequenceSpec spec = getSequenceSpec(data, model);
  std::string invalid = kernels::checkSequenceSpec(spec);
  if (!invalid.empty())
    return data.emitError("cannot lay out the sequence: ") << invalid;
  int64_t numTokens = kernels::sequenceLength(spec);
  if (numTokens != static_cast<int64_t>(data.getSeqLen()))
    return data.emitError("the layout has ")
           << numTokens << " tokens but seq_len is " << data.getSeqLen();
  if (numTokens > maxTokens) {
    mp.emitWarning("not balancing the ")
        << numTokens << " tokens of '" << part
        << "' at compile time (more than " << maxTokens
        << "); the runtime balances each batch";
    return success();
  }

  runtime::BalanceOptions options;
  options.policy = getBalancePolicy(parallel.getCpBalance());
  options.tiles.rows = blockSize;
  options.tiles.cols = keyTile;
  options.ilpTimeLimitSeconds = ilpTimeLimit;
  options.ilpMaxBlocks = ilpMaxBlocks;
  int64_t blocks = (numTokens + blockSize - 1) / blockSize;
  if (options.policy == runtime::BalancePolicy::Ilp) {
    if (!runtime::ilpAvailable()) {
      mp.emitWarning("the ilp CP balancer is not available (mllmc was built "
                     "without CBC); balancing '")
          << part << "' with lpt";
      options.policy = runtime::BalancePolicy::Lpt;
    } else if (blocks > ilpMaxBlocks) {
      mp.emitWarning("the ilp CP balancer is limited to ")
          << ilpMaxBlocks.getValue() << " blocks; balancing the " << blocks
          << " blocks of '" << part << "' with lpt";
      options.policy = runtime::BalancePolicy::Lpt;
    }
  }

  kernels::TokenLayout layout = kernels::buildSequenceLayout(spec);
  kernels::MaskPolicy mask; // the segment-aware Mllm policy
  // The block workloads and the balancer runtime::balanceTokens() runs, the
  // balancer through the memo mllm-partition priced the split with (so an
  // ilp instance is solved once).
  std::vector<int64_t> work;
  if (layout.size() >= options.tiles.rows * cp)
    work = kernels::blockWorkloads(layout, mask, options.tiles);
  // The matmuls follow the tokens: lpt and ilp balance tiles and tokens in
  // the cost model's proportion (the planner priced the same split).
  options.tokenWeight = plan::cpTokenWeight(module, work);
  auto result = plan::balanceBlocksOnce(work, layout.size(), cp, options);
  if (!result && options.policy == runtime::BalancePolicy::Ilp) {
    // A solver failure; the CP degree itself may still be fine.
    std::string why = llvm::toString(result.takeError());
    options.policy = runtime::BalancePolicy::Lpt;
    result = plan::balanceBlocksOnce(work, layout.size(), cp, options);
    if (result)
      mp.emitWarning("the ilp CP balancer failed on '")
          << part << "' (" << why << "); using lpt";
  }
  if (!result)
    return mp.emitError("cannot balance the tokens of '")
           << part << "' over " << cp
           << " CP ranks: " << llvm::toString(result.takeError());
  // A time limit that binds is part of the answer: say how far from the
  // bound the split may be.
  if (result->policy == runtime::BalancePolicy::Ilp && result->timedOut) {
    double above =
        100.0 * (result->maxCost() / static_cast<double>(std::max<int64_t>(
                                         result->lowerBound, 1)) -
                 1.0);
    mp.emitWarning(llvm::formatv(
        "the ilp CP balancer stopped at its {0} s time limit without proving "
        "the split of '{1}' optimal: its slowest rank {2} {3} tiles{4}, the "
        "lower bound is {5} ({6:f2}% above it)",
        llvm::format("%g", ilpTimeLimit.getValue()), part,
        options.tokenWeight > 0 ? "costs" : "has",
        llvm::format("%.0f", result->maxCost()),
        options.tokenWeight > 0 ? " with its tokens" : "", result->lowerBound,
        above));
  }

  // The matmuls follow the tokens: with few blocks (a short sequence) a
  // split balanced for the attention (without a token weight, or where
  // the attention outweighs the tokens) can give one rank most of them,
  // which the cost model charges at that rank's share. Said where the
  // contiguous split of whole blocks gives that rank fewer.
  auto mostTokens = [](const runtime::BalanceResult &r) {
    int64_t most = 0;
    for (const runtime::RankShard &shard : r.ranks)
      most = std::max(most, static_cast<int64_t>(shard.tokens.size()));
    return most;
  };
  double mean = static_cast<double>(numTokens) / static_cast<double>(cp);
  int64_t most = mostTokens(*result);
  if (result->policy != runtime::BalancePolicy::Uniform &&
      static_cast<double>(most) > 1.25 * mean) {
    runtime::BalanceOptions contiguous = options;
    contiguous.policy = runtime::BalancePolicy::Uniform;
    auto uniform = plan::balanceBlocksOnce(work, layout.size(), cp, contiguous);
    if (!uniform) {
      llvm::consumeError(uniform.takeError());
    } else if (int64_t fewer = mostTokens(*uniform); fewer < most) {
      std::string counts;
      llvm::raw_string_ostream os(counts);
      llvm::ListSeparator sep(", ");
      for (const runtime::RankShard &r : result->ranks)
        os << sep << r.tokens.size();
      mp.emitWarning(llvm::formatv(
          "cp_balance {0} balances the attention of '{1}' but gives its CP "
          "ranks [{2}] of {3} tokens ({4} blocks of {5}): the matmuls run at "
          "the largest share, {6:f2}x the mean; with so few blocks, "
          "cp_balance = uniform gives at most {7} tokens a rank",
          runtime::policyName(result->policy), part, counts, numTokens, blocks,
          blockSize.getValue(), static_cast<double>(most) / mean, fewer));
    }
  }

  // Per rank, its blocks as merged [start, end) token ranges.
  SmallVector<SmallVector<int64_t>> perRank(cp);
  for (int64_t b = 0; b < blocks; ++b) {
    SmallVector<int64_t> &ranges = perRank[result->blockOwner[b]];
    int64_t start = b * blockSize;
    int64_t end = std::min(numTokens, start + blockSize);
    if (!ranges.empty() && ranges.back() == start)
      ranges.back() = end;
    else
      ranges.append({start, end});
  }
  SmallVector<int64_t> flat, offsets{0}, workload;
  for (int64_t r = 0; r < cp; ++r) {
    flat.append(perRank[r]);
    offsets.push_back(static_cast<int64_t>(flat.size() / 2));
    workload.push_back(result->ranks[r].workload);
  }
  double imbalance = std::round(result->imbalance() * 1e4) / 1e4;

  // One assignment per part: a second run replaces the first.
  for (auto old : llvm::make_early_inc_range(module.getOps<CPAssignmentOp>()))
    if (old.getPart() == part)
      old.erase();

  OpBuilder builder(module.getContext());
  builder.setInsertionPointAfter(parallel);
  CPAssignmentOp::create(
      builder, mp.getLoc(), mp.getPartAttr(), builder.getI64IntegerAttr(cp),
      CPBalanceAttr::get(builder.getContext(), getCPBalance(result->policy)),
      result->provenOptimal ? builder.getUnitAttr() : UnitAttr(),
      builder.getI64IntegerAttr(numTokens),
      builder.getI64IntegerAttr(blockSize), builder.getI64IntegerAttr(keyTile),
      options.tokenWeight > 0 ? builder.getF64FloatAttr(options.tokenWeight)
                              : FloatAttr(),
      builder.getDenseI64ArrayAttr(flat), builder.getDenseI64ArrayAttr(offsets),
      builder.getDenseI64ArrayAttr(workload),
      builder.getF64FloatAttr(imbalance));
  ++numAssignments;
  numBlocks += blocks;
  return success();
}
