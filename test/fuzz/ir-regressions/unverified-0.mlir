"mllm.model"() <{sym_name = "m"}> ({
  "mllm.llm"() <{instance = "lm", recompute = 0 : i32, sym_name = "llm", width = 128 : i64}> ({
    "mllm.layers"() <{config = {ffn = 512 : i64, head_dim = 32 : i64, heads = 4 : i64, hidden = 128 : i64, kv_heads = 2 : i64}, kind = 3 : i32, name = "blocks"}> : () -> ()
  }) : () -> ()
}) : () -> ()
mllm.pipeline frozen_aware encoders_parallel microbatches 4 gpus 1 bottleneck 1.5 ms iteration 6.0 ms {
  mllm.stage @llm_s0 part @llm layers [0, 6) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
}
