mllm.data text 256 packing 1 seq_len 256 microbatch 1 x 1048576 mask causal {
}
