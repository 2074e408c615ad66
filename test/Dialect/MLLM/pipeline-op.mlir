// RUN: mllm-opt %s --split-input-file --verify-diagnostics | FileCheck %s
// RUN: mllm-opt %s --split-input-file --verify-diagnostics --mlir-print-op-generic | mllm-opt --split-input-file | FileCheck %s
// The mllm.pipeline / mllm.stage verifiers.

// A valid pipeline round-trips.
// CHECK-LABEL: mllm.pipeline frozen_aware encoders_parallel microbatches 4 gpus 3 bottleneck 1.500 ms iteration 6.000 ms {
// CHECK-NEXT:    mllm.stage @vision_s0 part @vision layers [0, 6) with ["patch_embed"] fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms memory 10 MiB = weights 1 + grads 2 + optimizer 3 + activations 2 x 2 ranks [0, 1) strides dp 1 cp 1 tp 1
// CHECK-NEXT:    mllm.stage @llm_s0 part @llm layers [0, 2) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms memory 21 MiB = weights 1 + grads 2 + optimizer 3 + transit 3 + activations 2 + sends 1 x 4{{$}}
// CHECK-NEXT:    mllm.stage @llm_s1 part @llm layers [2, 6)
mllm.model @m {
  mllm.encoder @vision : "vit" modality image width 64 frozen recompute none {
    mllm.layers "patch_embed" : patch_embedding x 1 {channels = 3 : i64, hidden = 64 : i64, patch = 16 : i64, positions = 16 : i64}
    mllm.layers "blocks" : transformer_block x 6 {ffn = 256 : i64, head_dim = 16 : i64, heads = 4 : i64, hidden = 64 : i64, kv_heads = 4 : i64, layer_norm}
    mllm.layers "post_norm" : norm x 1 {hidden = 64 : i64, layer_norm}
  }
  mllm.projector @vision_projector mlp @vision -> @llm merge 1 {
    mllm.layers "mlp" : mlp x 1 {hidden = 128 : i64, in = 64 : i64, out = 128 : i64}
  }
  mllm.llm @llm : "lm" width 128 frozen recompute none {
    mllm.layers "embed" : token_embedding x 1 {hidden = 128 : i64, vocab = 1000 : i64}
    mllm.layers "blocks" : transformer_block x 6 {ffn = 512 : i64, gated, head_dim = 32 : i64, heads = 4 : i64, hidden = 128 : i64, kv_heads = 2 : i64}
    mllm.layers "final_norm" : norm x 1 {hidden = 128 : i64}
    mllm.layers "lm_head" : lm_head x 1 {hidden = 128 : i64, vocab = 1000 : i64}
  }
}
mllm.data text 240 packing 1 seq_len 256 microbatch 1 x 4 mask causal {
  mllm.input @vision tokens 16 x 1 prepend mask bidirectional
}
mllm.cluster 1 x 4 "a40" {inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 48000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, peak_flops = 1.497000e+14 : f64}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  mllm.module_parallel @vision tp 1 pp 1 cp 1
  mllm.module_parallel @llm tp 1 pp 2 cp 1
}
mllm.pipeline frozen_aware encoders_parallel microbatches 4 gpus 3 bottleneck 1.5 ms iteration 6.0 ms {
  mllm.stage @vision_s0 part @vision layers [0, 6) with ["patch_embed"] fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms memory 10 MiB = weights 1 + grads 2 + optimizer 3 + activations 2 x 2 ranks [0, 1) strides dp 1 cp 1 tp 1
  mllm.stage @llm_s0 part @llm layers [0, 2) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms memory 21 MiB = weights 1 + grads 2 + optimizer 3 + transit 3 + activations 2 + sends 1 x 4
  mllm.stage @llm_s1 part @llm layers [2, 6) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
}

// -----

