mllm.data text 384 packing 1 seq_len 384 microbatch 1 x 1 mask causal {
}
mllm.cp_assignment @llm cp 2 lpt tokens 256 tile 128 x 32 ranks [[0:128], [128:256]] workload [4, 8] imbalance 1.3333
