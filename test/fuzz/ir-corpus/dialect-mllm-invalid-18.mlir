mllm.data text 16 packing 1 seq_len 32 microbatch 1 x 1 mask causal {
  "mllm.input"() <{encoder = @vision, tokens = 8 : i64, items = 1 : i64, placement = 0 : i32, positions = array<f64>, mask = 1 : i32}> : () -> ()
  "mllm.input"() <{encoder = @vision, tokens = 8 : i64, items = 1 : i64, placement = 0 : i32, positions = array<f64>, mask = 1 : i32}> : () -> ()
}
