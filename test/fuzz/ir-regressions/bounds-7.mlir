mllm.cp_assignment @llm cp 2 uniform tokens 256 tile 128 x 32 ranks [[0:128], [128:256]] workload [9223372036854775807, 9223372036854775807] imbalance 1.0
