// RUN: mllm-opt %s --split-input-file --verify-diagnostics \
// RUN:   --mllm-partition="profile=%S/Inputs/partition-profile.yaml" | FileCheck %s
//
// The model: a frozen 6-block encoder whose trainable projector feeds a
// frozen 6-block LLM, 4 microbatches, 4 GPUs, dp 1. The profile gives every
// encoder block F = Bw = Bd = 3 ms and every LLM block F = Bw = Bd = 1 ms,
// and 0 to every other layer, so the times can be checked by hand:
//   frozen-aware:   encoder block F+B = 3 (no backward: nothing trainable
//                   upstream); LLM block 1 + Bd 1 = 2 (the projector below
//                   it trains, so it passes input gradients back).
//   frozen-unaware: balances encoder blocks at 3+3+3 = 9, LLM blocks at 3.
// The estimate of one iteration is (sum of F+B along the path) - bottleneck
// + microbatches x bottleneck, plus the P2P transfers along the path: at
// each stage boundary an activation down and its gradient up, bytes /
// bandwidth on the A40's 56.25 GB/s (the LLM's 256 x 128 bf16 activation:
// 1.165 us; an encoder's 16 x 64: 36 ns), which the microsecond rounding
// shows only for the LLM's.

// pp = auto for both parts, frozen_aware. Stage counts (encoder, LLM) with at
// most 4 GPUs: (2, 2) gives stages of 9, 9 | 6, 6: bottleneck 9, iteration
// 30 - 9 + 4 x 9 = 57 (+ 2 x 1.165 us between the LLM's stages); (3, 1) has
// the LLM's 12; (1, 3) the encoder's 18.
// CHECK-LABEL: mllm.pipeline frozen_aware encoders_parallel microbatches 4 gpus 4
// CHECK-SAME:    bottleneck 9.000 ms iteration 57.003 ms
// CHECK-NEXT:  mllm.stage @vision_s0 part @vision layers [0, 3) with ["patch_embed"] fwd 9.000 ms bwd_w 0.000 ms bwd_d 0.000 ms recompute 0.000 ms
// CHECK-NEXT:  mllm.stage @vision_s1 part @vision layers [3, 6) with ["post_norm", "vision_projector.mlp"] fwd 9.000 ms bwd_w 0.000 ms bwd_d 0.000 ms recompute 0.000 ms
// CHECK-NEXT:  mllm.stage @llm_s0 part @llm layers [0, 3) with ["embed"] fwd 3.000 ms bwd_w 0.000 ms bwd_d 3.000 ms recompute 0.000 ms
// CHECK-NEXT:  mllm.stage @llm_s1 part @llm layers [3, 6) with ["final_norm", "lm_head"] fwd 3.000 ms bwd_w 0.000 ms bwd_d 3.000 ms recompute 0.000 ms
// CHECK-NEXT: }
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
  mllm.module_parallel @vision tp 1 pp 0 cp 1
  mllm.module_parallel @llm tp 1 pp 0 cp 1
}

// -----

// frozen_unaware balances 54 ms of encoder against 18 of LLM and picks
// (3, 1): 18 | 18 | 18 and 18 on its own times. Charged the real times it
// gets stages of 6, 6, 6 | 12: bottleneck 12, iteration 30 - 12 + 48 = 66,
// against 57 for frozen_aware.
// CHECK-LABEL: mllm.pipeline frozen_unaware encoders_parallel microbatches 4 gpus 4
// CHECK-SAME:    bottleneck 12.000 ms iteration 66.000 ms
// CHECK-NEXT:  mllm.stage @vision_s0 part @vision layers [0, 2) with ["patch_embed"] fwd 6.000 ms
// CHECK-NEXT:  mllm.stage @vision_s1 part @vision layers [2, 4) fwd 6.000 ms
// CHECK-NEXT:  mllm.stage @vision_s2 part @vision layers [4, 6) with ["post_norm", "vision_projector.mlp"] fwd 6.000 ms
// CHECK-NEXT:  mllm.stage @llm_s0 part @llm layers [0, 6) with ["embed", "final_norm", "lm_head"] fwd 6.000 ms bwd_w 0.000 ms bwd_d 6.000 ms
// CHECK-NEXT: }
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
mllm.parallel dp 1 encoders_parallel partition frozen_unaware cp_balance lpt {
  mllm.module_parallel @vision tp 1 pp 0 cp 1
  mllm.module_parallel @llm tp 1 pp 0 cp 1
}

// -----

