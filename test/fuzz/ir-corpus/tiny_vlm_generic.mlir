"builtin.module"() ({
  "mllm.model"() <{sym_name = "tiny_vlm"}> ({
    "mllm.encoder"() <{frozen, instance = "tiny_vit", modality = 0 : i32, recompute = 0 : i32, sym_name = "vision", width = 32 : i64}> ({
      "mllm.layers"() <{config = {channels = 3 : i64, hidden = 32 : i64, image_height = 32 : i64, image_width = 32 : i64, patch = 8 : i64, position = "learned", positions = 16 : i64}, count = 1 : i64, kind = 1 : i32, name = "patch_embed"}> : () -> ()
      "mllm.layers"() <{config = {activation = "gelu", ffn = 64 : i64, head_dim = 16 : i64, heads = 2 : i64, hidden = 32 : i64, kv_heads = 2 : i64, layer_norm}, count = 2 : i64, kind = 3 : i32, name = "blocks"}> : () -> ()
      "mllm.layers"() <{config = {hidden = 32 : i64, layer_norm}, count = 1 : i64, kind = 5 : i32, name = "post_norm"}> : () -> ()
    }) : () -> ()
    "mllm.projector"() <{kind = 1 : i32, merge = 1 : i64, source = @vision, sym_name = "vision_projector", target = @llm}> ({
      "mllm.layers"() <{config = {activation = "gelu", hidden = 64 : i64, in = 32 : i64, out = 64 : i64}, count = 1 : i64, kind = 8 : i32, name = "mlp"}> {needs_weight_grad} : () -> ()
    }) : () -> ()
    "mllm.llm"() <{instance = "tiny_llama", recompute = 0 : i32, sym_name = "llm", width = 64 : i64}> ({
      "mllm.layers"() <{config = {hidden = 64 : i64, vocab = 256 : i64}, count = 1 : i64, kind = 0 : i32, name = "embed"}> {needs_weight_grad} : () -> ()
      "mllm.layers"() <{config = {activation = "swiglu", ffn = 128 : i64, gated, head_dim = 16 : i64, heads = 4 : i64, hidden = 64 : i64, kv_heads = 2 : i64, position = "rope", rope_theta = 1.000000e+04 : f64}, count = 2 : i64, kind = 3 : i32, name = "blocks"}> {needs_input_grad, needs_weight_grad} : () -> ()
      "mllm.layers"() <{config = {hidden = 64 : i64}, count = 1 : i64, kind = 5 : i32, name = "final_norm"}> {needs_input_grad, needs_weight_grad} : () -> ()
      "mllm.layers"() <{config = {hidden = 64 : i64, vocab = 256 : i64}, count = 1 : i64, kind = 6 : i32, name = "lm_head"}> {needs_input_grad, needs_weight_grad} : () -> ()
    }) : () -> ()
  }) : () -> ()
  "mllm.data"() <{microbatch_size = 1 : i64, microbatches = 2 : i64, packing = 1 : i64, seq_len = 64 : i64, text_mask = 0 : i32, text_tokens = 48 : i64}> ({
    "mllm.input"() <{encoder = @vision, items = 1 : i64, mask = 1 : i32, placement = 0 : i32, tokens = 16 : i64}> : () -> ()
  }) : () -> ()
  "mllm.cluster"() <{gpu = "a40", gpus_per_node = 2 : i64, inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 48000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, nodes = 1 : i64, peak_flops = 1.497000e+14 : f64}> : () -> ()
  "mllm.parallel"() <{cp_balance = 0 : i32, dp = 1 : i64, layout = 0 : i32, partition = 0 : i32}> ({
    "mllm.module_parallel"() <{cp = 1 : i64, part = @vision, pp = 1 : i64, tp = 1 : i64}> : () -> ()
    "mllm.module_parallel"() <{cp = 1 : i64, part = @llm, pp = 1 : i64, tp = 1 : i64}> : () -> ()
  }) : () -> ()
  "mllm.train"() <{lr = 3.000000e-03 : f64, optimizer = 0 : i32, precision = 2 : i32, seed = 7 : i64, steps = 20 : i64, weight_decay = 0.000000e+00 : f64}> : () -> ()
  "mllm.pipeline"() <{bottleneck = 5.000000e-03 : f64, gpus = 2 : i64, iteration = 1.000000e-02 : f64, layout = 0 : i32, microbatches = 2 : i64, policy = 0 : i32}> ({
    "mllm.stage"() <{activations = 1 : i64, begin = 0 : i64, bwd_d = 0.000000e+00 : f64, bwd_w = 0.000000e+00 : f64, cp_stride = 1 : i64, dp_stride = 1 : i64, end = 2 : i64, end_rank = 1 : i64, first_rank = 0 : i64, fwd = 0.000000e+00 : f64, grads = 1 : i64, in_flight = 2 : i64, memory = 5 : i64, optimizer = 1 : i64, part = @vision, recompute = 0.000000e+00 : f64, sym_name = "vision_s0", tp_stride = 1 : i64, weights = 1 : i64, with = ["patch_embed", "post_norm", "vision_projector.mlp"]}> : () -> ()
    "mllm.stage"() <{activations = 1 : i64, begin = 0 : i64, bwd_d = 2.000000e-03 : f64, bwd_w = 1.000000e-03 : f64, cp_stride = 1 : i64, dp_stride = 1 : i64, end = 2 : i64, end_rank = 2 : i64, first_rank = 1 : i64, fwd = 2.000000e-03 : f64, grads = 1 : i64, in_flight = 1 : i64, memory = 4 : i64, optimizer = 1 : i64, part = @llm, recompute = 0.000000e+00 : f64, sym_name = "llm_s0", tp_stride = 1 : i64, weights = 1 : i64, with = ["embed", "final_norm", "lm_head"]}> : () -> ()
  }) : () -> ()
}) : () -> ()

