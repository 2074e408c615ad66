//===- CPSplit.h - a CP split as the cost model sees it ---------*- C++ -*-===//
//
// With cp > 1 the LLM's sequence is split over its CP ranks by the job's
// balancing policy (brief §C.5): ranks get unequal token counts and unequal
// shares of the attention work. The cost model prices a stage at its
// slowest rank, so the planner needs the split before it partitions, while
// mllm-balance-cp records it after: both call splitContextParallel(), which
// runs the balancer the pass runs (memoised, so the ilp policy solves each
// instance once per process), or reads the recorded mllm.cp_assignment.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_PLAN_CPSPLIT_H
#define MLLM_PLAN_CPSPLIT_H

#include "mllm/Dialect/MLLM/IR/MLLMOps.h"
#include "mllm/runtime/Balance.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mllm::plan {

/// The balancing options mllm-balance-cp uses by default.
struct CPBalanceOptions {
  int64_t block = 128, keyTile = 32;
  double ilpTimeLimit = 5.0;
  int64_t ilpMaxBlocks = 512;
};

/// runtime::balanceBlocks() with a process-wide memo keyed by every input:
/// the same instance is balanced once (the ilp policy can take seconds).
llvm::Expected<runtime::BalanceResult>
balanceBlocksOnce(llvm::ArrayRef<int64_t> blockWork, int64_t numTokens,
                  int64_t cp, const runtime::BalanceOptions &options);

/// What one token of the LLM's sequence costs besides its attention, in
/// the mask's tiles (`blockWork`, the sequence's per block;
/// BalanceOptions::tokenWeight): the cost model's FLOPs of a step of the
/// LLM's attending layers (under the frozen analysis and recomputation)
/// per token outside attention over their attention FLOPs per tile of the
/// mask (their times where compute bounds them). 0 (tiles alone) without a
/// model, data, attending LLM layer or tiles.
double cpTokenWeight(mlir::ModuleOp module, llvm::ArrayRef<int64_t> blockWork);

/// The policy a request really runs: ilp falls back to lpt without CBC or
/// above `ilpMaxBlocks` blocks (mllm-balance-cp warns about it).
runtime::BalancePolicy effectivePolicy(runtime::BalancePolicy requested,
                                       int64_t blocks,
                                       const CPBalanceOptions &options);

/// One sequence of a part over its CP ranks.
struct CPSplit {
  int64_t cp = 1;
  runtime::BalancePolicy policy = runtime::BalancePolicy::Lpt;
  int64_t sequenceTokens = 0;
  std::vector<int64_t> tokens;   ///< Per rank.
  std::vector<int64_t> workload; ///< Per rank: attention tiles (brief §C.4).
  /// What the balancer weighed a token, in tiles (cpTokenWeight).
  double tokenWeight = 0;
  int64_t totalWorkload() const;
  /// Rank r's share of the sequence's attention work (its tokens' share when
  /// the mask leaves no work at all).
  double attentionShare(int64_t r) const;
  /// max / mean workload (1 = perfect).
  double imbalance() const;
  int64_t maxTokens() const;
};

/// The split of `part`'s sequence over `cp` ranks under `policy`: the
/// recorded mllm.cp_assignment of `module` for that part when it has the
/// same degree and policy, else the balancer's answer on the declared layout
/// with `options`. nullopt when the sequence cannot be laid out or split
/// (mllm-balance-cp reports why).
std::optional<CPSplit>
splitContextParallel(mlir::ModuleOp module, llvm::StringRef part, int64_t cp,
                     CPBalance policy,
                     const CPBalanceOptions &options = CPBalanceOptions());

} // namespace mllm::plan

#endif // MLLM_PLAN_CPSPLIT_H
