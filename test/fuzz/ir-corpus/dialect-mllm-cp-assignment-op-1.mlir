mllm.data text 384 packing 1 seq_len 384 microbatch 1 x 1 mask causal {
}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance ilp {
  mllm.module_parallel @llm tp 1 pp 1 cp 3
}
mllm.cp_assignment @llm cp 3 ilp optimal tokens 384 tile 128 x 64 ranks [[256:384], [0:128], [128:256]] workload [0, 0, 0] imbalance 0.0
