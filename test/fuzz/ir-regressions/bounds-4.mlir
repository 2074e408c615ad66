mllm.data text 256 packing 1 seq_len 256 microbatch 4611686018427387904 x 4 mask causal {
}
