mllm.pipeline frozen_aware encoders_parallel microbatches 4 gpus 1 bottleneck 1.5 ms iteration 6.0 ms {
  mllm.stage @llm_s0 part @llm layers [0, 2) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms memory 2 MiB = weights 1 + grads 1 + optimizer 0 + activations 0 x 4611686018427387904
}
