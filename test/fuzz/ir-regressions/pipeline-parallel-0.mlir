mllm.model @m {
  mllm.llm @llm : "lm" width 128 recompute none {
    mllm.layers "embed" : token_embedding x 1 {hidden = 128 : i64, vocab = 1000 : i64}
    mllm.layers "blocks" : transformer_block x 2 {ffn = 512 : i64, head_dim = 32 : i64, heads = 4 : i64, hidden = 128 : i64, kv_heads = 2 : i64}
  }
}
mllm.cluster 1 x 4 "a40" {inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 48000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, peak_flops = 1.497000e+14 : f64}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  mllm.module_parallel @llm tp 2 pp 2 cp 1
}
mllm.pipeline frozen_aware encoders_parallel microbatches 4 gpus 4 bottleneck 1.5 ms iteration 6.0 ms {
  mllm.stage @llm_s0 part @llm layers [0, 1) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms ranks [0, 1) strides dp 1 cp 1 tp 1
  mllm.stage @llm_s1 part @llm layers [1, 2) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms ranks [1, 2) strides dp 1 cp 1 tp 1
}
