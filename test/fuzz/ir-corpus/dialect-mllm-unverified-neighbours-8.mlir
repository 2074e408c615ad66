mllm.cp_assignment @llm cp 2 uniform tokens 256 tile 128 x 32 ranks [[0:128], [128:256]] workload [1, 3] imbalance 1.5
"mllm.model"() <{sym_name = "m"}> ({
  "mllm.llm"() <{instance = "lm", recompute = 0 : i32, width = 128 : i64}> ({
    "mllm.layers"() <{config = {hidden = 128 : i64, vocab = 1000 : i64}, count = 1 : i64, kind = 0 : i32, name = "embed"}> : () -> ()
  }) : () -> ()
}) : () -> ()
