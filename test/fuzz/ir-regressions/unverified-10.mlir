"mllm.model"() <{sym_name = "m"}> ({
  "mllm.encoder"() <{instance = "vit", modality = 0 : i32, recompute = 0 : i32, sym_name = "vision", width = 64 : i64}> ({
    "mllm.layers"() <{config = {hidden = 64 : i64}, count = 1 : i64, kind = 5 : i32, name = "post_norm"}> : () -> ()
  }) : () -> ()
  "mllm.projector"() <{kind = 1 : i32, merge = 1 : i64, source = @vision, sym_name = "vision_projector", target = @llm}> ({
    "mllm.layers"() <{config = {hidden = 128 : i64, in = 64 : i64, out = 128 : i64}, count = 1 : i64, kind = 8 : i32, name = "mlp"}> : () -> ()
  }) : () -> ()
  "mllm.llm"() <{instance = "lm", recompute = 0 : i32, sym_name = "llm"}> ({
    "mllm.layers"() <{config = {hidden = 128 : i64, vocab = 1000 : i64}, count = 1 : i64, kind = 0 : i32, name = "embed"}> : () -> ()
  }) : () -> ()
}) : () -> ()
