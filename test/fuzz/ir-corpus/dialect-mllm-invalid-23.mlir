mllm.data text 16 packing 1 seq_len 24 microbatch 1 x 1 mask causal {
  "mllm.input"() <{encoder = @vision, tokens = 8 : i64, items = 1 : i64, placement = 2 : i32, positions = array<f64: 1.5>, mask = 1 : i32}> : () -> ()
}
