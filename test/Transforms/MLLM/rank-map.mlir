// RUN: mllm-opt %s --split-input-file --verify-diagnostics --mllm-rank-map | FileCheck %s
//
// Ranks go stage by stage in pipeline order (encoders first); inside a
// stage dp replica by replica, cp slot by slot, each a run of tp ranks; a
// stage starts on a multiple of its tp when idle GPUs pay for the gap, so
// that its TP groups stay inside nodes.
// Memory per GPU: weights + (trainable) gradients and AdamW state + saved
// activations x microbatches in flight (LLM stage s: P_llm - s; encoder
// stage s: P_e - s + P_llm; capped at the microbatch count, and at what fits
// in memory: memory-aware 1F1B keeps fewer microbatches in flight, never
// fewer than one).

// A frozen encoder (2 stages, 1 GPU each) and a frozen LLM (tp 2, cp 2,
// 2 stages), dp 2 on 5 x 4 GPUs: 2 + 2 encoder ranks, then 8 + 8 LLM ranks.
// The encoder's first stage has no backward and keeps no activations; 4
// microbatches in flight at most.
// CHECK-LABEL: mllm.pipeline
// CHECK-NEXT: mllm.stage @vision_s0 {{.*}} memory 2 MiB = weights 1 + grads 0 + optimizer 0 + transit 1 + activations 0 x 4 ranks [0, 2) strides dp 1 cp 1 tp 1
// CHECK-NEXT: mllm.stage @vision_s1 {{.*}} transit 1 + activations {{[0-9]+}} + sends 1 x 3 ranks [2, 4) strides dp 1 cp 1 tp 1
// CHECK-NEXT: mllm.stage @llm_s0 {{.*}} grads 0 + optimizer 0 + transit 1 + activations {{[0-9]+}} + sends 1 x 2 ranks [4, 12) strides dp 4 cp 2 tp 1
// CHECK-NEXT: mllm.stage @llm_s1 {{.*}} grads 0 + optimizer 0 + transit 1 + activations {{[0-9]+}} x 1 ranks [12, 20) strides dp 4 cp 2 tp 1
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
mllm.cluster 5 x 4 "a40" {inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 48000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, peak_flops = 1.497000e+14 : f64}
mllm.parallel dp 2 encoders_parallel partition frozen_aware cp_balance lpt {
  mllm.module_parallel @vision tp 1 pp 2 cp 1
  mllm.module_parallel @llm tp 2 pp 2 cp 2
}
mllm.pipeline frozen_aware encoders_parallel microbatches 4 gpus 4 bottleneck 1.0 ms iteration 1.0 ms {
  mllm.stage @vision_s0 part @vision layers [0, 3) fwd 1.0 ms bwd_w 0.0 ms bwd_d 0.0 ms recompute 0.0 ms
  mllm.stage @vision_s1 part @vision layers [3, 6) fwd 1.0 ms bwd_w 0.0 ms bwd_d 0.0 ms recompute 0.0 ms
  mllm.stage @llm_s0 part @llm layers [0, 3) fwd 1.0 ms bwd_w 0.0 ms bwd_d 0.0 ms recompute 0.0 ms
  mllm.stage @llm_s1 part @llm layers [3, 6) fwd 1.0 ms bwd_w 0.0 ms bwd_d 0.0 ms recompute 0.0 ms
}

// -----

// Packed, the LLM's tp 2 group would take ranks 1 and 2 and straddle the
// two 2-GPU nodes; the idle rank pays for starting it on rank 2, inside
// node 1, and rank 1 stays idle instead of rank 3.
// CHECK-LABEL: mllm.pipeline
// CHECK-NEXT: mllm.stage @vision_s0 {{.*}} ranks [0, 1) strides dp 1 cp 1 tp 1
// CHECK-NEXT: mllm.stage @llm_s0 {{.*}} ranks [2, 4) strides dp 2 cp 2 tp 1
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
mllm.cluster 2 x 2 "a40" {inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 48000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, peak_flops = 1.497000e+14 : f64}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  mllm.module_parallel @vision tp 1 pp 1 cp 1
  mllm.module_parallel @llm tp 2 pp 1 cp 1
}
// expected-warning @below {{the pipeline uses 3 of the cluster's 4 GPUs; 1 stay idle}}
mllm.pipeline frozen_aware encoders_parallel microbatches 4 gpus 4 bottleneck 1.0 ms iteration 1.0 ms {
  mllm.stage @vision_s0 part @vision layers [0, 6) fwd 1.0 ms bwd_w 0.0 ms bwd_d 0.0 ms recompute 0.0 ms
  mllm.stage @llm_s0 part @llm layers [0, 6) fwd 1.0 ms bwd_w 0.0 ms bwd_d 0.0 ms recompute 0.0 ms
}

