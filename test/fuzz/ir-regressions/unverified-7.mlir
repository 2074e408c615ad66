mllm.cp_assignment @llm cp 2 uniform tokens 256 tile 128 x 32 ranks [[0:128], [128:256]] workload [1, 3] imbalance 1.5
"mllm.data"() <{microbatch_size = 1 : i64, microbatches = 4 : i64, packing = 1 : i64, text_mask = 0 : i32, text_tokens = 256 : i64}> ({
}) : () -> ()
