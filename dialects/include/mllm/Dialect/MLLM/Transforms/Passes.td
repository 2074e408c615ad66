//===- Passes.td - mllm dialect passes ---------------------*- tablegen -*-===//
//
// Passes on the mllm dialect: decisions the compiler makes about the job as
// the user declared it, recorded as ops and attributes so that later stages
// (and FileCheck) can read them.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_DIALECT_MLLM_TRANSFORMS_PASSES_TD
#define MLLM_DIALECT_MLLM_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def BalanceCPPass : Pass<"mllm-balance-cp", "mlir::ModuleOp"> {
  let summary = "assign the LLM's tokens to its context-parallel ranks";
  let description = [{
    For the LLM's `mllm.module_parallel` with `cp` > 1, builds the token
    layout of one sequence from `mllm.data` and its `mllm.input`s (the
    declared data layout; see docs/masks.md), computes the attention
    workload of every block of `block` tokens from the bitfield tile map,
    and splits the blocks over the `cp` ranks with the policy of
    `mllm.parallel`'s `cp_balance` (the same balancer the runtime runs on
    every batch). The result is recorded as one `mllm.cp_assignment` next to
    `mllm.parallel`, replacing an earlier one for the same part.

    `ilp` falls back to `lpt` with a warning when the build has no CBC or the
    sequence has more than `ilp-max-blocks` blocks. A CP degree that leaves a
    rank without a block is an error on the `mllm.module_parallel`. With
    `cp` = 1 the pass changes nothing.
  }];
  let dependentDialects = ["::mllm::MLLMDialect"];
  let options = [
    Option<"blockSize", "block", "int64_t", /*default=*/"128",
           "tokens per balancing block (the attention kernel's query tile)">,
    Option<"keyTile", "key-tile", "int64_t", /*default=*/"32",
           "keys per attention tile (workloads count block x key-tile "
           "tiles)">,
    Option<"ilpTimeLimit", "ilp-time-limit", "double", /*default=*/"5.0",
           "seconds CBC may spend on the ilp policy">,
    Option<"ilpMaxBlocks", "ilp-max-blocks", "int64_t", /*default=*/"512",
           "larger sequences fall back from ilp to lpt">,
    Option<"maxTokens", "max-tokens", "int64_t", /*default=*/"16777216",
           "longer sequences are left to the runtime's per-batch balancing">,
  ];
  let statistics = [
    Statistic<"numAssignments", "assignments", "CP assignments recorded">,
    Statistic<"numBlocks", "blocks", "balancing blocks assigned">,
  ];
}

#endif // MLLM_DIALECT_MLLM_TRANSFORMS_PASSES_TD
