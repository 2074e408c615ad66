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
    sequence has more than `ilp-max-blocks` blocks; when CBC stops at
    `ilp-time-limit` without proving its split optimal, a warning says how
    far above the lower bound the split may be. The balancer runs through
    the memo `mllm-partition` priced the split with (mllm/Plan/CPSplit.h),
    so an instance is solved once. A CP degree that leaves a rank without a
    block is an error on the `mllm.module_parallel`. With `cp` = 1 the pass
    changes nothing.
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

def FrozenAnalysisPass : Pass<"mllm-frozen-analysis", "mlir::ModuleOp"> {
  let summary = "decide which layers compute weight and input gradients";
  let description = [{
    Frozen-aware backward (cornstarch-brief §B.4): over the module DAG
    encoder -> projector -> LLM, a layer computes weight gradients iff its
    part trains, and input gradients iff a trainable parameter lies strictly
    upstream of it on some path (the first trainable layer of a path needs
    none). The LLM's token embedding is a source of its own: its input is
    token ids and the projectors' outputs join the sequence after it, so it
    never needs an input gradient. Recompute happens only where some
    backward runs.

    Every `mllm.layers` op gets the unit attributes that hold for it:
    `needs_weight_grad`, `needs_input_grad` (every layer of the group) or
    `needs_input_grad_after_first` (every layer but the first: the group
    holds the first trainable layer of its path), and `recomputes`. A group
    of identical layers can differ only there. Earlier flags are replaced.
    The other passes compute the same flags with the same function
    (mllm/Plan/JobModel.h), so they do not depend on
    this pass having run.
  }];
  let dependentDialects = ["::mllm::MLLMDialect"];
  let statistics = [
    Statistic<"numWeightGrad", "weight-grad-layers",
              "layers computing weight gradients">,
    Statistic<"numInputGrad", "input-grad-layers",
              "layers computing input gradients">,
  ];
}

def PartitionPass : Pass<"mllm-partition", "mlir::ModuleOp"> {
  let summary = "partition every part's layers into pipeline stages";
  let description = [{
    Expands every part into its transformer blocks (other layers ride with
    a neighbouring block: the embedding with the first, the final norm and
    heads with the last, an encoder's projector with the encoder's last),
    prices each with the cost model (`layerCost`: workload from `mllm.data`,
    tp/cp from `mllm.module_parallel`, the GPU from `mllm.cluster`, the
    precision from `mllm.train`) and the frozen analysis (backward = weight
    gradients if they are needed + input gradients if they are needed +
    the forward again if recomputed), and partitions each part over its
    stages with `planPipeline`, using the policy of `mllm.parallel`:
    `frozen_aware` balances these times, `frozen_unaware` balances times as
    if every layer trained (and is charged the real ones), `uniform` equal
    block counts, `explicit` the `stages` lists (checked: they must place
    every block exactly once). A part with `pp 0` (`pp = auto`) gets the
    stage count that minimises the estimated iteration time within the
    GPUs of one replica (cluster GPUs / dp), memory-aware: a plan whose
    stages do not fit is chosen only when none fits. Layer times include
    the TP and CP collectives, an LLM with cp > 1 is priced at its slowest
    CP rank, and the estimate includes the P2P transfers and the memory
    caps (docs/plan-format.md). With layout `chain` every part's layers
    are one chain of stages, and a stage holding two parts is two
    `mllm.stage` ops, the later `colocated`.

    The result replaces any earlier `mllm.pipeline` op and goes at the end
    of the module, after the job it plans.
  }];
  let dependentDialects = ["::mllm::MLLMDialect"];
  let options = [
    Option<"profile", "profile", "std::string", /*default=*/"",
           "YAML file of measured per-layer times that override the "
           "analytic cost model (docs/cost-model.md)">,
    Option<"efficiency", "efficiency", "double", /*default=*/"0.5",
           "fraction of peak FLOP/s a large matmul reaches (roofline)">,
    Option<"searchBudget", "search-budget", "int64_t", /*default=*/"10000",
           "plans the search over every cut may price (docs/plan-format.md, "
           "\"Every cut\"); 0: none">,
  ];
  let statistics = [
    Statistic<"numStages", "stages", "pipeline stages recorded">,
  ];
}

def RankMapPass : Pass<"mllm-rank-map", "mlir::ModuleOp"> {
  let summary = "assign ranks to every stage and check that it fits in memory";
  let description = [{
    Lays the ranks out stage by stage in pipeline order (every encoder's
    stages, then the LLM's; with `encoders_colocated`, stage s of every
    encoder shares one set of GPUs; a `colocated` stage the GPUs of the
    stage before it), and inside a stage data-parallel replica by replica,
    context-parallel slot by slot, each a contiguous run of `tp` ranks (TP
    innermost). A stage starts on a multiple of its tp when the GPUs the
    pipeline leaves idle pay for the gap, so its TP groups stay inside
    nodes; one warning counts the groups that still straddle a node
    boundary.

    Estimates the memory of one GPU of every stage: weights, gradients and
    optimizer state of the trainable layers, and the activations saved for
    backward times the microbatches in flight in the multimodal 1F1B
    schedule (LLM stage s: P_llm - s; encoder stage s: P_e - s + P_llm;
    chain stage g of G: G - g; capped at the microbatch count, then at what
    fits, at least one; layers with no backward save nothing), with the
    planner's memory model (mllm/Plan/Memory.h). Both are recorded on the
    `mllm.stage` ops. A stage that does not fit the cluster's GPU memory
    even with one microbatch is an error on its part's
    `mllm.module_parallel`.
  }];
  let dependentDialects = ["::mllm::MLLMDialect"];
  let options = [
    Option<"checkMemory", "check-memory", "bool", /*default=*/"true",
           "report stages that exceed the GPU memory as errors">,
  ];
}

#endif // MLLM_DIALECT_MLLM_TRANSFORMS_PASSES_TD
