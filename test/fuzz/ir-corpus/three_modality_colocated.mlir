module {
  mllm.model @mmm {
    mllm.encoder @vision : "vision_m" modality image width 2560 frozen recompute full {
      mllm.layers "patch_embed" : patch_embedding x 1 {bias, channels = 3 : i64, hidden = 2560 : i64, image_height = 448 : i64, image_width = 448 : i64, patch = 14 : i64, temporal_patch = 2 : i64}
      mllm.layers "blocks" : transformer_block x 48 {activation = "gelu", bias, ffn = 10240 : i64, head_dim = 80 : i64, heads = 32 : i64, hidden = 2560 : i64, kv_heads = 32 : i64, layer_norm, position = "rope", qkv_bias, rope_theta = 1.000000e+04 : f64}
      mllm.layers "post_norm" : norm x 1 {hidden = 2560 : i64, layer_norm}
    }
    mllm.projector @vision_projector mlp @vision -> @llm merge 4 {
      mllm.layers "mlp" : mlp x 1 {activation = "gelu", hidden = 10240 : i64, in = 10240 : i64, out = 4096 : i64} {needs_weight_grad}
    }
    mllm.encoder @audio : "audio_m" modality audio width 3072 frozen recompute full {
      mllm.layers "frontend" : audio_frontend x 1 {frames = 12000 : i64, hidden = 3072 : i64, mel_bins = 80 : i64}
      mllm.layers "blocks" : conformer_block x 32 {activation = "silu", bias, conv_kernel = 3 : i64, ffn = 3200 : i64, head_dim = 64 : i64, heads = 48 : i64, hidden = 3072 : i64, kv_heads = 48 : i64, layer_norm, qkv_bias}
      mllm.layers "post_norm" : norm x 1 {hidden = 3072 : i64, layer_norm}
    }
    mllm.projector @audio_projector mlp @audio -> @llm merge 1 {
      mllm.layers "mlp" : mlp x 1 {activation = "gelu", hidden = 4096 : i64, in = 3072 : i64, out = 4096 : i64} {needs_weight_grad}
    }
    mllm.llm @llm : "llm_m" width 4096 frozen recompute full {
      mllm.layers "embed" : token_embedding x 1 {hidden = 4096 : i64, vocab = 128256 : i64}
      mllm.layers "blocks" : transformer_block x 32 {activation = "swiglu", ffn = 14336 : i64, gated, head_dim = 128 : i64, heads = 32 : i64, hidden = 4096 : i64, kv_heads = 8 : i64, position = "rope", rope_theta = 5.000000e+05 : f64} {needs_input_grad, recomputes}
      mllm.layers "final_norm" : norm x 1 {hidden = 4096 : i64} {needs_input_grad, recomputes}
      mllm.layers "lm_head" : lm_head x 1 {hidden = 4096 : i64, vocab = 128256 : i64} {needs_input_grad, recomputes}
    }
  }
  mllm.data text 1024 packing 1 seq_len 3685 microbatch 1 x 12 mask causal {
    mllm.input @vision tokens 1161 x 1 prepend mask bidirectional
    mllm.input @audio tokens 1500 x 1 at [5.000000e-01] mask bidirectional
  }
  mllm.cluster 6 x 4 "a40" {inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 48000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, peak_flops = 1.497000e+14 : f64}
  mllm.parallel dp 4 encoders_colocated partition frozen_aware cp_balance lpt {
    mllm.module_parallel @vision tp 1 pp 2 cp 1
    mllm.module_parallel @audio tp 1 pp 2 cp 1
    mllm.module_parallel @llm tp 2 pp 2 cp 1
  }
  mllm.train steps 50 adamw lr 1.000000e-04 weight_decay 0.000000e+00 precision bf16 seed 0
  mllm.pipeline frozen_aware encoders_colocated microbatches 12 gpus 6 bottleneck 650.345 ms iteration 9223.113 ms {
    mllm.stage @vision_s0 part @vision layers [0, 28) with ["patch_embed"] fwd 356.230 ms bwd_w 0.000 ms bwd_d 0.000 ms recompute 0.000 ms memory 4208 MiB = weights 4208 + grads 0 + optimizer 0 + activations 0 x 4 ranks [0, 4) strides dp 1 cp 1 tp 1
    mllm.stage @vision_s1 part @vision layers [28, 48) with ["post_norm", "vision_projector.mlp"] fwd 258.840 ms bwd_w 4.554 ms bwd_d 0.000 ms recompute 0.000 ms memory 5731 MiB = weights 3282 + grads 561 + optimizer 1681 + activations 69 x 3 ranks [4, 8) strides dp 1 cp 1 tp 1
    mllm.stage @audio_s0 part @audio layers [0, 6) with ["frontend"] fwd 28.755 ms bwd_w 0.000 ms bwd_d 0.000 ms recompute 0.000 ms memory 1263 MiB = weights 1263 + grads 0 + optimizer 0 + activations 0 x 4 ranks [0, 4) strides dp 1 cp 1 tp 1
    mllm.stage @audio_s1 part @audio layers [6, 32) with ["post_norm", "audio_projector.mlp"] fwd 120.647 ms bwd_w 1.177 ms bwd_d 0.000 ms recompute 0.000 ms memory 5836 MiB = weights 5287 + grads 113 + optimizer 337 + activations 33 x 3 ranks [4, 8) strides dp 1 cp 1 tp 1
    mllm.stage @llm_s0 part @llm layers [0, 17) with ["embed"] fwd 207.892 ms bwd_w 0.000 ms bwd_d 233.070 ms recompute 207.805 ms memory 5018 MiB = weights 4038 + grads 0 + optimizer 0 + activations 490 x 2 ranks [8, 16) strides dp 2 cp 2 tp 1
    mllm.stage @llm_s1 part @llm layers [17, 32) with ["final_norm", "lm_head"] fwd 209.351 ms bwd_w 0.000 ms bwd_d 231.644 ms recompute 209.351 ms memory 4112 MiB = weights 3622 + grads 0 + optimizer 0 + activations 490 x 1 ranks [16, 24) strides dp 2 cp 2 tp 1
  }
}

