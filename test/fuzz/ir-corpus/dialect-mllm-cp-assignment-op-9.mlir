mllm.cp_assignment @llm cp 2 lpt tokens 256 tile 128 x 32 ranks [[0:128], [128:256]] workload [4, 8, 1] imbalance 1.3333
