mllm.cp_assignment @llm cp 2 lpt tokens 256 tile 128 x 32 ranks [[0:256]] workload [12, 0] imbalance 2.0