// A gap between stages.
mllm.model @m {
  mllm.encoder @vision : "vit" modality image width 64 frozen recompute none {
    mllm.layers "patch_embed" : patch_embedding x 1 {channels = 3 : i64, hidden = 64 : i64, patch = 16 : i64, positions = 16 : i64}
    mllm.layers "blocks" : transformer_block x 6 {ffn = 256 : i64, head_dim = 16 : i64, heads = 4 : i64, hidden = 64 : i64, kv_heads = 4 : i64, layer_norm}
    mllm.layers "post_norm" : norm x 1 {hidden = 64 : i64, layer_norm}
  }
  mllm.projector @vision_projector mlp @vision -> @llm merge 1 {
    mllm.layers "mlp" : mlp x 1 {hidden = 128 : i64, in = 64 : i64, out = 128 : i64}
  }
  mllm.llm @llm : "lm" width 128 frozen recompute none {
    mllm.layers "embed" : token_embedding x 1 {hidden = 128 : i64, vocab = 1000 : i64}
    mllm.layers "blocks" : transformer_block x 6 {ffn = 512 : i64, gated, head_dim = 32 : i64, heads = 4 : i64, hidden = 128 : i64, kv_heads = 2 : i64}
    mllm.layers "final_norm" : norm x 1 {hidden = 128 : i64}
    mllm.layers "lm_head" : lm_head x 1 {hidden = 128 : i64, vocab = 1000 : i64}
  }
}
mllm.data text 240 packing 1 seq_len 256 microbatch 1 x 4 mask causal {
  mllm.input @vision tokens 16 x 1 prepend mask bidirectional
}
mllm.cluster 1 x 4 "a40" {inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 48000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, peak_flops = 1.497000e+14 : f64}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  mllm.module_parallel @vision tp 1 pp 1 cp 1
  mllm.module_parallel @llm tp 1 pp 2 cp 1
}
mllm.pipeline frozen_aware encoders_parallel microbatches 4 gpus 3 bottleneck 1.5 ms iteration 6.0 ms {
  mllm.stage @vision_s0 part @vision layers [0, 6) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s0 part @llm layers [0, 2) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  // expected-error @below {{starts at layer 3 but the previous stage of 'llm' ends at 2}}
  mllm.stage @llm_s1 part @llm layers [3, 6) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
}

// -----

// Stages that do not cover the part.
mllm.model @m {
  mllm.encoder @vision : "vit" modality image width 64 frozen recompute none {
    mllm.layers "patch_embed" : patch_embedding x 1 {channels = 3 : i64, hidden = 64 : i64, patch = 16 : i64, positions = 16 : i64}
    mllm.layers "blocks" : transformer_block x 6 {ffn = 256 : i64, head_dim = 16 : i64, heads = 4 : i64, hidden = 64 : i64, kv_heads = 4 : i64, layer_norm}
    mllm.layers "post_norm" : norm x 1 {hidden = 64 : i64, layer_norm}
  }
  mllm.projector @vision_projector mlp @vision -> @llm merge 1 {
    mllm.layers "mlp" : mlp x 1 {hidden = 128 : i64, in = 64 : i64, out = 128 : i64}
  }
  mllm.llm @llm : "lm" width 128 frozen recompute none {
    mllm.layers "embed" : token_embedding x 1 {hidden = 128 : i64, vocab = 1000 : i64}
    mllm.layers "blocks" : transformer_block x 6 {ffn = 512 : i64, gated, head_dim = 32 : i64, heads = 4 : i64, hidden = 128 : i64, kv_heads = 2 : i64}
    mllm.layers "final_norm" : norm x 1 {hidden = 128 : i64}
    mllm.layers "lm_head" : lm_head x 1 {hidden = 128 : i64, vocab = 1000 : i64}
  }
}
mllm.data text 240 packing 1 seq_len 256 microbatch 1 x 4 mask causal {
  mllm.input @vision tokens 16 x 1 prepend mask bidirectional
}
mllm.cluster 1 x 4 "a40" {inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 48000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, peak_flops = 1.497000e+14 : f64}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  mllm.module_parallel @vision tp 1 pp 1 cp 1
  mllm.module_parallel @llm tp 1 pp 2 cp 1
}
// expected-error @below {{stages of 'llm' cover layers [0, 5) but it has 6}}
mllm.pipeline frozen_aware encoders_parallel microbatches 4 gpus 3 bottleneck 1.5 ms iteration 6.0 ms {
  mllm.stage @vision_s0 part @vision layers [0, 6) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s0 part @llm layers [0, 2) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s1 part @llm layers [2, 5) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
}

// -----

// The LLM before the encoder.
mllm.model @m {
  mllm.encoder @vision : "vit" modality image width 64 frozen recompute none {
    mllm.layers "patch_embed" : patch_embedding x 1 {channels = 3 : i64, hidden = 64 : i64, patch = 16 : i64, positions = 16 : i64}
    mllm.layers "blocks" : transformer_block x 6 {ffn = 256 : i64, head_dim = 16 : i64, heads = 4 : i64, hidden = 64 : i64, kv_heads = 4 : i64, layer_norm}
    mllm.layers "post_norm" : norm x 1 {hidden = 64 : i64, layer_norm}
  }
  mllm.projector @vision_projector mlp @vision -> @llm merge 1 {
    mllm.layers "mlp" : mlp x 1 {hidden = 128 : i64, in = 64 : i64, out = 128 : i64}
  }
  mllm.llm @llm : "lm" width 128 frozen recompute none {
    mllm.layers "embed" : token_embedding x 1 {hidden = 128 : i64, vocab = 1000 : i64}
    mllm.layers "blocks" : transformer_block x 6 {ffn = 512 : i64, gated, head_dim = 32 : i64, heads = 4 : i64, hidden = 128 : i64, kv_heads = 2 : i64}
    mllm.layers "final_norm" : norm x 1 {hidden = 128 : i64}
    mllm.layers "lm_head" : lm_head x 1 {hidden = 128 : i64, vocab = 1000 : i64}
  }
}
mllm.data text 240 packing 1 seq_len 256 microbatch 1 x 4 mask causal {
  mllm.input @vision tokens 16 x 1 prepend mask bidirectional
}
mllm.cluster 1 x 4 "a40" {inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 48000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, peak_flops = 1.497000e+14 : f64}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  mllm.module_parallel @vision tp 1 pp 1 cp 1
  mllm.module_parallel @llm tp 1 pp 2 cp 1
}
// expected-error @below {{stages of 'vision' are out of order: encoders in model order, then the LLM}}
mllm.pipeline frozen_aware encoders_parallel microbatches 4 gpus 3 bottleneck 1.5 ms iteration 6.0 ms {
  mllm.stage @llm_s0 part @llm layers [0, 2) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s1 part @llm layers [2, 6) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @vision_s0 part @vision layers [0, 6) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
}

