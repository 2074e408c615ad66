//===- MLLMBase.td - mllm dialect definition ---------------*- tablegen -*-===//
//
// The `mllm` dialect describes a multimodal LLM training job as the user
// specified it: the model graph (encoders, projectors, the LLM, each as layer
// groups with hyperparameters and frozen flags), the data layout of a sample,
// the cluster and the parallel configuration. Every op carries the location
// of the .mllm text it came from.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_DIALECT_MLLM_IR_MLLMBASE_TD
#define MLLM_DIALECT_MLLM_IR_MLLMBASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/EnumAttr.td"

def MLLM_Dialect : Dialect {
  let name = "mllm";
  let cppNamespace = "::mllm";
  let summary = "Model graph, data layout, cluster and parallelism of an MLLM training job";
  let usePropertiesForAttributes = 1;
}

class MLLM_Op<string mnemonic, list<Trait> traits = []>
    : Op<MLLM_Dialect, mnemonic, traits>;

//===----------------------------------------------------------------------===//
// Enums
//===----------------------------------------------------------------------===//

def MLLM_ModalityKind : I32EnumAttr<"ModalityKind", "kind of input an encoder reads", [
    I32EnumAttrCase<"Image", 0, "image">,
    I32EnumAttrCase<"Audio", 1, "audio">]> {
  let cppNamespace = "::mllm";
}

def MLLM_LayerKind : I32EnumAttr<"LayerKind", "kind of a group of identical layers", [
    I32EnumAttrCase<"TokenEmbedding", 0, "token_embedding">,
    I32EnumAttrCase<"PatchEmbedding", 1, "patch_embedding">,
    I32EnumAttrCase<"AudioFrontend", 2, "audio_frontend">,
    I32EnumAttrCase<"TransformerBlock", 3, "transformer_block">,
    I32EnumAttrCase<"ConformerBlock", 4, "conformer_block">,
    I32EnumAttrCase<"Norm", 5, "norm">,
    I32EnumAttrCase<"LMHead", 6, "lm_head">,
    I32EnumAttrCase<"Linear", 7, "linear">,
    I32EnumAttrCase<"MLP", 8, "mlp">,
    I32EnumAttrCase<"AttentionPool", 9, "attention_pool">]> {
  let cppNamespace = "::mllm";
}

def MLLM_ProjectorKind : I32EnumAttr<"ProjectorKind", "projector architecture", [
    I32EnumAttrCase<"Linear", 0, "linear">,
    I32EnumAttrCase<"MLP", 1, "mlp">]> {
  let cppNamespace = "::mllm";
}

def MLLM_Recompute : I32EnumAttr<"Recompute", "activation recomputation policy", [
    I32EnumAttrCase<"None", 0, "none">,
    I32EnumAttrCase<"Full", 1, "full">,
    I32EnumAttrCase<"Selective", 2, "selective">]> {
  let cppNamespace = "::mllm";
}

def MLLM_Placement : I32EnumAttr<"Placement", "where modality tokens sit in the sequence", [
    I32EnumAttrCase<"Prepend", 0, "prepend">,
    I32EnumAttrCase<"Append", 1, "append">,
    I32EnumAttrCase<"At", 2, "at">]> {
  let cppNamespace = "::mllm";
}

def MLLM_MaskPolicy : I32EnumAttr<"MaskPolicy", "attention mask policy of a token class", [
    I32EnumAttrCase<"Causal", 0, "causal">,
    I32EnumAttrCase<"Bidirectional", 1, "bidirectional">,
    I32EnumAttrCase<"PrefixLM", 2, "prefix_lm">]> {
  let cppNamespace = "::mllm";
}

def MLLM_EncoderLayout : I32EnumAttr<"EncoderLayout", "how encoders share GPUs", [
    I32EnumAttrCase<"Parallel", 0, "encoders_parallel">,
    I32EnumAttrCase<"Colocated", 1, "encoders_colocated">,
    // Encoder and LLM layers as one chain of stages (a stage may hold the end
    // of one part and the start of the next): Megatron's "encoder in the
    // first stage" and the setting of cornstarch-brief §E.3's Fig. 1c.
    I32EnumAttrCase<"Chain", 2, "chain">]> {
  let cppNamespace = "::mllm";
}

def MLLM_PartitionPolicy : I32EnumAttr<"PartitionPolicy", "pipeline partitioning policy", [
    I32EnumAttrCase<"FrozenAware", 0, "frozen_aware">,
    I32EnumAttrCase<"FrozenUnaware", 1, "frozen_unaware">,
    I32EnumAttrCase<"Uniform", 2, "uniform">,
    I32EnumAttrCase<"Explicit", 3, "explicit">]> {
  let cppNamespace = "::mllm";
}

// How far the planner's search over every cut went (docs/plan-format.md,
// "Every cut"); mllm.pipeline's `search`.
def MLLM_SearchCoverage : I32EnumAttr<"SearchCoverage", "how far the cut search went", [
    // Every cut of the stage counts priced that could estimate faster.
    I32EnumAttrCase<"Every", 0, "every">,
    // Each part's cuts with the others' held; their joint cuts, too many
    // for the budget, were not all priced.
    I32EnumAttrCase<"PerPart", 1, "per_part">,
    // The colocated encoders' joint cut was not searched (the others'
    // cuts were, with it held).
    I32EnumAttrCase<"Colocated", 2, "colocated">,
    // The search stopped at its budget.
    I32EnumAttrCase<"Budget", 3, "budget">,
    // A part (layout chain: the chain) too large for an exact table was
    // not searched.
    I32EnumAttrCase<"TooLarge", 4, "too_large">]> {
  let cppNamespace = "::mllm";
}

def MLLM_CPBalance : I32EnumAttr<"CPBalance", "context-parallel token balancing policy", [
    I32EnumAttrCase<"LPT", 0, "lpt">,
    I32EnumAttrCase<"ILP", 1, "ilp">,
    I32EnumAttrCase<"Zigzag", 2, "zigzag">,
    I32EnumAttrCase<"Uniform", 3, "uniform">]> {
  let cppNamespace = "::mllm";
}

def MLLM_Precision : I32EnumAttr<"Precision", "training numerics", [
    I32EnumAttrCase<"BF16", 0, "bf16">,
    I32EnumAttrCase<"FP16", 1, "fp16">,
    I32EnumAttrCase<"FP32", 2, "fp32">]> {
  let cppNamespace = "::mllm";
}

def MLLM_Optimizer : I32EnumAttr<"Optimizer", "optimizer", [
    I32EnumAttrCase<"AdamW", 0, "adamw">,
    I32EnumAttrCase<"Adam", 1, "adam">,
    I32EnumAttrCase<"SGD", 2, "sgd">]> {
  let cppNamespace = "::mllm";
}

#endif // MLLM_DIALECT_MLLM_IR_MLLMBASE_TD
