mllm.cp_assignment @llm cp 9223372036854775807 uniform tokens 256 tile 128 x 32 ranks [[0:128], [128:256]] workload [1, 3] imbalance 1.5