// -----

// A trainable 4096-wide LLM, bf16 + AdamW, two stages of 4 blocks. Per
// block 4 x 4096^2 (attention) + 2 x 4096 x 16384 (MLP) + 2 x 4096 (norms)
// = 201334784 parameters; stage 0 adds the 32000 x 4096 embedding, stage 1
// the final norm and the (untied) LM head. Stage 0: 936411136 parameters:
// weights x 2 bytes = 1787 MiB, gradients x 4 = 3573 MiB, optimizer state
// x 12 = 10717 MiB (all rounded up). A stage sends 4096 x 4096 bf16 = 32 MiB
// per microbatch: stage 0 holds each one it sent until the gradient comes
// back (sends) and the gradient it received (transit); stage 1 the
// activation it received and two gradients it sent (transit 3 x 32).
// CHECK-LABEL: mllm.pipeline
// CHECK-NEXT: mllm.stage @llm_s0 {{.*}} = weights 1787 + grads 3573 + optimizer 10717 + transit 32 + activations {{[0-9]+}} + sends 32 x 2 ranks [0, 1)
// CHECK-NEXT: mllm.stage @llm_s1 {{.*}} = weights 1787 + grads 3573 + optimizer 10717 + transit 96 + activations {{[0-9]+}} x 1 ranks [1, 2)
mllm.model @big {
  mllm.llm @llm : "lm4k" width 4096 recompute none {
    mllm.layers "embed" : token_embedding x 1 {hidden = 4096 : i64, vocab = 32000 : i64}
    mllm.layers "blocks" : transformer_block x 8 {ffn = 16384 : i64, head_dim = 128 : i64, heads = 32 : i64, hidden = 4096 : i64, kv_heads = 32 : i64}
    mllm.layers "final_norm" : norm x 1 {hidden = 4096 : i64}
    mllm.layers "lm_head" : lm_head x 1 {hidden = 4096 : i64, vocab = 32000 : i64}
  }
}
mllm.data text 4096 packing 1 seq_len 4096 microbatch 1 x 8 mask causal {
}
mllm.cluster 1 x 2 "a40" {inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 48000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, peak_flops = 1.497000e+14 : f64}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  mllm.module_parallel @llm tp 1 pp 2 cp 1
}
mllm.train steps 1 adamw lr 1.0e-4 weight_decay 0.0 precision bf16 seed 0
mllm.pipeline frozen_aware encoders_parallel microbatches 8 gpus 2 bottleneck 1.0 ms iteration 1.0 ms {
  mllm.stage @llm_s0 part @llm layers [0, 4) fwd 1.0 ms bwd_w 0.0 ms bwd_d 0.0 ms recompute 0.0 ms
  mllm.stage @llm_s1 part @llm layers [4, 8) fwd 1.0 ms bwd_w 0.0 ms bwd_d 0.0 ms recompute 0.0 ms
}

// -----

