//===- MLLMOps.td - mllm dialect operations ----------------*- tablegen -*-===//
//
// A job is a builtin.module holding one mllm.model (the graph), one mllm.data
// (the sample layout), one mllm.cluster, one mllm.parallel and one mllm.train.
// Names inside the model (encoders, projectors, the LLM) are symbols that the
// data and parallel ops refer to.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_DIALECT_MLLM_IR_MLLMOPS_TD
#define MLLM_DIALECT_MLLM_IR_MLLMOPS_TD

include "mllm/Dialect/MLLM/IR/MLLMBase.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/IR/BuiltinAttributes.td"
include "mlir/IR/CommonAttrConstraints.td"

def MLLM_PositiveI64 : ConfinedAttr<I64Attr, [IntPositive]>;
def MLLM_NonNegativeI64 : ConfinedAttr<I64Attr, [IntNonNegative]>;

//===----------------------------------------------------------------------===//
// Model graph
//===----------------------------------------------------------------------===//

def MLLM_ModelOp : MLLM_Op<"model", [Symbol, SymbolTable, SingleBlock,
                                     NoTerminator, IsolatedFromAbove]> {
  let summary = "a multimodal LLM: encoders, their projectors and one LLM";
  let description = [{
    Holds the model's parts in dataflow order: every `mllm.encoder`, every
    `mllm.projector` (each connecting one encoder to the LLM) and exactly one
    `mllm.llm`.
  }];
  let arguments = (ins SymbolNameAttr:$sym_name);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = "$sym_name attr-dict-with-keyword $body";
  // After the parts: it reads their attributes.
  let hasRegionVerifier = 1;
  let extraClassDeclaration = [{
    /// The LLM of this model (the verifier guarantees exactly one).
    LLMOp getLLM();
  }];
}

def MLLM_EncoderOp : MLLM_Op<"encoder", [Symbol, SingleBlock, NoTerminator,
                                         HasParent<"ModelOp">]> {
  let summary = "a modality encoder";
  let description = [{
    A modality encoder (vision or audio) as an ordered list of layer groups.
    `width` is the hidden size of its output tokens, which its projector reads.
    `frozen` means none of its parameters train.
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, MLLM_ModalityKind:$modality,
                       StrAttr:$instance, MLLM_PositiveI64:$width,
                       UnitAttr:$frozen, MLLM_Recompute:$recompute);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    $sym_name `:` $instance `modality` $modality `width` $width
    (`frozen` $frozen^)? `recompute` $recompute attr-dict-with-keyword $body
  }];
  let hasVerifier = 1;
}

def MLLM_ProjectorOp : MLLM_Op<"projector", [Symbol, SingleBlock, NoTerminator,
                                             HasParent<"ModelOp">]> {
  let summary = "maps one encoder's output tokens into the LLM's hidden size";
  let description = [{
    `merge` consecutive encoder tokens are concatenated before the projection
    (Qwen2-VL's 2x2 spatial merge is `merge = 4`), so the projector reads
    `merge * width(source)` features and writes `width(target)` features.
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, FlatSymbolRefAttr:$source,
                       FlatSymbolRefAttr:$target, MLLM_ProjectorKind:$kind,
                       MLLM_PositiveI64:$merge, UnitAttr:$frozen);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    $sym_name $kind $source `->` $target `merge` $merge (`frozen` $frozen^)?
    attr-dict-with-keyword $body
  }];
  let hasVerifier = 1;
}

def MLLM_LLMOp : MLLM_Op<"llm", [Symbol, SingleBlock, NoTerminator,
                                 HasParent<"ModelOp">]> {
  let summary = "the decoder language model";
  let arguments = (ins SymbolNameAttr:$sym_name, StrAttr:$instance,
                       MLLM_PositiveI64:$width, UnitAttr:$frozen,
                       MLLM_Recompute:$recompute);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    $sym_name `:` $instance `width` $width (`frozen` $frozen^)?
    `recompute` $recompute attr-dict-with-keyword $body
  }];
  let hasVerifier = 1;
}