// -----

// A part's stages split by another part's.
mllm.model @m {
  mllm.encoder @vision : "vit" modality image width 64 frozen recompute none {
    mllm.layers "patch_embed" : patch_embedding x 1 {channels = 3 : i64, hidden = 64 : i64, patch = 16 : i64, positions = 16 : i64}
    mllm.layers "blocks" : transformer_block x 6 {ffn = 256 : i64, head_dim = 16 : i64, heads = 4 : i64, hidden = 64 : i64, kv_heads = 4 : i64, layer_norm}
    mllm.layers "post_norm" : norm x 1 {hidden = 64 : i64, layer_norm}
  }
  mllm.projector @vision_projector mlp @vision -> @llm merge 1 {
    mllm.layers "mlp" : mlp x 1 {hidden = 128 : i64, in = 64 : i64, out = 128 : i64}
  }
  mllm.llm @llm : "lm" width 128 frozen recompute none {
    mllm.layers "embed" : token_embedding x 1 {hidden = 128 : i64, vocab = 1000 : i64}
    mllm.layers "blocks" : transformer_block x 6 {ffn = 512 : i64, gated, head_dim = 32 : i64, heads = 4 : i64, hidden = 128 : i64, kv_heads = 2 : i64}
    mllm.layers "final_norm" : norm x 1 {hidden = 128 : i64}
    mllm.layers "lm_head" : lm_head x 1 {hidden = 128 : i64, vocab = 1000 : i64}
  }
}
mllm.data text 240 packing 1 seq_len 256 microbatch 1 x 4 mask causal {
  mllm.input @vision tokens 16 x 1 prepend mask bidirectional
}
mllm.cluster 1 x 4 "a40" {inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 48000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, peak_flops = 1.497000e+14 : f64}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  mllm.module_parallel @vision tp 1 pp 1 cp 1
  mllm.module_parallel @llm tp 1 pp 2 cp 1
}
mllm.pipeline frozen_aware encoders_parallel microbatches 4 gpus 3 bottleneck 1.5 ms iteration 6.0 ms {
  mllm.stage @llm_s0 part @llm layers [0, 2) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @vision_s0 part @vision layers [0, 6) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  // expected-error @below {{stages of 'llm' must be consecutive in the pipeline}}
  mllm.stage @llm_s1 part @llm layers [2, 6) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
}

// -----

// A stage count other than the fixed pp.
mllm.model @m {
  mllm.encoder @vision : "vit" modality image width 64 frozen recompute none {
    mllm.layers "patch_embed" : patch_embedding x 1 {channels = 3 : i64, hidden = 64 : i64, patch = 16 : i64, positions = 16 : i64}
    mllm.layers "blocks" : transformer_block x 6 {ffn = 256 : i64, head_dim = 16 : i64, heads = 4 : i64, hidden = 64 : i64, kv_heads = 4 : i64, layer_norm}
    mllm.layers "post_norm" : norm x 1 {hidden = 64 : i64, layer_norm}
  }
  mllm.projector @vision_projector mlp @vision -> @llm merge 1 {
    mllm.layers "mlp" : mlp x 1 {hidden = 128 : i64, in = 64 : i64, out = 128 : i64}
  }
  mllm.llm @llm : "lm" width 128 frozen recompute none {
    mllm.layers "embed" : token_embedding x 1 {hidden = 128 : i64, vocab = 1000 : i64}
    mllm.layers "blocks" : transformer_block x 6 {ffn = 512 : i64, gated, head_dim = 32 : i64, heads = 4 : i64, hidden = 128 : i64, kv_heads = 2 : i64}
    mllm.layers "final_norm" : norm x 1 {hidden = 128 : i64}
    mllm.layers "lm_head" : lm_head x 1 {hidden = 128 : i64, vocab = 1000 : i64}
  }
}
mllm.data text 240 packing 1 seq_len 256 microbatch 1 x 4 mask causal {
  mllm.input @vision tokens 16 x 1 prepend mask bidirectional
}
mllm.cluster 1 x 4 "a40" {inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 48000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, peak_flops = 1.497000e+14 : f64}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  mllm.module_parallel @vision tp 1 pp 1 cp 1
  mllm.module_parallel @llm tp 1 pp 2 cp 1
}
// expected-error @below {{has 1 stages of 'llm' but its pp is 2}}
mllm.pipeline frozen_aware encoders_parallel microbatches 4 gpus 3 bottleneck 1.5 ms iteration 6.0 ms {
  mllm.stage @vision_s0 part @vision layers [0, 6) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s0 part @llm layers [0, 6) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
}