// uniform with fixed stage counts: 6 LLM blocks over 3 stages, 2 each.
// Bottleneck: the encoder's single stage, 18 ms; iteration 30 - 18 + 72
// (+ 2 x 2 x 1.165 us between the LLM's three stages).
// CHECK-LABEL: mllm.pipeline uniform encoders_parallel microbatches 4 gpus 4
// CHECK-SAME:    bottleneck 18.000 ms iteration 84.005 ms
// CHECK-NEXT:  mllm.stage @vision_s0 part @vision layers [0, 6)
// CHECK-NEXT:  mllm.stage @llm_s0 part @llm layers [0, 2)
// CHECK-NEXT:  mllm.stage @llm_s1 part @llm layers [2, 4)
// CHECK-NEXT:  mllm.stage @llm_s2 part @llm layers [4, 6)
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
mllm.parallel dp 1 encoders_parallel partition uniform cp_balance lpt {
  mllm.module_parallel @vision tp 1 pp 1 cp 1
  mllm.module_parallel @llm tp 1 pp 3 cp 1
}

// -----

// explicit: the user's stages, as given.
// CHECK-LABEL: mllm.pipeline explicit encoders_parallel microbatches 4 gpus 4
// CHECK-NEXT:  mllm.stage @vision_s0 part @vision layers [0, 1) with ["patch_embed"] fwd 3.000 ms
// CHECK-NEXT:  mllm.stage @vision_s1 part @vision layers [1, 6) with ["post_norm", "vision_projector.mlp"] fwd 15.000 ms
// CHECK-NEXT:  mllm.stage @llm_s0 part @llm layers [0, 4) with ["embed"] fwd 4.000 ms bwd_w 0.000 ms bwd_d 4.000 ms
// CHECK-NEXT:  mllm.stage @llm_s1 part @llm layers [4, 6) with ["final_norm", "lm_head"] fwd 2.000 ms bwd_w 0.000 ms bwd_d 2.000 ms
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
mllm.parallel dp 1 encoders_parallel partition explicit cp_balance lpt {
  mllm.module_parallel @vision tp 1 pp 2 cp 1 stages [1, 5]
  mllm.module_parallel @llm tp 1 pp 2 cp 1 stages [4, 2]
}

// -----

// explicit stages that drop blocks.
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
mllm.parallel dp 1 encoders_parallel partition explicit cp_balance lpt {
  mllm.module_parallel @vision tp 1 pp 1 cp 1
  // expected-error @below {{explicit stages [2, 2, 1] of 'llm' place 5 of its 6 blocks; block 5 is in no stage}}
  mllm.module_parallel @llm tp 1 pp 3 cp 1 stages [2, 2, 1]
}

// -----

// explicit stages that place blocks twice.
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
mllm.parallel dp 1 encoders_parallel partition explicit cp_balance lpt {
  mllm.module_parallel @vision tp 1 pp 1 cp 1
  // expected-error @below {{explicit stages [3, 3, 2] of 'llm' place 8 blocks but it has 6; 2 would be placed twice}}
  mllm.module_parallel @llm tp 1 pp 3 cp 1 stages [3, 3, 2]
}

// -----

// explicit stages whose count is not pp (the op verifier).
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
mllm.parallel dp 1 encoders_parallel partition explicit cp_balance lpt {
  mllm.module_parallel @vision tp 1 pp 1 cp 1
  // expected-error @below {{lists 2 stages but pp is 3}}
  mllm.module_parallel @llm tp 1 pp 3 cp 1 stages [3, 3]
}

// -----

// explicit policy without a stages list for a pipelined part.
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
mllm.parallel dp 1 encoders_parallel partition explicit cp_balance lpt {
  mllm.module_parallel @vision tp 1 pp 1 cp 1
  // expected-error @below {{the explicit partition needs a 'stages' list for 'llm', which has pp 3}}
  mllm.module_parallel @llm tp 1 pp 3 cp 1
}

// -----

// More stages than blocks.
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
  // expected-error @below {{pp 7 of 'llm' exceeds its 6 blocks; every stage needs at least one}}
  mllm.module_parallel @llm tp 1 pp 7 cp 1
}

// -----

// Fixed stage counts that need more GPUs than a replica has.
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
// expected-error @below {{no pipeline of 'vision' 2 x 1 GPUs, 'llm' 3 x 1 GPUs fits the 4 GPUs of one replica (4 GPUs / dp 1)}}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  mllm.module_parallel @vision tp 1 pp 2 cp 1
  mllm.module_parallel @llm tp 1 pp 3 cp 1
}

// -----

// A second run replaces the first pipeline.
// CHECK-LABEL: mllm.pipeline frozen_aware encoders_parallel microbatches 4 gpus 2
// CHECK-NOT:   mllm.pipeline
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
  mllm.module_parallel @llm tp 1 pp 1 cp 1
}
mllm.pipeline uniform encoders_parallel microbatches 4 gpus 2 bottleneck 0.0 ms iteration 0.0 ms {
  mllm.stage @vision_s0 part @vision layers [0, 6) fwd 0.0 ms bwd_w 0.0 ms bwd_d 0.0 ms recompute 0.0 ms
  mllm.stage @llm_s0 part @llm layers [0, 6) fwd 0.0 ms bwd_w 0.0 ms bwd_d 0.0 ms recompute 0.0 ms
}