// On 20 GB GPUs stage 0 fits one microbatch in flight but not the two its
// 1F1B warm-up wants: memory-aware scheduling holds one, without an error.
// CHECK-LABEL: mllm.pipeline
// CHECK-NEXT: mllm.stage @llm_s0 {{.*}} activations {{[0-9]+}} + sends 32 x 1 ranks
// CHECK-NEXT: mllm.stage @llm_s1 {{.*}} activations {{[0-9]+}} x 1 ranks
mllm.model @big {
  mllm.llm @llm : "lm4k" width 4096 recompute none {
    mllm.layers "embed" : token_embedding x 1 {hidden = 4096 : i64, vocab = 32000 : i64}
    mllm.layers "blocks" : transformer_block x 8 {ffn = 16384 : i64, head_dim = 128 : i64, heads = 32 : i64, hidden = 4096 : i64, kv_heads = 32 : i64}
    mllm.layers "final_norm" : norm x 1 {hidden = 4096 : i64}
    mllm.layers "lm_head" : lm_head x 1 {hidden = 4096 : i64, vocab = 32000 : i64}
  }
}
mllm.data text 4096 packing 1 seq_len 4096 microbatch 1 x 8 mask causal {
}
mllm.cluster 1 x 2 "a40" {inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 20000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, peak_flops = 1.497000e+14 : f64}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  mllm.module_parallel @llm tp 1 pp 2 cp 1
}
mllm.train steps 1 adamw lr 1.0e-4 weight_decay 0.0 precision bf16 seed 0
mllm.pipeline frozen_aware encoders_parallel microbatches 8 gpus 2 bottleneck 1.0 ms iteration 1.0 ms {
  mllm.stage @llm_s0 part @llm layers [0, 4) fwd 1.0 ms bwd_w 0.0 ms bwd_d 0.0 ms recompute 0.0 ms
  mllm.stage @llm_s1 part @llm layers [4, 8) fwd 1.0 ms bwd_w 0.0 ms bwd_d 0.0 ms recompute 0.0 ms
}

// -----

// The same on 16 GB GPUs does not fit even with one microbatch in flight;
// the error is on the part's parallel config, with the biggest contributors
// first, and says that the one microbatch is what memory-aware 1F1B capped
// the warm-up to.
mllm.model @big {
  mllm.llm @llm : "lm4k" width 4096 recompute none {
    mllm.layers "embed" : token_embedding x 1 {hidden = 4096 : i64, vocab = 32000 : i64}
    mllm.layers "blocks" : transformer_block x 8 {ffn = 16384 : i64, head_dim = 128 : i64, heads = 32 : i64, hidden = 4096 : i64, kv_heads = 32 : i64}
    mllm.layers "final_norm" : norm x 1 {hidden = 4096 : i64}
    mllm.layers "lm_head" : lm_head x 1 {hidden = 4096 : i64, vocab = 32000 : i64}
  }
}
mllm.data text 4096 packing 1 seq_len 4096 microbatch 1 x 8 mask causal {
}
mllm.cluster 1 x 2 "a40" {inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 16000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, peak_flops = 1.497000e+14 : f64}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  // expected-error-re @below {{stage 0 of 'llm' needs {{[0-9.]+}} GiB per GPU but a GPU of the cluster ('a40') has 14.90 GiB: optimizer state 10.47 GiB, gradients 3.49 GiB, activations {{[0-9.]+}} GiB ({{[0-9.]+}} GiB x 1 microbatch in flight: memory-aware 1F1B lowered the 2 of its warm-up to what fits, and 1 is the least a stage holds), weights 1.75 GiB, sent activations waiting for their gradients 32.0 MiB, other messages 32.0 MiB; raise pp or tp of 'llm'{{$}}}}
  // expected-error-re @below {{stage 1 of 'llm' needs {{.*}} GiB per GPU but {{.*}} x 1 microbatch in flight), weights{{.*}}}}
  mllm.module_parallel @llm tp 1 pp 2 cp 1
}
mllm.train steps 1 adamw lr 1.0e-4 weight_decay 0.0 precision bf16 seed 0
mllm.pipeline frozen_aware encoders_parallel microbatches 8 gpus 2 bottleneck 1.0 ms iteration 1.0 ms {
  mllm.stage @llm_s0 part @llm layers [0, 4) fwd 1.0 ms bwd_w 0.0 ms bwd_d 0.0 ms recompute 0.0 ms
  mllm.stage @llm_s1 part @llm layers [4, 8) fwd 1.0 ms bwd_w 0.0 ms bwd_d 0.0 ms recompute 0.0 ms
}

// -----

