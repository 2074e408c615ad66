mllm.model @m {
  mllm.llm @llm : "d" width 16 recompute none {
    mllm.layers "embed" : token_embedding x 1 {vocab = 10, hidden = 16}
  }
}
mllm.data text 16 packing 1 seq_len 24 microbatch 1 x 1 mask causal {
  "mllm.input"() <{encoder = @llm, tokens = 8 : i64, items = 1 : i64, placement = 0 : i32, positions = array<f64>, mask = 1 : i32}> : () -> ()
}
