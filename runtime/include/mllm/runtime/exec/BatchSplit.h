//===- BatchSplit.h - a batch's own context-parallel split ------*- C++ -*-===//
//
// The plan's CP assignment is balanced for the declared data layout; a
// batch of real data packs other samples, so its mask and its block
// workloads differ. Every rank re-runs the compiler's balancer
// (runtime::balanceTokens, the same library and options) on the batch's own
// layout, so that all ranks of a CP group derive the same split without a
// message, and the split's imbalance is reported next to what the plan's
// split would give on that batch.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_EXEC_BATCHSPLIT_H
#define MLLM_RUNTIME_EXEC_BATCHSPLIT_H

#include "mllm/runtime/Plan.h"
#include "mllm/runtime/exec/Chain.h"

#include "llvm/Support/Error.h"

namespace mllm::runtime::exec {

/// The plan's CP assignment of the LLM, or null when the LLM has cp 1.
const PlanCPAssignment *llmAssignment(const Plan &plan);

/// Balances `layout.tokens` over the LLM's CP ranks with the plan's policy,
/// block and key tile, and records the split and its figures in `layout`
/// (cpTokens, cpImbalance, cpDeclaredImbalance, cpSeconds). The ilp policy
/// is re-run as lpt: a time-limited solver could stop at different answers
/// on different ranks, and the ranks must agree without a message.
llvm::Error splitForCP(const PlanCPAssignment &assignment, BatchLayout &layout);

/// Under a context-parallel LLM, gives `batch` its own split (splitForCP
/// on a copy of its layout, which it must have); nothing otherwise.
llvm::Error splitBatchForCP(const Plan &plan, MicrobatchData &batch);

/// The most tokens of a sequence splitForCP can give one rank, over every
/// batch: for an executor that lays its buffers out once. The balancer
/// leaves no rank without a block, so a rank holds at most the sequence
/// less the cp - 1 smallest blocks; uniform and zigzag ignore the
/// workloads, so every batch gets their split and its largest share is the
/// bound.
llvm::Expected<int64_t> largestShare(const PlanCPAssignment &assignment);

} // namespace mllm::runtime::exec

#endif // MLLM_RUNTIME_EXEC_BATCHSPLIT_H