// -----

// Layout chain on 3 GPUs: the encoder's and the LLM's blocks are one chain
// of 3 + 3 + 3 + 3 + 3 + 3 + 2 + 2 + 2 + 2 + 2 + 2 = 30 ms, cut into 3
// stages. The best cut (bottleneck 11: 9 | 9 + 2 | 10) puts the last three
// encoder blocks and the first LLM block on one stage: llm_s0 is colocated
// with vision_s1. Two stages would leave 18 + 12. Iteration 30 - 11 + 44,
// plus the transfers (one LLM activation each way, 2 x 1.165 us).
// CHECK-LABEL: mllm.pipeline frozen_aware chain microbatches 4 gpus 3
// CHECK-SAME:    bottleneck 11.000 ms iteration 63.002 ms
// CHECK-NEXT:  mllm.stage @vision_s0 part @vision layers [0, 3) with ["patch_embed"] fwd 9.000 ms
// CHECK-NEXT:  mllm.stage @vision_s1 part @vision layers [3, 6) with ["post_norm", "vision_projector.mlp"] fwd 9.000 ms
// CHECK-NEXT:  mllm.stage @llm_s0 part @llm layers [0, 1) with ["embed"] colocated fwd 1.000 ms bwd_w 0.000 ms bwd_d 1.000 ms
// CHECK-NEXT:  mllm.stage @llm_s1 part @llm layers [1, 6) with ["final_norm", "lm_head"] fwd 5.000 ms bwd_w 0.000 ms bwd_d 5.000 ms
// CHECK-NEXT: }
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
mllm.cluster 1 x 3 "a40" {inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 48000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, peak_flops = 1.497000e+14 : f64}
mllm.parallel dp 1 chain partition frozen_aware cp_balance lpt {
  mllm.module_parallel @vision tp 1 pp 0 cp 1
  mllm.module_parallel @llm tp 1 pp 0 cp 1
}

// -----

// Layout chain needs the planner to choose the stage count of the whole
// chain.
mllm.model @m {
  mllm.encoder @vision : "vit" modality image width 64 frozen recompute none {
    mllm.layers "blocks" : transformer_block x 6 {ffn = 256 : i64, head_dim = 16 : i64, heads = 4 : i64, hidden = 64 : i64, kv_heads = 4 : i64, layer_norm}
  }
  mllm.projector @vision_projector linear @vision -> @llm merge 1 {
    mllm.layers "linear" : linear x 1 {in = 64 : i64, out = 128 : i64}
  }
  mllm.llm @llm : "lm" width 128 frozen recompute none {
    mllm.layers "blocks" : transformer_block x 6 {ffn = 512 : i64, gated, head_dim = 32 : i64, heads = 4 : i64, hidden = 128 : i64, kv_heads = 2 : i64}
  }
}
mllm.data text 240 packing 1 seq_len 256 microbatch 1 x 4 mask causal {
  mllm.input @vision tokens 16 x 1 prepend mask bidirectional
}
mllm.cluster 1 x 4 "a40" {inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 48000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, peak_flops = 1.497000e+14 : f64}
mllm.parallel dp 1 chain partition frozen_aware cp_balance lpt {
  // expected-error @below {{layout chain cuts the layers of every part as one chain of stages; set 'pp = auto' for 'vision' (it has pp 2)}}
  mllm.module_parallel @vision tp 1 pp 2 cp 1
  mllm.module_parallel @llm tp 1 pp 0 cp 1
}

// -----

// Layout chain puts two parts on one stage, so they need one GPU layout.
mllm.model @m {
  mllm.encoder @vision : "vit" modality image width 64 frozen recompute none {
    mllm.layers "blocks" : transformer_block x 6 {ffn = 256 : i64, head_dim = 16 : i64, heads = 4 : i64, hidden = 64 : i64, kv_heads = 4 : i64, layer_norm}
  }
  mllm.projector @vision_projector linear @vision -> @llm merge 1 {
    mllm.layers "linear" : linear x 1 {in = 64 : i64, out = 128 : i64}
  }
  mllm.llm @llm : "lm" width 128 frozen recompute none {
    mllm.layers "blocks" : transformer_block x 6 {ffn = 512 : i64, gated, head_dim = 32 : i64, heads = 4 : i64, hidden = 128 : i64, kv_heads = 2 : i64}
  }
}
mllm.data text 240 packing 1 seq_len 256 microbatch 1 x 4 mask causal {
  mllm.input @vision tokens 16 x 1 prepend mask bidirectional
}
mllm.cluster 1 x 4 "a40" {inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 48000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, peak_flops = 1.497000e+14 : f64}
mllm.parallel dp 1 chain partition frozen_aware cp_balance lpt {
  mllm.module_parallel @vision tp 1 pp 0 cp 1
  // expected-error @below {{layout chain puts parts on shared stages, which needs one tp for every part; 'llm' has tp 2 but 'vision' has tp 1}}
  mllm.module_parallel @llm tp 2 pp 0 cp 1
}

