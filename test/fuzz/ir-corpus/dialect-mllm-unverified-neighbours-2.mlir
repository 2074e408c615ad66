"mllm.data"() <{microbatch_size = 1 : i64, microbatches = 4 : i64, packing = 1 : i64, seq_len = 256 : i64, text_mask = 0 : i32, text_tokens = 240 : i64}> ({
  "mllm.input"() <{encoder = @vision, items = 1 : i64, mask = 1 : i32, placement = 0 : i32}> : () -> ()
}) : () -> ()
