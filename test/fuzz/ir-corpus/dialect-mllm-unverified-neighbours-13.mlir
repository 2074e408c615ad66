mllm.pipeline frozen_aware encoders_parallel microbatches 4 gpus 1 bottleneck 1.5 ms iteration 6.0 ms {
  "mllm.stage"() <{begin = 0 : i64, bwd_d = 5.000000e-01 : f64, bwd_w = 0.000000e+00 : f64, end = 2 : i64, first_rank = 0 : i64, fwd = 1.000000e+00 : f64, part = @llm, recompute = 0.000000e+00 : f64, sym_name = "llm_s0"}> : () -> ()
}
