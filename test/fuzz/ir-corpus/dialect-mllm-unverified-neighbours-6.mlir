mllm.cp_assignment @llm cp 2 uniform tokens 256 tile 128 x 32 ranks [[0:128], [128:256]] workload [1, 3] imbalance 1.5
"mllm.parallel"() <{cp_balance = 0 : i32, dp = 1 : i64, layout = 0 : i32, partition = 0 : i32}> ({
  "mllm.module_parallel"() <{part = @llm, pp = 1 : i64, tp = 1 : i64}> : () -> ()
}) : () -> ()