// -----

// A part missing.
mllm.model @m {
  mllm.encoder @vision : "vit" modality image width 64 frozen recompute none {
    mllm.layers "patch_embed" : patch_embedding x 1 {channels = 3 : i64, hidden = 64 : i64, patch = 16 : i64, positions = 16 : i64}
    mllm.layers "blocks" : transformer_block x 6 {ffn = 256 : i64, head_dim = 16 : i64, heads = 4 : i64, hidden = 64 : i64, kv_heads = 4 : i64, layer_norm}
    mllm.layers "post_norm" : norm x 1 {hidden = 64 : i64, layer_norm}
  }
  mllm.projector @vision_projector mlp @vision -> @llm merge 1 {
    mllm.layers "mlp" : mlp x 1 {hidden = 128 : i64, in = 64 : i64, out = 128 : i64}
  }
  mllm.llm @llm : "lm" width 128 frozen recompute none {
    mllm.layers "embed" : token_embedding x 1 {hidden = 128 : i64, vocab = 1000 : i64}
    mllm.layers "blocks" : transformer_block x 6 {ffn = 512 : i64, gated, head_dim = 32 : i64, heads = 4 : i64, hidden = 128 : i64, kv_heads = 2 : i64}
    mllm.layers "final_norm" : norm x 1 {hidden = 128 : i64}
    mllm.layers "lm_head" : lm_head x 1 {hidden = 128 : i64, vocab = 1000 : i64}
  }
}
mllm.data text 240 packing 1 seq_len 256 microbatch 1 x 4 mask causal {
  mllm.input @vision tokens 16 x 1 prepend mask bidirectional
}
mllm.cluster 1 x 4 "a40" {inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 48000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, peak_flops = 1.497000e+14 : f64}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  mllm.module_parallel @vision tp 1 pp 1 cp 1
  mllm.module_parallel @llm tp 1 pp 2 cp 1
}
// expected-error @below {{has no stage of 'vision'}}
mllm.pipeline frozen_aware encoders_parallel microbatches 4 gpus 3 bottleneck 1.5 ms iteration 6.0 ms {
  mllm.stage @llm_s0 part @llm layers [0, 2) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s1 part @llm layers [2, 6) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
}

// -----

// An empty layer range.
mllm.model @m {
  mllm.encoder @vision : "vit" modality image width 64 frozen recompute none {
    mllm.layers "patch_embed" : patch_embedding x 1 {channels = 3 : i64, hidden = 64 : i64, patch = 16 : i64, positions = 16 : i64}
    mllm.layers "blocks" : transformer_block x 6 {ffn = 256 : i64, head_dim = 16 : i64, heads = 4 : i64, hidden = 64 : i64, kv_heads = 4 : i64, layer_norm}
    mllm.layers "post_norm" : norm x 1 {hidden = 64 : i64, layer_norm}
  }
  mllm.projector @vision_projector mlp @vision -> @llm merge 1 {
    mllm.layers "mlp" : mlp x 1 {hidden = 128 : i64, in = 64 : i64, out = 128 : i64}
  }
  mllm.llm @llm : "lm" width 128 frozen recompute none {
    mllm.layers "embed" : token_embedding x 1 {hidden = 128 : i64, vocab = 1000 : i64}
    mllm.layers "blocks" : transformer_block x 6 {ffn = 512 : i64, gated, head_dim = 32 : i64, heads = 4 : i64, hidden = 128 : i64, kv_heads = 2 : i64}
    mllm.layers "final_norm" : norm x 1 {hidden = 128 : i64}
    mllm.layers "lm_head" : lm_head x 1 {hidden = 128 : i64, vocab = 1000 : i64}
  }
}
mllm.data text 240 packing 1 seq_len 256 microbatch 1 x 4 mask causal {
  mllm.input @vision tokens 16 x 1 prepend mask bidirectional
}
mllm.cluster 1 x 4 "a40" {inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 48000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, peak_flops = 1.497000e+14 : f64}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  mllm.module_parallel @vision tp 1 pp 1 cp 1
  mllm.module_parallel @llm tp 1 pp 2 cp 1
}
mllm.pipeline frozen_aware encoders_parallel microbatches 4 gpus 3 bottleneck 1.5 ms iteration 6.0 ms {
  mllm.stage @vision_s0 part @vision layers [0, 6) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  // expected-error @below {{layer range [2, 2) is empty}}
  mllm.stage @llm_s0 part @llm layers [2, 2) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s1 part @llm layers [2, 6) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
}

