//===- Schema.cpp - which fields each block kind accepts ------------------===//
#include "Schema.h"

#include "mllm/Dialect/MLLM/IR/MLLMEnums.h"

using namespace mllm::sema;

// The dialect's enums give the spellings of these fields (one definition;
// built before the tables below, which this file initialises after them).
static const std::string layoutChoices =
    mllm::enumChoices<mllm::EncoderLayout>();
static const std::string partitionChoices =
    mllm::enumChoices<mllm::PartitionPolicy>();
static const std::string cpBalanceChoices =
    mllm::enumChoices<mllm::CPBalance>();
static const std::string optimizerChoices =
    mllm::enumChoices<mllm::Optimizer>();
static const std::string precisionChoices =
    mllm::enumChoices<mllm::Precision>();

// Fields every transformer-style network has. (clang-format versions
// disagree on brace lists inside macros; this one is laid out by hand.)
// clang-format off
#define TRANSFORMER_FIELDS                                                     \
  {"layers", Type::Int, nullptr, "number of transformer blocks (required)"},   \
      {"hidden", Type::Int, nullptr, "model width (required)"},                \
      {"ffn", Type::Int, nullptr, "feed-forward width (required)"},            \
      {"heads", Type::Int, nullptr, "attention heads (required)"},             \
      {"kv_heads", Type::Int, nullptr,                                         \
       "key/value heads (grouped-query attention); default: heads"},           \
      {"head_dim", Type::Int, nullptr,                                         \
       "width of one head; default: "                                          \
       "hidden / heads"},                                                      \
      {"qkv_bias", Type::Bool, nullptr, "biases on q/k/v projections"},        \
      {"bias", Type::Bool, nullptr, "biases on the other linear layers"}
// clang-format on

static const FieldSpec decoder[] = {
    TRANSFORMER_FIELDS,
    {"vocab", Type::Int, nullptr, "vocabulary size (required)"},
    {"norm", Type::Enum, "rmsnorm|layernorm", "normalization; default rmsnorm"},
    {"activation", Type::Enum, "swiglu|geglu|gelu|relu|silu",
     "feed-forward activation; default swiglu"},
    {"position", Type::Enum, "rope|learned|alibi|none",
     "positional encoding; default rope"},
    {"max_positions", Type::Int, nullptr,
     "longest sequence the model supports; default 128k"},
    {"rope_theta", Type::Float, nullptr, "RoPE base; default 10000"},
    {"tie_embeddings", Type::Bool, nullptr,
     "LM head shares the embedding matrix; default false"},
};

static const FieldSpec vision[] = {
    TRANSFORMER_FIELDS,
    {"patch", Type::Int, nullptr, "patch size in pixels (required)"},
    {"image", Type::Size2D, nullptr,
     "native input size, `384` or `[width, height]` (required)"},
    {"channels", Type::Int, nullptr, "input channels; default 3"},
    {"temporal_patch", Type::Int, nullptr,
     "frames per patch (video-capable encoders); default 1"},
    {"norm", Type::Enum, "layernorm|rmsnorm",
     "normalization; default layernorm"},
    {"activation", Type::Enum, "gelu|swiglu|geglu|relu|silu",
     "feed-forward activation; default gelu"},
    {"position", Type::Enum, "learned|rope|none",
     "positional encoding; default learned"},
    {"class_token", Type::Bool, nullptr, "prepends a CLS token; default false"},
    {"pooling_head", Type::Bool, nullptr,
     "attention-pooling head after the blocks (SigLIP); default false"},
};

static const FieldSpec audio[] = {
    TRANSFORMER_FIELDS,
    {"mel_bins", Type::Int, nullptr, "mel filterbank channels; default 80"},
    {"max_frames", Type::Int, nullptr,
     "output positions per window after downsampling; default 1500"},
    {"downsample", Type::Int, nullptr,
     "time stride of the convolutional front end; default 2"},
    {"hop", Type::Duration, nullptr, "mel frame hop; default 10ms"},
    {"block", Type::Enum, "transformer|conformer",
     "block architecture; default transformer"},
    {"conv_kernel", Type::Int, nullptr,
     "conformer depthwise kernel; default 31"},
    {"norm", Type::Enum, "layernorm|rmsnorm",
     "normalization; default layernorm"},
    {"activation", Type::Enum, "gelu|swiglu|geglu|relu|silu",
     "feed-forward activation; default gelu"},
    {"position", Type::Enum, "sinusoidal|learned|rope|none",
     "positional encoding; default sinusoidal"},
};

static const FieldSpec hardware[] = {
    {"peak_bf16", Type::Flops, nullptr, "dense bf16 peak per GPU (required)"},
    {"memory", Type::Bytes, nullptr, "memory per GPU (required)"},
    {"memory_bandwidth", Type::Bandwidth, nullptr, "HBM bandwidth (required)"},
    {"intra_node_bandwidth", Type::Bandwidth, nullptr,
     "GPU-to-GPU bandwidth inside a node, per direction (required)"},
    {"inter_node_bandwidth", Type::Bandwidth, nullptr,
     "network bandwidth per node; default 200Gbps"},
};

