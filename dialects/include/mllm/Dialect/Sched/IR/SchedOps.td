//===- SchedOps.td - sched dialect operations --------------*- tablegen -*-===//
//
// A schedule is one `sched.schedule` holding one `sched.program` per
// pipeline stage, in stage order. A program's body is its actions in the
// order every GPU of the stage executes them.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_DIALECT_SCHED_IR_SCHEDOPS_TD
#define MLLM_DIALECT_SCHED_IR_SCHEDOPS_TD

include "mllm/Dialect/Sched/IR/SchedBase.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/IR/BuiltinAttributes.td"
include "mlir/IR/CommonAttrConstraints.td"

def Sched_PositiveI64 : ConfinedAttr<I64Attr, [IntPositive]>;
def Sched_NonNegativeI64 : ConfinedAttr<I64Attr, [IntNonNegative]>;

//===----------------------------------------------------------------------===//
// Schedule and programs
//===----------------------------------------------------------------------===//

def Sched_ScheduleOp : Sched_Op<"schedule", [SymbolTable, SingleBlock,
                                             NoTerminator,
                                             IsolatedFromAbove]> {
  let summary = "the programs of all pipeline stages for one iteration";
  let description = [{
    One training iteration of `microbatches` microbatches under the
    schedule `kind`: `multimodal_1f1b` (encoder pipelines fanning into the
    LLM, warm-up depth = stages left to the loss, frozen-aware, in-flight
    microbatches capped by memory), `linear_1f1b` (the Megatron-like
    baseline: one linear pipeline, every stage a full backward) or `gpipe`
    (all forwards, then all backwards). The body holds one `sched.program`
    per pipeline stage, in stage order (`stage` 0, 1, ...).

    ```mlir
    sched.schedule multimodal_1f1b microbatches 4 {
      sched.program @vision_s0 stage 0 part "vision" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 2 {
        sched.forward mb 0
        sched.send_act mb 0 to @llm_s0 tag 0 shape [256, 2048] x bf16 bytes 1048576
        ...
      }
      ...
    }
    ```
  }];
  let arguments = (ins Sched_ScheduleKind:$kind,
                       Sched_PositiveI64:$microbatches);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    $kind `microbatches` $microbatches attr-dict-with-keyword $body
  }];
  let hasVerifier = 1;
  let hasRegionVerifier = 1;
}

def Sched_ProgramOp : Sched_Op<"program", [Symbol, SingleBlock, NoTerminator,
                                           HasParent<"ScheduleOp">]> {
  let summary = "the actions of one pipeline stage, in execution order";
  let description = [{
    The program that every GPU of pipeline stage `stage` (named after it,
    e.g. `@llm_s0`) runs. `part` is the model part the stage belongs to
    (`vision+audio` for colocated encoders), `llm` marks the LLM's stages.

    The stage's GPUs: `dp` data-parallel replicas whose first ranks are
    `first + d * stride`; each replica is `cp` context-parallel slots of
    `tp` consecutive tensor-parallel ranks, so the GPU at (d, c, t) has the
    global rank `first + d * stride + c * tp + t`. Tensor- and
    context-parallel collectives inside compute actions run over the `tp`
    and `cp` groups of one replica; `sched.all_reduce_grads` over the
    `dp x cp` GPUs with the same t.

    `max_in_flight` is the most microbatches whose activations the stage
    holds at once in this program (the memory cap of the schedule).

    The body holds only action ops. Local invariants the verifier checks,
    per microbatch: at most one forward, backward_input and backward_weight,
    and at most one send or receive of each kind per peer; receives of
    activations come before the forward, sends of activations after it;
    backward actions come after the forward and after the receives of
    gradients; a gradient send needs a backward_input before it. Only a
    program with weight gradients (a backward_weight) all-reduces
    gradients or steps the optimizer, each at most once, after the last
    backward_weight, the step after the all-reduce. Activations flow to
    later stages and gradients to earlier ones. Whether sends and receives
    pair up across programs and the whole schedule terminates is what
    `sched-verify` proves.
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, Sched_NonNegativeI64:$stage,
                       StrAttr:$part, UnitAttr:$llm,
                       Sched_NonNegativeI64:$first_rank, Sched_PositiveI64:$dp,
                       Sched_PositiveI64:$dp_stride, Sched_PositiveI64:$cp,
                       Sched_PositiveI64:$tp,
                       Sched_NonNegativeI64:$max_in_flight);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    $sym_name `stage` $stage `part` $part (`llm` $llm^)?
    `ranks` `first` $first_rank `dp` $dp `stride` $dp_stride `cp` $cp
    `tp` $tp `max_in_flight` $max_in_flight attr-dict-with-keyword $body
  }];
  let hasVerifier = 1;
  let hasRegionVerifier = 1;
  let extraClassDeclaration = [{
    /// The enclosing schedule.
    ScheduleOp getSchedule();
    /// Global ranks of the stage's GPUs, ordered by (d, c, t).
    ::llvm::SmallVector<int64_t> getRanks();
  }];
}

//===----------------------------------------------------------------------===//
// Compute actions
//===----------------------------------------------------------------------===//

