mllm.data text 16 packing 1 seq_len 40 microbatch 1 x 1 mask causal {
  "mllm.input"() <{encoder = @vision, tokens = 8 : i64, items = 3 : i64, placement = 2 : i32, positions = array<f64: 0.25, 0.5>, mask = 1 : i32}> : () -> ()
}
