mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  mllm.module_parallel @llm tp 1 pp 1 cp 4
}
mllm.cp_assignment @llm cp 2 lpt tokens 256 tile 128 x 32 ranks [[0:128], [128:256]] workload [4, 8] imbalance 1.3333
