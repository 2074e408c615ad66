mllm.data text 256 packing 1 seq_len 256 microbatch 1 x 4 mask causal {
}
mllm.pipeline frozen_aware encoders_parallel microbatches 8 gpus 1 bottleneck 1.000 ms iteration 8.000 ms {
}
