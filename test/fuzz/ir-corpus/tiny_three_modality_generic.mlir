"builtin.module"() ({
  "mllm.model"() <{sym_name = "tiny_omni"}> ({
    "mllm.encoder"() <{frozen, instance = "tiny_vit", modality = 0 : i32, recompute = 0 : i32, sym_name = "vision", width = 32 : i64}> ({
      "mllm.layers"() <{config = {channels = 3 : i64, hidden = 32 : i64, image_height = 32 : i64, image_width = 32 : i64, patch = 8 : i64, position = "learned", positions = 16 : i64}, count = 1 : i64, kind = 1 : i32, name = "patch_embed"}> : () -> ()
      "mllm.layers"() <{config = {activation = "gelu", ffn = 64 : i64, head_dim = 16 : i64, heads = 2 : i64, hidden = 32 : i64, kv_heads = 2 : i64, layer_norm}, count = 2 : i64, kind = 3 : i32, name = "blocks"}> : () -> ()
      "mllm.layers"() <{config = {hidden = 32 : i64, layer_norm}, count = 1 : i64, kind = 5 : i32, name = "post_norm"}> : () -> ()
    }) : () -> ()
    "mllm.projector"() <{kind = 1 : i32, merge = 1 : i64, source = @vision, sym_name = "vision_projector", target = @llm}> ({
      "mllm.layers"() <{config = {activation = "gelu", hidden = 64 : i64, in = 32 : i64, out = 64 : i64}, count = 1 : i64, kind = 8 : i32, name = "mlp"}> {needs_weight_grad} : () -> ()
    }) : () -> ()
    "mllm.encoder"() <{instance = "tiny_whisper", modality = 1 : i32, recompute = 0 : i32, sym_name = "audio", width = 32 : i64}> ({
      "mllm.layers"() <{config = {frames = 16 : i64, hidden = 32 : i64, mel_bins = 16 : i64, position = "sinusoidal", positions = 8 : i64}, count = 1 : i64, kind = 2 : i32, name = "frontend"}> {needs_weight_grad} : () -> ()
      "mllm.layers"() <{config = {activation = "gelu", ffn = 64 : i64, head_dim = 8 : i64, heads = 4 : i64, hidden = 32 : i64, kv_heads = 4 : i64, layer_norm}, count = 2 : i64, kind = 3 : i32, name = "blocks"}> {needs_input_grad, needs_weight_grad} : () -> ()
      "mllm.layers"() <{config = {hidden = 32 : i64, layer_norm}, count = 1 : i64, kind = 5 : i32, name = "post_norm"}> {needs_input_grad, needs_weight_grad} : () -> ()
    }) : () -> ()
    "mllm.projector"() <{kind = 0 : i32, merge = 2 : i64, source = @audio, sym_name = "audio_projector", target = @llm}> ({
      "mllm.layers"() <{config = {in = 64 : i64, out = 64 : i64}, count = 1 : i64, kind = 7 : i32, name = "linear"}> {needs_input_grad, needs_weight_grad} : () -> ()
    }) : () -> ()
    "mllm.encoder"() <{instance = "tiny_frames", modality = 0 : i32, recompute = 0 : i32, sym_name = "video", width = 24 : i64}> ({
      "mllm.layers"() <{config = {channels = 3 : i64, hidden = 24 : i64, image_height = 16 : i64, image_width = 16 : i64, patch = 8 : i64, position = "learned", positions = 4 : i64}, count = 1 : i64, kind = 1 : i32, name = "patch_embed"}> {needs_weight_grad} : () -> ()
      "mllm.layers"() <{config = {activation = "silu", ffn = 48 : i64, head_dim = 12 : i64, heads = 2 : i64, hidden = 24 : i64, kv_heads = 2 : i64}, count = 1 : i64, kind = 3 : i32, name = "blocks"}> {needs_input_grad, needs_weight_grad} : () -> ()
      "mllm.layers"() <{config = {hidden = 24 : i64}, count = 1 : i64, kind = 5 : i32, name = "post_norm"}> {needs_input_grad, needs_weight_grad} : () -> ()
    }) : () -> ()
    "mllm.projector"() <{kind = 1 : i32, merge = 1 : i64, source = @video, sym_name = "video_projector", target = @llm}> ({
      "mllm.layers"() <{config = {activation = "gelu", hidden = 64 : i64, in = 24 : i64, out = 64 : i64}, count = 1 : i64, kind = 8 : i32, name = "mlp"}> {needs_input_grad, needs_weight_grad} : () -> ()
    }) : () -> ()
    "mllm.llm"() <{instance = "tiny_llama", recompute = 0 : i32, sym_name = "llm", width = 64 : i64}> ({
      "mllm.layers"() <{config = {hidden = 64 : i64, vocab = 256 : i64}, count = 1 : i64, kind = 0 : i32, name = "embed"}> {needs_weight_grad} : () -> ()
      "mllm.layers"() <{config = {activation = "swiglu", ffn = 128 : i64, gated, head_dim = 16 : i64, heads = 4 : i64, hidden = 64 : i64, kv_heads = 2 : i64, position = "rope", rope_theta = 1.000000e+04 : f64}, count = 3 : i64, kind = 3 : i32, name = "blocks"}> {needs_input_grad, needs_weight_grad} : () -> ()
      "mllm.layers"() <{config = {hidden = 64 : i64}, count = 1 : i64, kind = 5 : i32, name = "final_norm"}> {needs_input_grad, needs_weight_grad} : () -> ()
      "mllm.layers"() <{config = {hidden = 64 : i64, vocab = 256 : i64}, count = 1 : i64, kind = 6 : i32, name = "lm_head"}> {needs_input_grad, needs_weight_grad} : () -> ()
    }) : () -> ()
  }) : () -> ()
  "mllm.data"() <{microbatch_size = 1 : i64, microbatches = 4 : i64, packing = 2 : i64, seq_len = 120 : i64, text_mask = 0 : i32, text_tokens = 32 : i64}> ({
    "mllm.input"() <{encoder = @vision, items = 1 : i64, mask = 1 : i32, placement = 2 : i32, positions = array<f64: 2.500000e-01>, tokens = 16 : i64}> : () -> ()
    "mllm.input"() <{encoder = @audio, items = 1 : i64, mask = 1 : i32, placement = 1 : i32, tokens = 4 : i64}> : () -> ()
    "mllm.input"() <{encoder = @video, items = 2 : i64, mask = 1 : i32, placement = 0 : i32, tokens = 4 : i64}> : () -> ()
  }) : () -> ()
  "mllm.cluster"() <{gpu = "a40", gpus_per_node = 4 : i64, inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 48000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, nodes = 1 : i64, peak_flops = 1.497000e+14 : f64}> : () -> ()
  "mllm.parallel"() <{cp_balance = 0 : i32, dp = 1 : i64, layout = 1 : i32, partition = 0 : i32}> ({
    "mllm.module_parallel"() <{cp = 1 : i64, part = @vision, pp = 1 : i64, tp = 1 : i64}> : () -> ()
    "mllm.module_parallel"() <{cp = 1 : i64, part = @audio, pp = 1 : i64, tp = 1 : i64}> : () -> ()
    "mllm.module_parallel"() <{cp = 1 : i64, part = @video, pp = 1 : i64, tp = 1 : i64}> : () -> ()
    "mllm.module_parallel"() <{cp = 1 : i64, part = @llm, pp = 3 : i64, tp = 1 : i64}> : () -> ()
  }) : () -> ()
  "mllm.train"() <{lr = 3.000000e-03 : f64, optimizer = 0 : i32, precision = 2 : i32, seed = 1 : i64, steps = 30 : i64, weight_decay = 0.000000e+00 : f64}> : () -> ()
  "mllm.pipeline"() <{bottleneck = 5.000000e-03 : f64, gpus = 4 : i64, iteration = 2.500000e-02 : f64, layout = 1 : i32, microbatches = 4 : i64, policy = 0 : i32}> ({
    "mllm.stage"() <{activations = 1 : i64, begin = 0 : i64, bwd_d = 0.000000e+00 : f64, bwd_w = 0.000000e+00 : f64, cp_stride = 1 : i64, dp_stride = 1 : i64, end = 2 : i64, end_rank = 1 : i64, first_rank = 0 : i64, fwd = 0.000000e+00 : f64, grads = 1 : i64, in_flight = 4 : i64, memory = 7 : i64, optimizer = 1 : i64, part = @vision, recompute = 0.000000e+00 : f64, sym_name = "vision_s0", tp_stride = 1 : i64, weights = 1 : i64, with = ["patch_embed", "post_norm", "vision_projector.mlp"]}> : () -> ()
    "mllm.stage"() <{activations = 1 : i64, begin = 0 : i64, bwd_d = 0.000000e+00 : f64, bwd_w = 0.000000e+00 : f64, cp_stride = 1 : i64, dp_stride = 1 : i64, end = 2 : i64, end_rank = 1 : i64, first_rank = 0 : i64, fwd = 0.000000e+00 : f64, grads = 1 : i64, in_flight = 4 : i64, memory = 7 : i64, optimizer = 1 : i64, part = @audio, recompute = 0.000000e+00 : f64, sym_name = "audio_s0", tp_stride = 1 : i64, weights = 1 : i64, with = ["frontend", "post_norm", "audio_projector.linear"]}> : () -> ()
    "mllm.stage"() <{activations = 1 : i64, begin = 0 : i64, bwd_d = 0.000000e+00 : f64, bwd_w = 0.000000e+00 : f64, cp_stride = 1 : i64, dp_stride = 1 : i64, end = 1 : i64, end_rank = 1 : i64, first_rank = 0 : i64, fwd = 0.000000e+00 : f64, grads = 1 : i64, in_flight = 4 : i64, memory = 7 : i64, optimizer = 1 : i64, part = @video, recompute = 0.000000e+00 : f64, sym_name = "video_s0", tp_stride = 1 : i64, weights = 1 : i64, with = ["patch_embed", "post_norm", "video_projector.mlp"]}> : () -> ()
    "mllm.stage"() <{activations = 1 : i64, begin = 0 : i64, bwd_d = 1.000000e-03 : f64, bwd_w = 1.000000e-03 : f64, cp_stride = 1 : i64, dp_stride = 1 : i64, end = 1 : i64, end_rank = 2 : i64, first_rank = 1 : i64, fwd = 1.000000e-03 : f64, grads = 1 : i64, in_flight = 3 : i64, memory = 6 : i64, optimizer = 1 : i64, part = @llm, recompute = 0.000000e+00 : f64, sym_name = "llm_s0", tp_stride = 1 : i64, weights = 1 : i64, with = ["embed"]}> : () -> ()
    "mllm.stage"() <{activations = 1 : i64, begin = 1 : i64, bwd_d = 1.000000e-03 : f64, bwd_w = 1.000000e-03 : f64, cp_stride = 1 : i64, dp_stride = 1 : i64, end = 2 : i64, end_rank = 3 : i64, first_rank = 2 : i64, fwd = 1.000000e-03 : f64, grads = 1 : i64, in_flight = 2 : i64, memory = 5 : i64, optimizer = 1 : i64, part = @llm, recompute = 0.000000e+00 : f64, sym_name = "llm_s1", tp_stride = 1 : i64, weights = 1 : i64}> : () -> ()
    "mllm.stage"() <{activations = 1 : i64, begin = 2 : i64, bwd_d = 2.000000e-03 : f64, bwd_w = 1.000000e-03 : f64, cp_stride = 1 : i64, dp_stride = 1 : i64, end = 3 : i64, end_rank = 4 : i64, first_rank = 3 : i64, fwd = 2.000000e-03 : f64, grads = 1 : i64, in_flight = 1 : i64, memory = 4 : i64, optimizer = 1 : i64, part = @llm, recompute = 0.000000e+00 : f64, sym_name = "llm_s2", tp_stride = 1 : i64, weights = 1 : i64, with = ["final_norm", "lm_head"]}> : () -> ()
  }) : () -> ()
}) : () -> ()