class Sched_ComputeOp<string mnemonic, string what>
    : Sched_Op<mnemonic, [HasParent<"ProgramOp">]> {
  let summary = what # " of one microbatch";
  let arguments = (ins Sched_NonNegativeI64:$microbatch,
                       UnitAttr:$tp_all_reduce, UnitAttr:$cp_all_gather,
                       UnitAttr:$cp_reduce_scatter);
  let assemblyFormat = [{
    `mb` $microbatch (`tp_all_reduce` $tp_all_reduce^)?
    (`cp_all_gather` $cp_all_gather^)?
    (`cp_reduce_scatter` $cp_reduce_scatter^)? attr-dict
  }];
  let hasVerifier = 1;
}

def Sched_ForwardOp : Sched_ComputeOp<"forward", "the forward"> {
  let description = [{
    The stage's forward of microbatch `mb`. The collectives inside it are
    attributes: `tp_all_reduce` (the tensor-parallel all-reduces of the
    row-parallel outputs, when tp > 1) and `cp_all_gather` (attention
    gathers keys and values over the context-parallel group, when cp > 1).
  }];
}

def Sched_BackwardInputOp
    : Sched_ComputeOp<"backward_input", "the input-gradient backward"> {
  let description = [{
    The gradients of microbatch `mb` with respect to the stage's input
    (including the forward run again when the stage recomputes). A stage
    without input gradients (frozen analysis) has none. Collectives:
    `tp_all_reduce` (of the input gradients of column-parallel layers),
    `cp_all_gather` (keys and values again for the attention backward) and
    `cp_reduce_scatter` (key and value gradients back to the CP ranks that
    own them).
  }];
}

def Sched_BackwardWeightOp
    : Sched_ComputeOp<"backward_weight", "the weight-gradient backward"> {
  let description = [{
    The weight gradients of microbatch `mb`, accumulated locally. A frozen
    stage has none. When the stage has no `sched.backward_input` for the
    microbatch, the attention backward and its context-parallel collectives
    (`cp_all_gather`, `cp_reduce_scatter`) run here.
  }];
}

//===----------------------------------------------------------------------===//
// Point-to-point
//===----------------------------------------------------------------------===//

class Sched_P2POp<string mnemonic, string what, string dir>
    : Sched_Op<mnemonic, [HasParent<"ProgramOp">,
                          DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = what # " of one microbatch";
  let description = [{
    A point-to-point transfer between replica d of this stage and replica d
    of stage `peer`: `bytes` bytes, the tensors of `shape` (each a static
    shape and element type, `[1753, 2048] x bf16`; several tensors, as a
    colocated encoder stage sends, are joined by `+` and travel as one
    buffer in that order; their sizes add up to `bytes`). `tag` tells the
    messages between the pair apart: `sched-generate` gives a message of
    microbatch N the tag 2N for activations and 2N + 1 for gradients, and a
    program uses a tag at most once per peer and direction. A send matches
    the receive of the same kind and microbatch in the peer's program, with
    the same tag and shape, and both programs list their transfers between
    the pair in the same order.

    ```mlir
    sched.send_act mb 3 to @llm_s0 tag 6 shape [1753, 2048] x bf16 bytes 7180288
    ```
  }];
  let arguments = (ins Sched_NonNegativeI64:$microbatch,
                       FlatSymbolRefAttr:$peer, Sched_NonNegativeI64:$tag,
                       TypeArrayAttr:$shape, Sched_NonNegativeI64:$bytes);
  let assemblyFormat = "`mb` $microbatch `" # dir # "` $peer `tag` $tag "
                       "`shape` custom<MessageShape>($shape) `bytes` $bytes "
                       "attr-dict";
  let hasVerifier = 1;
}

def Sched_SendActOp : Sched_P2POp<"send_act", "send the activations", "to">;
def Sched_RecvActOp
    : Sched_P2POp<"recv_act", "receive the activations", "from">;
def Sched_SendGradOp
    : Sched_P2POp<"send_grad", "send the input gradients", "to">;
def Sched_RecvGradOp
    : Sched_P2POp<"recv_grad", "receive the output gradients", "from">;

//===----------------------------------------------------------------------===//
// Per-iteration actions
//===----------------------------------------------------------------------===//

def Sched_AllReduceGradsOp
    : Sched_Op<"all_reduce_grads", [HasParent<"ProgramOp">]> {
  let summary = "sum the weight gradients over data and context parallelism";
  let description = [{
    All-reduces the stage's `bytes` bytes of weight gradients (per GPU) over
    the `dp x cp` GPUs that hold the same tensor-parallel shard. `dp` and
    `cp` repeat the program's degrees.

    ```mlir
    sched.all_reduce_grads bytes 26542080 group dp 2 x cp 1
    ```
  }];
  let arguments = (ins Sched_NonNegativeI64:$bytes, Sched_PositiveI64:$dp,
                       Sched_PositiveI64:$cp);
  let assemblyFormat = [{
    `bytes` $bytes `group` `dp` $dp `x` `cp` $cp attr-dict
  }];
  let hasVerifier = 1;
}

def Sched_OptimizerStepOp
    : Sched_Op<"optimizer_step", [HasParent<"ProgramOp">]> {
  let summary = "update the stage's trainable parameters";
  let description = [{
    The optimizer step on the stage's trainable parameters; programs of
    frozen stages have none.
  }];
  let assemblyFormat = "attr-dict";
}

#endif // MLLM_DIALECT_SCHED_IR_SCHEDOPS_TD