def MLLM_LayersOp : MLLM_Op<"layers", [ParentOneOf<["EncoderOp", "ProjectorOp",
                                                     "LLMOp"]>]> {
  let summary = "a group of identical consecutive layers";
  let description = [{
    `count` layers of one `kind`, with their hyperparameters in `config`:
    positive integers (`hidden`, `ffn`, `heads`, `kv_heads`, `head_dim`,
    `vocab`, `patch`, `channels`, `positions`, `in`, `out`, ...) and unit
    flags (`gated` feed-forward, `qkv_bias`, `bias`, `layer_norm` instead of
    RMSNorm, `tied` LM head, `class_token`). The verifier checks the keys
    each kind needs.
  }];
  let arguments = (ins StrAttr:$name, MLLM_LayerKind:$kind,
                       MLLM_PositiveI64:$count, DictionaryAttr:$config);
  let assemblyFormat = "$name `:` $kind `x` $count $config attr-dict";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Data layout
//===----------------------------------------------------------------------===//

def MLLM_DataOp : MLLM_Op<"data", [SingleBlock, NoTerminator]> {
  let summary = "the layout of one training sample and the microbatching";
  let description = [{
    A sequence holds `packing` samples; each sample has `text_tokens` text
    tokens plus, per `mllm.input`, `items` items of `tokens` tokens each.
    `seq_len` is the resulting LLM sequence length.
  }];
  let arguments = (ins MLLM_NonNegativeI64:$text_tokens,
                       MLLM_PositiveI64:$packing, MLLM_PositiveI64:$seq_len,
                       MLLM_PositiveI64:$microbatch_size,
                       MLLM_PositiveI64:$microbatches,
                       MLLM_MaskPolicy:$text_mask);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    `text` $text_tokens `packing` $packing `seq_len` $seq_len
    `microbatch` $microbatch_size `x` $microbatches `mask` $text_mask
    attr-dict-with-keyword $body
  }];
  let hasVerifier = 1;
  // After the inputs: it reads their attributes.
  let hasRegionVerifier = 1;
}

