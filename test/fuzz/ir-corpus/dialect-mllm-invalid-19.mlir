mllm.data text 16 packing 2 seq_len 100 microbatch 1 x 1 mask causal {
  "mllm.input"() <{encoder = @vision, tokens = 16 : i64, items = 2 : i64, placement = 0 : i32, positions = array<f64>, mask = 1 : i32}> : () -> ()
}
