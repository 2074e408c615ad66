mllm.pipeline frozen_aware encoders_parallel microbatches 65536 gpus 2 bottleneck 1.5 ms iteration 6.0 ms {
  mllm.stage @llm_s0 part @llm layers [0, 1) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s1 part @llm layers [1, 2) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
}