def MLLM_InputOp : MLLM_Op<"input", [HasParent<"DataOp">]> {
  let summary = "the tokens one encoder contributes to each sample";
  let description = [{
    `tokens` is what each item gives the LLM, after its projector's merge;
    `encoder_tokens` what the encoder's layers see per item, written where
    the merge does not divide it (the encoder pads its output to whole
    merge groups, so `tokens` = ceil(encoder_tokens / merge)); absent, it is
    tokens x merge.
  }];
  let arguments = (ins FlatSymbolRefAttr:$encoder, MLLM_PositiveI64:$tokens,
                       MLLM_PositiveI64:$items, MLLM_Placement:$placement,
                       OptionalAttr<DenseF64ArrayAttr>:$positions,
                       MLLM_MaskPolicy:$mask,
                       OptionalAttr<MLLM_PositiveI64>:$encoder_tokens);
  let assemblyFormat = [{
    $encoder `tokens` $tokens `x` $items custom<Placement>($placement, $positions)
    `mask` $mask (`encoder_tokens` $encoder_tokens^)?
    attr-dict
  }];
  let extraClassDeclaration = [{
    /// Tokens the encoder's layers see per item, before the merge.
    int64_t encoderTokensPerItem(int64_t merge) {
      if (auto given = getEncoderTokens())
        return static_cast<int64_t>(*given);
      return static_cast<int64_t>(getTokens()) * merge;
    }
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Cluster, parallelism, training
//===----------------------------------------------------------------------===//

def MLLM_ClusterOp : MLLM_Op<"cluster"> {
  let summary = "the GPUs and links the job runs on";
  let description = [{
    Bandwidths are in bytes per second, `peak_flops` is the dense bf16 peak in
    FLOP/s of one GPU, `memory` its capacity in bytes.
  }];
  let arguments = (ins MLLM_PositiveI64:$nodes, MLLM_PositiveI64:$gpus_per_node,
                       StrAttr:$gpu, F64Attr:$peak_flops, MLLM_PositiveI64:$memory,
                       F64Attr:$memory_bandwidth, F64Attr:$intra_node_bandwidth,
                       F64Attr:$inter_node_bandwidth);
  let assemblyFormat = [{
    $nodes `x` $gpus_per_node $gpu attr-dict
  }];
  let hasVerifier = 1;
}

def MLLM_ParallelOp : MLLM_Op<"parallel", [SingleBlock, NoTerminator]> {
  let summary = "data parallelism and the job-wide parallel policies";
  let arguments = (ins MLLM_PositiveI64:$dp, MLLM_EncoderLayout:$layout,
                       MLLM_PartitionPolicy:$partition,
                       MLLM_CPBalance:$cp_balance);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    `dp` $dp $layout `partition` $partition `cp_balance` $cp_balance
    attr-dict-with-keyword $body
  }];
  let hasVerifier = 1;
  // After the per-part configs: it reads their attributes.
  let hasRegionVerifier = 1;
  let extraClassDeclaration = [{
    /// The parallel config of model part `part`, or null.
    ModuleParallelOp lookupPart(::llvm::StringRef part);
  }];
}

def MLLM_ModuleParallelOp : MLLM_Op<"module_parallel", [HasParent<"ParallelOp">]> {
  let summary = "tensor, pipeline and context parallel degrees of one model part";
  let description = [{
    `stages`, when present, fixes the number of layers in each pipeline stage
    (explicit partition); its length equals `pp`. `pp 0` means the user wrote
    `pp = auto`: the partitioner chooses the stage count.
  }];
  let arguments = (ins FlatSymbolRefAttr:$part, MLLM_PositiveI64:$tp,
                       MLLM_NonNegativeI64:$pp, MLLM_PositiveI64:$cp,
                       OptionalAttr<DenseI64ArrayAttr>:$stages);
  let assemblyFormat = [{
    $part `tp` $tp `pp` $pp `cp` $cp (`stages` $stages^)? attr-dict
  }];
  let hasVerifier = 1;
}

def MLLM_CPAssignmentOp : MLLM_Op<"cp_assignment",
                                  [HasParent<"::mlir::ModuleOp">]> {
  let summary = "the tokens and attention work of each context-parallel rank";
  let description = [{
    Records how `mllm-balance-cp` split one sequence of `tokens` tokens of
    `part` (the LLM) over its `cp` context-parallel ranks with `policy`.
    The sequence is cut into blocks of `block` tokens (the last may be
    shorter) and every block belongs to one rank.

    `ranks` lists, per rank, the half-open token ranges `start:end` it owns,
    ascending, with adjacent blocks merged. Rank r's tokens are these ranges
    in order: the order of its hidden states, labels and RoPE positions.
    `workload` is each rank's attention work in tiles of `block` x
    `key_tile` (query x key) that the bitfield mask does not skip, and
    `imbalance` is max / mean workload, rounded to 4 decimals (0 when there
    is no work). `optimal` marks an `ilp` result that CBC proved optimal.
    `token_weight`, when present, is what one token costs besides its
    attention, in tiles (the cost model's matmul FLOPs per token over one
    tile's attention FLOPs): `lpt` and `ilp` balanced each rank's tiles +
    token_weight x tokens, and the runtime balances every batch the same.

    ```mlir
    mllm.cp_assignment @llm cp 2 lpt tokens 768 tile 128 x 32
        ranks [[128:384, 640:768], [0:128, 384:640]]
        workload [44, 40] imbalance 1.047600e+00
    ```

    Storage: `ranges` holds the [start, end) pairs of all ranks back to back
    and `rank_offsets` (cp + 1 entries) where each rank's pairs begin.
  }];
  let arguments = (ins FlatSymbolRefAttr:$part, MLLM_PositiveI64:$cp,
                       MLLM_CPBalance:$policy, UnitAttr:$optimal,
                       MLLM_PositiveI64:$tokens, MLLM_PositiveI64:$block,
                       MLLM_PositiveI64:$key_tile,
                       OptionalAttr<F64Attr>:$token_weight,
                       DenseI64ArrayAttr:$ranges,
                       DenseI64ArrayAttr:$rank_offsets,
                       DenseI64ArrayAttr:$workload, F64Attr:$imbalance);
  let assemblyFormat = [{
    $part `cp` $cp $policy (`optimal` $optimal^)? `tokens` $tokens
    `tile` $block `x` $key_tile (`token_weight` $token_weight^)?
    `ranks` custom<RankRanges>($ranges, $rank_offsets)
    `workload` $workload `imbalance` $imbalance attr-dict
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The [start, end) token ranges of `rank`, as pairs.
    ::llvm::SmallVector<std::pair<int64_t, int64_t>> getRankRanges(int64_t rank);
  }];
}

//===----------------------------------------------------------------------===//
// Pipeline plan (mllm-partition, mllm-rank-map)
//===----------------------------------------------------------------------===//

def MLLM_PipelineOp : MLLM_Op<"pipeline", [HasParent<"::mlir::ModuleOp">,
                                           SymbolTable, SingleBlock,
                                           NoTerminator]> {
  let summary = "the pipeline stages of every model part";
  let description = [{
    Written by `mllm-partition`: one `mllm.stage` per pipeline stage, every
    encoder's stages in model order, then the LLM's. `policy` is the
    partition policy that placed the stage boundaries, `gpus` the GPUs one
    data-parallel replica uses (colocated encoders share theirs),
    `bottleneck` the largest stage forward + backward time of one
    microbatch and `iteration` the estimated time of one iteration of
    `microbatches` microbatches in the multimodal 1F1B pipeline
    (`estimateIterationTime`, docs/plan-format.md). Times are in
    milliseconds, rounded to the microsecond. `search` says how far the
    search over every cut went and `priced` how many plans it priced; both
    are absent where it did not run (explicit or uniform cuts, one
    microbatch, no plan that fits).

    ```mlir
    mllm.pipeline frozen_aware encoders_parallel microbatches 64 gpus 4
        bottleneck 160.529 ms iteration 10578.106 ms search every priced 3 {
      mllm.stage @vision_s0 part @vision layers [0, 27) ...
      mllm.stage @llm_s0 part @llm layers [0, 6) ...
    }
    ```
  }];
  let arguments = (ins MLLM_PartitionPolicy:$policy,
                       MLLM_EncoderLayout:$layout,
                       MLLM_PositiveI64:$microbatches, MLLM_PositiveI64:$gpus,
                       F64Attr:$bottleneck, F64Attr:$iteration,
                       OptionalAttr<MLLM_SearchCoverage>:$search,
                       OptionalAttr<MLLM_NonNegativeI64>:$priced);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    $policy $layout `microbatches` $microbatches `gpus` $gpus
    `bottleneck` custom<Millis>($bottleneck)
    `iteration` custom<Millis>($iteration)
    (`search` $search^)? (`priced` $priced^)? attr-dict-with-keyword $body
  }];
  let hasRegionVerifier = 1;
}