// -----

// Memory-aware pp = auto. With one microbatch every stage count ties on the
// estimate and the fewest GPUs used to win: one stage of this trainable
// 4096-wide LLM (about 2.2e9 parameters with AdamW: 38 GiB) on 20 GB GPUs.
// A plan that does not fit is not chosen when one that fits exists: two
// stages (about 17 GiB each with the one microbatch).
// CHECK-LABEL: mllm.pipeline frozen_aware encoders_parallel microbatches 1 gpus 2
// CHECK-NEXT:  mllm.stage @llm_s0 part @llm layers [0, 4)
// CHECK-NEXT:  mllm.stage @llm_s1 part @llm layers [4, 8)
// CHECK-NEXT: }
// This model has none of the profile's blocks, patch embeddings or
// projector MLPs: each of those entries is said to be unused.
// expected-warning @+4 {{partition-profile.yaml:5:5 ('transformer_block', hidden 64) matches no layer of this model and is not used}}
// expected-warning @+3 {{partition-profile.yaml:10:5 ('transformer_block', hidden 128) matches no layer of this model}}
// expected-warning @+2 {{partition-profile.yaml:15:6 ('patch_embedding') matches no layer}}
// expected-warning @+1 {{partition-profile.yaml:19:6 ('mlp') matches no layer}}
mllm.model @big {
  mllm.llm @llm : "lm4k" width 4096 recompute none {
    mllm.layers "embed" : token_embedding x 1 {hidden = 4096 : i64, vocab = 32000 : i64}
    mllm.layers "blocks" : transformer_block x 8 {ffn = 16384 : i64, head_dim = 128 : i64, heads = 32 : i64, hidden = 4096 : i64, kv_heads = 32 : i64}
    mllm.layers "final_norm" : norm x 1 {hidden = 4096 : i64}
    mllm.layers "lm_head" : lm_head x 1 {hidden = 4096 : i64, vocab = 32000 : i64}
  }
}
// expected-warning @below {{1 microbatches cannot fill the 2 pipeline stages 'pp = auto' chose for the LLM; the pipeline will mostly idle (raise microbatches)}}
mllm.data text 4096 packing 1 seq_len 4096 microbatch 1 x 1 mask causal {
}
mllm.cluster 1 x 4 "a40" {inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 20000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, peak_flops = 1.497000e+14 : f64}
// expected-warning @below {{the chosen pipeline uses 2 of the 4 GPUs of one replica; more stages would not shorten the estimated iteration}}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  mllm.module_parallel @llm tp 1 pp 0 cp 1
}
mllm.train steps 1 adamw lr 1.0e-4 weight_decay 0.0 precision bf16 seed 0

// -----

// Layout chain puts two parts on one stage, which cannot split the LLM's
// sequence over CP ranks while the encoder's is whole.
mllm.model @m {
  mllm.encoder @vision : "vit" modality image width 64 frozen recompute none {
    mllm.layers "blocks" : transformer_block x 6 {ffn = 256 : i64, head_dim = 16 : i64, heads = 4 : i64, hidden = 64 : i64, kv_heads = 4 : i64, layer_norm}
  }
  mllm.projector @vision_projector linear @vision -> @llm merge 1 {
    mllm.layers "linear" : linear x 1 {in = 64 : i64, out = 128 : i64}
  }
  mllm.llm @llm : "lm" width 128 frozen recompute none {
    mllm.layers "blocks" : transformer_block x 6 {ffn = 512 : i64, gated, head_dim = 32 : i64, heads = 4 : i64, hidden = 128 : i64, kv_heads = 2 : i64}
  }
}
mllm.data text 240 packing 1 seq_len 256 microbatch 1 x 4 mask causal {
  mllm.input @vision tokens 16 x 1 prepend mask bidirectional
}
mllm.cluster 1 x 4 "a40" {inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 48000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, peak_flops = 1.497000e+14 : f64}
mllm.parallel dp 1 chain partition frozen_aware cp_balance lpt {
  mllm.module_parallel @vision tp 1 pp 0 cp 1
  // expected-error @below {{layout chain puts parts on shared stages, which cannot run context parallelism; 'llm' has cp 2}}
  mllm.module_parallel @llm tp 1 pp 0 cp 2
}