// -----

// A memory total that is not the sum.
mllm.model @m {
  mllm.encoder @vision : "vit" modality image width 64 frozen recompute none {
    mllm.layers "patch_embed" : patch_embedding x 1 {channels = 3 : i64, hidden = 64 : i64, patch = 16 : i64, positions = 16 : i64}
    mllm.layers "blocks" : transformer_block x 6 {ffn = 256 : i64, head_dim = 16 : i64, heads = 4 : i64, hidden = 64 : i64, kv_heads = 4 : i64, layer_norm}
    mllm.layers "post_norm" : norm x 1 {hidden = 64 : i64, layer_norm}
  }
  mllm.projector @vision_projector mlp @vision -> @llm merge 1 {
    mllm.layers "mlp" : mlp x 1 {hidden = 128 : i64, in = 64 : i64, out = 128 : i64}
  }
  mllm.llm @llm : "lm" width 128 frozen recompute none {
    mllm.layers "embed" : token_embedding x 1 {hidden = 128 : i64, vocab = 1000 : i64}
    mllm.layers "blocks" : transformer_block x 6 {ffn = 512 : i64, gated, head_dim = 32 : i64, heads = 4 : i64, hidden = 128 : i64, kv_heads = 2 : i64}
    mllm.layers "final_norm" : norm x 1 {hidden = 128 : i64}
    mllm.layers "lm_head" : lm_head x 1 {hidden = 128 : i64, vocab = 1000 : i64}
  }
}
mllm.data text 240 packing 1 seq_len 256 microbatch 1 x 4 mask causal {
  mllm.input @vision tokens 16 x 1 prepend mask bidirectional
}
mllm.cluster 1 x 4 "a40" {inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 48000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, peak_flops = 1.497000e+14 : f64}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  mllm.module_parallel @vision tp 1 pp 1 cp 1
  mllm.module_parallel @llm tp 1 pp 2 cp 1
}
mllm.pipeline frozen_aware encoders_parallel microbatches 4 gpus 3 bottleneck 1.5 ms iteration 6.0 ms {
  // expected-error @below {{memory 11 MiB is not weights + grads + optimizer + transit + (activations + sends) x in-flight = 10 MiB}}
  mllm.stage @vision_s0 part @vision layers [0, 6) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms memory 11 MiB = weights 1 + grads 2 + optimizer 3 + activations 2 x 2
  mllm.stage @llm_s0 part @llm layers [0, 2) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s1 part @llm layers [2, 6) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
}

// -----

// The messages of the estimate count, transit once, sends per microbatch.
mllm.model @m {
  mllm.encoder @vision : "vit" modality image width 64 frozen recompute none {
    mllm.layers "patch_embed" : patch_embedding x 1 {channels = 3 : i64, hidden = 64 : i64, patch = 16 : i64, positions = 16 : i64}
    mllm.layers "blocks" : transformer_block x 6 {ffn = 256 : i64, head_dim = 16 : i64, heads = 4 : i64, hidden = 64 : i64, kv_heads = 4 : i64, layer_norm}
    mllm.layers "post_norm" : norm x 1 {hidden = 64 : i64, layer_norm}
  }
  mllm.projector @vision_projector mlp @vision -> @llm merge 1 {
    mllm.layers "mlp" : mlp x 1 {hidden = 128 : i64, in = 64 : i64, out = 128 : i64}
  }
  mllm.llm @llm : "lm" width 128 frozen recompute none {
    mllm.layers "embed" : token_embedding x 1 {hidden = 128 : i64, vocab = 1000 : i64}
    mllm.layers "blocks" : transformer_block x 6 {ffn = 512 : i64, gated, head_dim = 32 : i64, heads = 4 : i64, hidden = 128 : i64, kv_heads = 2 : i64}
    mllm.layers "final_norm" : norm x 1 {hidden = 128 : i64}
    mllm.layers "lm_head" : lm_head x 1 {hidden = 128 : i64, vocab = 1000 : i64}
  }
}
mllm.data text 240 packing 1 seq_len 256 microbatch 1 x 4 mask causal {
  mllm.input @vision tokens 16 x 1 prepend mask bidirectional
}
mllm.cluster 1 x 4 "a40" {inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 48000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, peak_flops = 1.497000e+14 : f64}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  mllm.module_parallel @vision tp 1 pp 1 cp 1
  mllm.module_parallel @llm tp 1 pp 2 cp 1
}
mllm.pipeline frozen_aware encoders_parallel microbatches 4 gpus 3 bottleneck 1.5 ms iteration 6.0 ms {
  // expected-error @below {{memory 10 MiB is not weights + grads + optimizer + transit + (activations + sends) x in-flight = 15 MiB}}
  mllm.stage @vision_s0 part @vision layers [0, 6) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms memory 10 MiB = weights 1 + grads 2 + optimizer 3 + transit 1 + activations 2 + sends 2 x 2
  mllm.stage @llm_s0 part @llm layers [0, 2) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s1 part @llm layers [2, 6) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
}

