mllm.cp_assignment @llm cp 2 lpt tokens 256 tile 128 x 32 ranks [[0:100], [100:256]] workload [4, 8] imbalance 1.3333
