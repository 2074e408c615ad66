mllm.cp_assignment @llm cp 2 lpt tokens 300 tile 128 x 32 ranks [[0:128, 256:300], [128:256]] workload [10, 8] imbalance 1.1111