// -----

// Messages without the estimate they belong to.
mllm.model @m {
  mllm.encoder @vision : "vit" modality image width 64 frozen recompute none {
    mllm.layers "patch_embed" : patch_embedding x 1 {channels = 3 : i64, hidden = 64 : i64, patch = 16 : i64, positions = 16 : i64}
    mllm.layers "blocks" : transformer_block x 6 {ffn = 256 : i64, head_dim = 16 : i64, heads = 4 : i64, hidden = 64 : i64, kv_heads = 4 : i64, layer_norm}
    mllm.layers "post_norm" : norm x 1 {hidden = 64 : i64, layer_norm}
  }
  mllm.projector @vision_projector mlp @vision -> @llm merge 1 {
    mllm.layers "mlp" : mlp x 1 {hidden = 128 : i64, in = 64 : i64, out = 128 : i64}
  }
  mllm.llm @llm : "lm" width 128 frozen recompute none {
    mllm.layers "embed" : token_embedding x 1 {hidden = 128 : i64, vocab = 1000 : i64}
    mllm.layers "blocks" : transformer_block x 6 {ffn = 512 : i64, gated, head_dim = 32 : i64, heads = 4 : i64, hidden = 128 : i64, kv_heads = 2 : i64}
    mllm.layers "final_norm" : norm x 1 {hidden = 128 : i64}
    mllm.layers "lm_head" : lm_head x 1 {hidden = 128 : i64, vocab = 1000 : i64}
  }
}
mllm.data text 240 packing 1 seq_len 256 microbatch 1 x 4 mask causal {
  mllm.input @vision tokens 16 x 1 prepend mask bidirectional
}
mllm.cluster 1 x 4 "a40" {inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 48000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, peak_flops = 1.497000e+14 : f64}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  mllm.module_parallel @vision tp 1 pp 1 cp 1
  mllm.module_parallel @llm tp 1 pp 2 cp 1
}
mllm.pipeline frozen_aware encoders_parallel microbatches 4 gpus 3 bottleneck 1.5 ms iteration 6.0 ms {
  // expected-error @below {{has 'sends' without the memory estimate it is part of}}
  mllm.stage @vision_s0 part @vision layers [0, 6) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms {sends = 3 : i64}
  mllm.stage @llm_s0 part @llm layers [0, 2) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s1 part @llm layers [2, 6) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
}

// -----

// Rank strides that do not put tp innermost.
mllm.model @m {
  mllm.encoder @vision : "vit" modality image width 64 frozen recompute none {
    mllm.layers "patch_embed" : patch_embedding x 1 {channels = 3 : i64, hidden = 64 : i64, patch = 16 : i64, positions = 16 : i64}
    mllm.layers "blocks" : transformer_block x 6 {ffn = 256 : i64, head_dim = 16 : i64, heads = 4 : i64, hidden = 64 : i64, kv_heads = 4 : i64, layer_norm}
    mllm.layers "post_norm" : norm x 1 {hidden = 64 : i64, layer_norm}
  }
  mllm.projector @vision_projector mlp @vision -> @llm merge 1 {
    mllm.layers "mlp" : mlp x 1 {hidden = 128 : i64, in = 64 : i64, out = 128 : i64}
  }
  mllm.llm @llm : "lm" width 128 frozen recompute none {
    mllm.layers "embed" : token_embedding x 1 {hidden = 128 : i64, vocab = 1000 : i64}
    mllm.layers "blocks" : transformer_block x 6 {ffn = 512 : i64, gated, head_dim = 32 : i64, heads = 4 : i64, hidden = 128 : i64, kv_heads = 2 : i64}
    mllm.layers "final_norm" : norm x 1 {hidden = 128 : i64}
    mllm.layers "lm_head" : lm_head x 1 {hidden = 128 : i64, vocab = 1000 : i64}
  }
}
mllm.data text 240 packing 1 seq_len 256 microbatch 1 x 4 mask causal {
  mllm.input @vision tokens 16 x 1 prepend mask bidirectional
}
mllm.cluster 1 x 4 "a40" {inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 48000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, peak_flops = 1.497000e+14 : f64}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  mllm.module_parallel @vision tp 1 pp 1 cp 1
  mllm.module_parallel @llm tp 1 pp 2 cp 1
}
mllm.pipeline frozen_aware encoders_parallel microbatches 4 gpus 3 bottleneck 1.5 ms iteration 6.0 ms {
  // expected-error @below {{rank strides dp 2 cp 1 tp 2 do not lay out the 4 ranks with tp innermost}}
  mllm.stage @vision_s0 part @vision layers [0, 6) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms ranks [0, 4) strides dp 2 cp 1 tp 2
  mllm.stage @llm_s0 part @llm layers [0, 2) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s1 part @llm layers [2, 6) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
}

