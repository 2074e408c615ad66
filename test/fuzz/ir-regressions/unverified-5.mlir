"mllm.model"() <{sym_name = "m"}> ({
  "mllm.llm"() <{instance = "lm", recompute = 0 : i32, sym_name = "llm", width = 128 : i64}> ({
    "mllm.layers"() <{config = {hidden = 128 : i64, vocab = 1000 : i64}, count = 1 : i64, kind = 0 : i32, name = "embed"}> : () -> ()
  }) : () -> ()
}) : () -> ()
mllm.pipeline frozen_aware encoders_parallel microbatches 4 gpus 1 bottleneck 1.5 ms iteration 6.0 ms {
  mllm.stage @llm_s0 part @llm layers [0, 1) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
}
"mllm.parallel"() <{cp_balance = 0 : i32, dp = 1 : i64, layout = 0 : i32, partition = 0 : i32}> ({
  "mllm.module_parallel"() <{cp = 1 : i64, pp = 1 : i64, tp = 1 : i64}> : () -> ()
}) : () -> ()
