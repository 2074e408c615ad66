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
  let hasVerifier = 1;
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
}

def MLLM_InputOp : MLLM_Op<"input", [HasParent<"DataOp">]> {
  let summary = "the tokens one encoder contributes to each sample";
  let arguments = (ins FlatSymbolRefAttr:$encoder, MLLM_PositiveI64:$tokens,
                       MLLM_PositiveI64:$items, MLLM_Placement:$placement,
                       OptionalAttr<DenseF64ArrayAttr>:$positions,
                       MLLM_MaskPolicy:$mask);
  let assemblyFormat = [{
    $encoder `tokens` $tokens `x` $items custom<Placement>($placement, $positions)
    `mask` $mask
    attr-dict
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
                       MLLM_PositiveI64:$key_tile, DenseI64ArrayAttr:$ranges,
                       DenseI64ArrayAttr:$rank_offsets,
                       DenseI64ArrayAttr:$workload, F64Attr:$imbalance);
  let assemblyFormat = [{
    $part `cp` $cp $policy (`optimal` $optimal^)? `tokens` $tokens
    `tile` $block `x` $key_tile
    `ranks` custom<RankRanges>($ranges, $rank_offsets)
    `workload` $workload `imbalance` $imbalance attr-dict
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The [start, end) token ranges of `rank`, as pairs.
    ::llvm::SmallVector<std::pair<int64_t, int64_t>> getRankRanges(int64_t rank);
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