// -----

// Only stages inside.
mllm.model @m {
  mllm.encoder @vision : "vit" modality image width 64 frozen recompute none {
    mllm.layers "patch_embed" : patch_embedding x 1 {channels = 3 : i64, hidden = 64 : i64, patch = 16 : i64, positions = 16 : i64}
    mllm.layers "blocks" : transformer_block x 6 {ffn = 256 : i64, head_dim = 16 : i64, heads = 4 : i64, hidden = 64 : i64, kv_heads = 4 : i64, layer_norm}
    mllm.layers "post_norm" : norm x 1 {hidden = 64 : i64, layer_norm}
  }
  mllm.projector @vision_projector mlp @vision -> @llm merge 1 {
    mllm.layers "mlp" : mlp x 1 {hidden = 128 : i64, in = 64 : i64, out = 128 : i64}
  }
  mllm.llm @llm : "lm" width 128 frozen recompute none {
    mllm.layers "embed" : token_embedding x 1 {hidden = 128 : i64, vocab = 1000 : i64}
    mllm.layers "blocks" : transformer_block x 6 {ffn = 512 : i64, gated, head_dim = 32 : i64, heads = 4 : i64, hidden = 128 : i64, kv_heads = 2 : i64}
    mllm.layers "final_norm" : norm x 1 {hidden = 128 : i64}
    mllm.layers "lm_head" : lm_head x 1 {hidden = 128 : i64, vocab = 1000 : i64}
  }
}
mllm.data text 240 packing 1 seq_len 256 microbatch 1 x 4 mask causal {
  mllm.input @vision tokens 16 x 1 prepend mask bidirectional
}
mllm.cluster 1 x 4 "a40" {inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 48000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, peak_flops = 1.497000e+14 : f64}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  mllm.module_parallel @vision tp 1 pp 1 cp 1
  mllm.module_parallel @llm tp 1 pp 2 cp 1
}
mllm.pipeline frozen_aware encoders_parallel microbatches 4 gpus 3 bottleneck 1.5 ms iteration 6.0 ms {
  // expected-error @below {{is not allowed in 'mllm.pipeline'}}
  mllm.train steps 1 adamw lr 1.0e-4 weight_decay 0.0 precision bf16 seed 0
}

// -----

// The microbatch count is the data layout's: a pipeline that plans another
// count is an error.
mllm.data text 256 packing 1 seq_len 256 microbatch 1 x 4 mask causal {
}
// expected-error @below {{'mllm.pipeline' op plans 8 microbatches but 'mllm.data' has 4}}
mllm.pipeline frozen_aware encoders_parallel microbatches 8 gpus 1 bottleneck 1.000 ms iteration 8.000 ms {
}

// -----

// `colocated` belongs to layout chain.
mllm.pipeline frozen_aware encoders_parallel microbatches 4 gpus 1 bottleneck 1.5 ms iteration 6.0 ms {
  mllm.stage @vision_s0 part @vision layers [0, 6) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  // expected-error @below {{'mllm.stage' op is colocated, which only layout 'chain' allows; the pipeline's layout is 'encoders_parallel'}}
  mllm.stage @llm_s0 part @llm layers [0, 6) colocated fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
}

// -----

// A colocated stage starts a part.
mllm.pipeline frozen_aware chain microbatches 4 gpus 2 bottleneck 1.5 ms iteration 6.0 ms {
  mllm.stage @vision_s0 part @vision layers [0, 6) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s0 part @llm layers [0, 2) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  // expected-error @below {{'mllm.stage' op is colocated but does not start a part}}
  mllm.stage @llm_s1 part @llm layers [2, 6) colocated fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
}

// -----

// In a chain, the LLM's first stage may share the encoder's last stage's GPUs.
// CHECK-LABEL: mllm.pipeline frozen_aware chain
// CHECK:         mllm.stage @llm_s0 part @llm layers [0, 2) colocated
mllm.pipeline frozen_aware chain microbatches 4 gpus 2 bottleneck 1.5 ms iteration 6.0 ms {
  mllm.stage @vision_s0 part @vision layers [0, 6) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s0 part @llm layers [0, 2) colocated fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s1 part @llm layers [2, 6) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
}

// -----

