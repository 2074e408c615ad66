mllm.cp_assignment @llm cp 2 lpt tokens 384 tile 128 x 32 ranks [[256:384, 0:128], [128:256]] workload [4, 8] imbalance 1.3333