def MLLM_StageOp : MLLM_Op<"stage", [Symbol, HasParent<"PipelineOp">]> {
  let summary = "one pipeline stage of one model part";
  let description = [{
    Stage of `part` holding its transformer blocks `[begin, end)` (counted
    from 0 within the part). `with` names the other layer groups the stage
    runs: the embedding (patch embedding, audio front end) with the first
    stage, the final norm, LM head or pooling head with the last, and an
    encoder's projector (`PROJECTOR.GROUP`) with the encoder's last stage.
    A part's stages are consecutive in the pipeline, in order, and cover its
    blocks exactly once. `colocated` (layout `chain` only): the stage runs on
    the GPUs of the stage before it, one chain stage holding the end of one
    part and the start of the next. `cut_to_fit`: memory moved the part's (layout
    `chain`: the chain's) stages off its fastest cut for the stage count,
    which does not fit a GPU or holds fewer microbatches in flight.

    Times are per microbatch on one GPU of the stage, in milliseconds:
    `fwd` the forward, `bwd_w` weight gradients, `bwd_d` input gradients
    and `recompute` the forward run again for activation checkpointing
    (backward = bwd_w + bwd_d + recompute; frozen layers upstream of every
    trainable layer have none of the three).

    `mllm-rank-map` adds the per-GPU memory estimate in MiB, `weights +
    grads + optimizer + transit + (activations + sends) x in-flight
    microbatches`: `sends` the activation a stage that runs a backward sends
    on, held until the gradient coming back frees it, and `transit` the
    other message buffers live at once (each printed when not 0); and the
    ranks: `[first, end)` of the global ranks, where the GPU at
    data-parallel index d, context-parallel index c and tensor-parallel index
    t has rank `first + d * dp_stride + c * cp_stride + t * tp_stride`.

    ```mlir
    mllm.stage @llm_s0 part @llm layers [0, 6) with ["embed"]
        fwd 52.614 ms bwd_w 0.000 ms bwd_d 51.403 ms recompute 52.612 ms
        memory 6512 MiB = weights 1469 + grads 0 + optimizer 0
                          + activations 1681 x 3
        ranks [1, 2) strides dp 1 cp 1 tp 1
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, FlatSymbolRefAttr:$part,
                       MLLM_NonNegativeI64:$begin, MLLM_PositiveI64:$end,
                       OptionalAttr<StrArrayAttr>:$with,
                       UnitAttr:$colocated, UnitAttr:$cut_to_fit,
                       F64Attr:$fwd, F64Attr:$bwd_w, F64Attr:$bwd_d,
                       F64Attr:$recompute,
                       OptionalAttr<MLLM_NonNegativeI64>:$memory,
                       OptionalAttr<MLLM_NonNegativeI64>:$weights,
                       OptionalAttr<MLLM_NonNegativeI64>:$grads,
                       OptionalAttr<MLLM_NonNegativeI64>:$optimizer,
                       OptionalAttr<MLLM_NonNegativeI64>:$activations,
                       OptionalAttr<MLLM_NonNegativeI64>:$sends,
                       OptionalAttr<MLLM_NonNegativeI64>:$transit,
                       OptionalAttr<MLLM_NonNegativeI64>:$in_flight,
                       OptionalAttr<MLLM_NonNegativeI64>:$first_rank,
                       OptionalAttr<MLLM_PositiveI64>:$end_rank,
                       OptionalAttr<MLLM_PositiveI64>:$dp_stride,
                       OptionalAttr<MLLM_PositiveI64>:$cp_stride,
                       OptionalAttr<MLLM_PositiveI64>:$tp_stride);
  let assemblyFormat = [{
    $sym_name `part` $part `layers` ` ` `[` $begin `,` $end `)`
    (`with` $with^)? (`colocated` $colocated^)? (`cut_to_fit` $cut_to_fit^)?
    `fwd` custom<Millis>($fwd) `bwd_w` custom<Millis>($bwd_w)
    `bwd_d` custom<Millis>($bwd_d) `recompute` custom<Millis>($recompute)
    (`memory` $memory^ `MiB` `=` `weights` $weights `+` `grads` $grads `+`
     `optimizer` $optimizer `+` (`transit` $transit^ `+`)?
     `activations` $activations (`+` `sends` $sends^)? `x` $in_flight)?
    (`ranks` ` ` `[` $first_rank^ `,` $end_rank `)` `strides` `dp` $dp_stride
     `cp` $cp_stride `tp` $tp_stride)?
    attr-dict
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// Backward time (ms): bwd_w + bwd_d + recompute.
    double getBackward() {
      return getBwdW().convertToDouble() + getBwdD().convertToDouble() +
             getRecompute().convertToDouble();
    }
  }];
}

def MLLM_TrainOp : MLLM_Op<"train"> {
  let summary = "training-loop settings";
  let arguments = (ins MLLM_PositiveI64:$steps, MLLM_Optimizer:$optimizer,
                       F64Attr:$lr, F64Attr:$weight_decay,
                       MLLM_Precision:$precision, MLLM_NonNegativeI64:$seed);
  let assemblyFormat = [{
    `steps` $steps $optimizer `lr` $lr `weight_decay` $weight_decay
    `precision` $precision `seed` $seed attr-dict
  }];
  let hasVerifier = 1;
}

#endif // MLLM_DIALECT_MLLM_IR_MLLMOPS_TD