// How far the cut search went, and the plans it priced.
// CHECK-LABEL: mllm.pipeline frozen_aware encoders_parallel microbatches 4 gpus 3 bottleneck 1.500 ms iteration 6.000 ms search budget priced 12 {
mllm.model @m {
  mllm.encoder @vision : "vit" modality image width 64 frozen recompute none {
    mllm.layers "patch_embed" : patch_embedding x 1 {channels = 3 : i64, hidden = 64 : i64, patch = 16 : i64, positions = 16 : i64}
    mllm.layers "blocks" : transformer_block x 6 {ffn = 256 : i64, head_dim = 16 : i64, heads = 4 : i64, hidden = 64 : i64, kv_heads = 4 : i64, layer_norm}
    mllm.layers "post_norm" : norm x 1 {hidden = 64 : i64, layer_norm}
  }
  mllm.projector @vision_projector mlp @vision -> @llm merge 1 {
    mllm.layers "mlp" : mlp x 1 {hidden = 128 : i64, in = 64 : i64, out = 128 : i64}
  }
  mllm.llm @llm : "lm" width 128 frozen recompute none {
    mllm.layers "embed" : token_embedding x 1 {hidden = 128 : i64, vocab = 1000 : i64}
    mllm.layers "blocks" : transformer_block x 6 {ffn = 512 : i64, gated, head_dim = 32 : i64, heads = 4 : i64, hidden = 128 : i64, kv_heads = 2 : i64}
    mllm.layers "final_norm" : norm x 1 {hidden = 128 : i64}
    mllm.layers "lm_head" : lm_head x 1 {hidden = 128 : i64, vocab = 1000 : i64}
  }
}
mllm.data text 240 packing 1 seq_len 256 microbatch 1 x 4 mask causal {
  mllm.input @vision tokens 16 x 1 prepend mask bidirectional
}
mllm.cluster 1 x 4 "a40" {inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 48000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, peak_flops = 1.497000e+14 : f64}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  mllm.module_parallel @vision tp 1 pp 1 cp 1
  mllm.module_parallel @llm tp 1 pp 2 cp 1
}
mllm.pipeline frozen_aware encoders_parallel microbatches 4 gpus 3 bottleneck 1.5 ms iteration 6.0 ms search budget priced 12 {
  mllm.stage @vision_s0 part @vision layers [0, 6) with ["patch_embed"] fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms memory 10 MiB = weights 1 + grads 2 + optimizer 3 + activations 2 x 2 ranks [0, 1) strides dp 1 cp 1 tp 1
  mllm.stage @llm_s0 part @llm layers [0, 2) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms memory 21 MiB = weights 1 + grads 2 + optimizer 3 + transit 3 + activations 2 + sends 1 x 4
  mllm.stage @llm_s1 part @llm layers [2, 6) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
}

// -----

// A coverage without its count.
mllm.model @m {
  mllm.encoder @vision : "vit" modality image width 64 frozen recompute none {
    mllm.layers "patch_embed" : patch_embedding x 1 {channels = 3 : i64, hidden = 64 : i64, patch = 16 : i64, positions = 16 : i64}
    mllm.layers "blocks" : transformer_block x 6 {ffn = 256 : i64, head_dim = 16 : i64, heads = 4 : i64, hidden = 64 : i64, kv_heads = 4 : i64, layer_norm}
    mllm.layers "post_norm" : norm x 1 {hidden = 64 : i64, layer_norm}
  }
  mllm.projector @vision_projector mlp @vision -> @llm merge 1 {
    mllm.layers "mlp" : mlp x 1 {hidden = 128 : i64, in = 64 : i64, out = 128 : i64}
  }
  mllm.llm @llm : "lm" width 128 frozen recompute none {
    mllm.layers "embed" : token_embedding x 1 {hidden = 128 : i64, vocab = 1000 : i64}
    mllm.layers "blocks" : transformer_block x 6 {ffn = 512 : i64, gated, head_dim = 32 : i64, heads = 4 : i64, hidden = 128 : i64, kv_heads = 2 : i64}
    mllm.layers "final_norm" : norm x 1 {hidden = 128 : i64}
    mllm.layers "lm_head" : lm_head x 1 {hidden = 128 : i64, vocab = 1000 : i64}
  }
}
mllm.data text 240 packing 1 seq_len 256 microbatch 1 x 4 mask causal {
  mllm.input @vision tokens 16 x 1 prepend mask bidirectional
}
mllm.cluster 1 x 4 "a40" {inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 48000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, peak_flops = 1.497000e+14 : f64}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  mllm.module_parallel @vision tp 1 pp 1 cp 1
  mllm.module_parallel @llm tp 1 pp 2 cp 1
}
// expected-error @+1 {{'search' and 'priced' go together}}
mllm.pipeline frozen_aware encoders_parallel microbatches 4 gpus 3 bottleneck 1.5 ms iteration 6.0 ms search every {
  mllm.stage @vision_s0 part @vision layers [0, 6) with ["patch_embed"] fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms memory 10 MiB = weights 1 + grads 2 + optimizer 3 + activations 2 x 2 ranks [0, 1) strides dp 1 cp 1 tp 1
  mllm.stage @llm_s0 part @llm layers [0, 2) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms memory 21 MiB = weights 1 + grads 2 + optimizer 3 + transit 3 + activations 2 + sends 1 x 4
  mllm.stage @llm_s1 part @llm layers [2, 6) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
}