// 3-GPU nodes: tp 2 does not divide a node, so no placement keeps every TP
// group inside one. One warning counts them all (ranks 2-3 and 8-9 of the
// six groups cross a boundary) and names the first.
// CHECK-LABEL: mllm.pipeline
// CHECK-NEXT: mllm.stage @llm_s0 {{.*}} ranks [0, 6) strides dp 2 cp 2 tp 1
// CHECK-NEXT: mllm.stage @llm_s1 {{.*}} ranks [6, 12) strides dp 2 cp 2 tp 1
mllm.model @m {
  mllm.llm @llm : "lm" width 128 frozen recompute none {
    mllm.layers "embed" : token_embedding x 1 {hidden = 128 : i64, vocab = 1000 : i64}
    mllm.layers "blocks" : transformer_block x 6 {ffn = 512 : i64, gated, head_dim = 32 : i64, heads = 4 : i64, hidden = 128 : i64, kv_heads = 2 : i64}
    mllm.layers "final_norm" : norm x 1 {hidden = 128 : i64}
    mllm.layers "lm_head" : lm_head x 1 {hidden = 128 : i64, vocab = 1000 : i64}
  }
}
mllm.data text 256 packing 1 seq_len 256 microbatch 1 x 4 mask causal {
}
mllm.cluster 4 x 3 "a40" {inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 48000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, peak_flops = 1.497000e+14 : f64}
mllm.parallel dp 3 encoders_parallel partition frozen_aware cp_balance lpt {
  mllm.module_parallel @llm tp 2 pp 2 cp 1
}
// expected-warning @below {{2 of the 6 tensor-parallel groups span a node boundary (the first: ranks 2 to 3 of stage 0 of 'llm'; tp 2 does not divide the 3 GPUs of a node); tensor parallelism will cross the inter-node link}}
mllm.pipeline frozen_aware encoders_parallel microbatches 4 gpus 4 bottleneck 1.0 ms iteration 1.0 ms {
  mllm.stage @llm_s0 part @llm layers [0, 3) fwd 1.0 ms bwd_w 0.0 ms bwd_d 0.0 ms recompute 0.0 ms
  mllm.stage @llm_s1 part @llm layers [3, 6) fwd 1.0 ms bwd_w 0.0 ms bwd_d 0.0 ms recompute 0.0 ms
}

// -----

// Colocated encoders (stage s of each on one GPU): the GPU's memory is the
// sum of its stages', and both are capped together. Layout chain: a stage
// marked colocated runs on the ranks of the stage before it, and a chain is
// one linear pipeline, so stage g of G holds G - g microbatches (here 2
// chain stages over 3 mllm.stage ops: 2, 2 and 1).
// CHECK-LABEL: mllm.pipeline
// CHECK-NEXT: mllm.stage @vision_s0 {{.*}} optimizer {{[0-9]+}} + activations {{[0-9]+}} x 2 ranks [0, 1)
// CHECK-NEXT: mllm.stage @llm_s0 {{.*}} colocated {{.*}} transit 1 + activations {{[0-9]+}} + sends 1 x 2 ranks [0, 1)
// CHECK-NEXT: mllm.stage @llm_s1 {{.*}} transit 1 + activations {{[0-9]+}} x 1 ranks [1, 2)
mllm.model @m {
  mllm.encoder @vision : "vit" modality image width 64 recompute none {
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
mllm.cluster 1 x 2 "a40" {inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 48000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, peak_flops = 1.497000e+14 : f64}
mllm.parallel dp 1 chain partition frozen_aware cp_balance lpt {
  mllm.module_parallel @vision tp 1 pp 0 cp 1
  mllm.module_parallel @llm tp 1 pp 0 cp 1
}
mllm.pipeline frozen_aware chain microbatches 4 gpus 2 bottleneck 1.0 ms iteration 1.0 ms {
  mllm.stage @vision_s0 part @vision layers [0, 6) fwd 1.0 ms bwd_w 0.0 ms bwd_d 0.0 ms recompute 0.0 ms
  mllm.stage @llm_s0 part @llm layers [0, 2) colocated fwd 1.0 ms bwd_w 0.0 ms bwd_d 0.0 ms recompute 0.0 ms
  mllm.stage @llm_s1 part @llm layers [2, 6) fwd 1.0 ms bwd_w 0.0 ms bwd_d 0.0 ms recompute 0.0 ms
}
