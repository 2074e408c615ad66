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
  mllm.stage @llm_s1 part @llm layers [2, 6) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
}