static const FieldSpec modelFields[] = {
    {"recompute", Type::Recompute, nullptr,
     "activation recomputation for every part; default none"},
};

static const FieldSpec partSite[] = {
    {"frozen", Type::Bool, nullptr, "no parameter of this part trains"},
    {"recompute", Type::Recompute, nullptr,
     "activation recomputation: true/full, selective, false/none"},
};

static const FieldSpec projector[] = {
    {"frozen", Type::Bool, nullptr, "the projector does not train"},
    {"hidden", Type::Int, nullptr, "MLP hidden width; default: LLM width"},
    {"activation", Type::Enum, "gelu|relu|silu",
     "MLP activation; default gelu"},
    {"merge", Type::Int, nullptr,
     "encoder tokens concatenated into one LLM token; default 1"},
    {"in", Type::Int, nullptr,
     "input features (checked: encoder width x merge)"},
    {"out", Type::Int, nullptr, "output features (checked: LLM width)"},
};

static const FieldSpec data[] = {
    {"text_tokens", Type::Int, nullptr, "text tokens per sample (required)"},
    {"packing", Type::Int, nullptr,
     "samples packed in one sequence; default 1"},
    {"microbatch_size", Type::Int, nullptr,
     "sequences per microbatch; default 1"},
    {"microbatches", Type::Int, nullptr,
     "microbatches per iteration and DP replica (required)"},
    {"text_mask", Type::Enum, "causal|prefix_lm",
     "attention of text tokens; default causal"},
};

static const FieldSpec modality[] = {
    {"tokens", Type::Int, nullptr,
     "encoder tokens per item (instead of image/duration)"},
    {"image", Type::Size2D, nullptr,
     "image size, `448` or `[width, height]`; default: the encoder's"},
    {"duration", Type::Duration, nullptr,
     "audio length per item; default: one encoder window"},
    {"items", Type::Int, nullptr,
     "items of this modality per sample; default 1"},
    {"placement", Type::Placement, nullptr,
     "prepend | append | at(f, ...) with fractions of the text; default "
     "prepend"},
    {"mask", Type::Enum, "bidirectional|causal",
     "attention among one item's tokens; default bidirectional"},
};

static const FieldSpec cluster[] = {
    {"nodes", Type::Int, nullptr, "number of nodes (required)"},
    {"gpus_per_node", Type::Int, nullptr, "GPUs per node (required)"},
    {"gpu", Type::Name, nullptr, "a `hardware` profile (required)"},
    {"intra_node_bandwidth", Type::Bandwidth, nullptr,
     "overrides the profile's intra-node bandwidth"},
    {"inter_node_bandwidth", Type::Bandwidth, nullptr,
     "overrides the profile's inter-node bandwidth"},
};

static const FieldSpec parallel[] = {
    {"dp", Type::IntOrAuto, nullptr,
     "data-parallel degree; default auto (world size / GPUs per replica)"},
    {"layout", Type::Enum, layoutChoices.c_str(),
     "encoders on their own GPUs, or sharing; default encoders_parallel"},
    {"partition", Type::Enum, partitionChoices.c_str(),
     "pipeline partitioning policy; default frozen_aware"},
    {"cp_balance", Type::Enum, cpBalanceChoices.c_str(),
     "context-parallel token balancing; default lpt"},
};

static const FieldSpec partParallel[] = {
    {"tp", Type::Int, nullptr, "tensor-parallel degree; default 1"},
    {"pp", Type::IntOrAuto, nullptr,
     "pipeline stages, or auto to let the partitioner choose; default 1"},
    {"cp", Type::Int, nullptr, "context-parallel degree; default 1"},
    {"stages", Type::IntList, nullptr,
     "transformer blocks per stage (explicit partition); sums to `layers`"},
};

static const FieldSpec train[] = {
    {"steps", Type::Int, nullptr, "training iterations; default 1"},
    {"optimizer", Type::Enum, optimizerChoices.c_str(), "default adamw"},
    {"lr", Type::Float, nullptr, "learning rate; default 1e-4"},
    {"weight_decay", Type::Float, nullptr, "default 0"},
    {"precision", Type::Enum, precisionChoices.c_str(), "default bf16"},
    {"seed", Type::Int, nullptr, "random seed; default 0"},
};

Schema mllm::sema::decoderSchema() { return decoder; }
Schema mllm::sema::visionSchema() { return vision; }
Schema mllm::sema::audioSchema() { return audio; }
Schema mllm::sema::hardwareSchema() { return hardware; }
Schema mllm::sema::modelSchema() { return modelFields; }
Schema mllm::sema::partSiteSchema() { return partSite; }
Schema mllm::sema::projectorSchema() { return projector; }
Schema mllm::sema::dataSchema() { return data; }
Schema mllm::sema::modalitySchema() { return modality; }
Schema mllm::sema::clusterSchema() { return cluster; }
Schema mllm::sema::parallelSchema() { return parallel; }
Schema mllm::sema::partParallelSchema() { return partParallel; }
Schema mllm::sema::trainSchema() { return train; }

const FieldSpec *mllm::sema::lookup(Schema schema, llvm::StringRef name) {
  for (const FieldSpec &f : schema)
    if (name == f.name)
      return &f;
  return nullptr;
}
