module {
  mllm.model @omni_72b {
    mllm.encoder @vision : "vision_l" modality image width 3840 frozen recompute full {
      mllm.layers "patch_embed" : patch_embedding x 1 {bias, channels = 3 : i64, hidden = 3840 : i64, image_height = 448 : i64, image_width = 448 : i64, patch = 14 : i64, temporal_patch = 2 : i64}
      mllm.layers "blocks" : transformer_block x 64 {activation = "gelu", bias, ffn = 15360 : i64, head_dim = 80 : i64, heads = 48 : i64, hidden = 3840 : i64, kv_heads = 48 : i64, layer_norm, position = "rope", qkv_bias, rope_theta = 1.000000e+04 : f64}
      mllm.layers "post_norm" : norm x 1 {hidden = 3840 : i64, layer_norm}
    }
    mllm.projector @vision_projector mlp @vision -> @llm merge 4 {
      mllm.layers "mlp" : mlp x 1 {activation = "gelu", hidden = 15360 : i64, in = 15360 : i64, out = 8192 : i64} {needs_weight_grad}
    }
    mllm.encoder @audio : "audio_l" modality audio width 5120 frozen recompute full {
      mllm.layers "frontend" : audio_frontend x 1 {frames = 12000 : i64, hidden = 5120 : i64, mel_bins = 80 : i64}
      mllm.layers "blocks" : conformer_block x 48 {activation = "silu", bias, conv_kernel = 3 : i64, ffn = 3584 : i64, head_dim = 64 : i64, heads = 80 : i64, hidden = 5120 : i64, kv_heads = 80 : i64, layer_norm, qkv_bias}
      mllm.layers "post_norm" : norm x 1 {hidden = 5120 : i64, layer_norm}
    }
    mllm.projector @audio_projector mlp @audio -> @llm merge 1 {
      mllm.layers "mlp" : mlp x 1 {activation = "gelu", hidden = 8192 : i64, in = 5120 : i64, out = 8192 : i64} {needs_weight_grad}
    }
    mllm.encoder @video : "qwen2_vl_vision" modality image width 1280 recompute full {
      mllm.layers "patch_embed" : patch_embedding x 1 {bias, channels = 3 : i64, hidden = 1280 : i64, image_height = 448 : i64, image_width = 448 : i64, patch = 14 : i64, temporal_patch = 2 : i64} {needs_weight_grad, recomputes}
      mllm.layers "blocks" : transformer_block x 32 {activation = "gelu", bias, ffn = 5120 : i64, head_dim = 80 : i64, heads = 16 : i64, hidden = 1280 : i64, kv_heads = 16 : i64, layer_norm, position = "rope", qkv_bias, rope_theta = 1.000000e+04 : f64} {needs_input_grad, needs_weight_grad, recomputes}
      mllm.layers "post_norm" : norm x 1 {hidden = 1280 : i64, layer_norm} {needs_input_grad, needs_weight_grad, recomputes}
    }
    mllm.projector @video_projector mlp @video -> @llm merge 4 {
      mllm.layers "mlp" : mlp x 1 {activation = "gelu", hidden = 5120 : i64, in = 5120 : i64, out = 8192 : i64} {needs_input_grad, needs_weight_grad}
    }
    mllm.llm @llm : "qwen2_5_72b" width 8192 frozen recompute full {
      mllm.layers "embed" : token_embedding x 1 {hidden = 8192 : i64, vocab = 152064 : i64}
      mllm.layers "blocks" : transformer_block x 80 {activation = "swiglu", ffn = 29568 : i64, gated, head_dim = 128 : i64, heads = 64 : i64, hidden = 8192 : i64, kv_heads = 8 : i64, position = "rope", qkv_bias, rope_theta = 1.000000e+06 : f64} {needs_input_grad, recomputes}
      mllm.layers "final_norm" : norm x 1 {hidden = 8192 : i64} {needs_input_grad, recomputes}
      mllm.layers "lm_head" : lm_head x 1 {hidden = 8192 : i64, vocab = 152064 : i64} {needs_input_grad, recomputes}
    }
  }
  mllm.data text 8192 packing 1 seq_len 13788 microbatch 1 x 32 mask causal {
    mllm.input @vision tokens 1536 x 2 at [2.500000e-01, 7.500000e-01] mask bidirectional
    mllm.input @audio tokens 1500 x 1 append mask bidirectional
    mllm.input @video tokens 1024 x 1 prepend mask bidirectional
  }
  mllm.cluster 128 x 8 "h100_sxm" {inter_node_bandwidth = 4.000000e+11 : f64, intra_node_bandwidth = 4.500000e+11 : f64, memory = 80000000000 : i64, memory_bandwidth = 3.350000e+12 : f64, peak_flops = 9.890000e+14 : f64}
  mllm.parallel dp 4 encoders_parallel partition frozen_aware cp_balance lpt {
    mllm.module_parallel @vision tp 8 pp 8 cp 1
    mllm.module_parallel @audio tp 8 pp 6 cp 1
    mllm.module_parallel @video tp 8 pp 2 cp 1
    mllm.module_parallel @llm tp 8 pp 8 cp 2
  }
  mllm.cp_assignment @llm cp 2 lpt tokens 13788 tile 128 x 32 ranks [[128:256, 384:512, 640:768, 896:1024, 1152:1664, 1920:2176, 2432:2688, 2944:3072, 3200:3328, 3456:3584, 3712:3840, 3968:4096, 4224:4352, 4480:4736, 4992:5248, 5504:5760, 6016:6272, 6528:6784, 7040:7296, 7552:7808, 8064:8320, 8576:8704, 8832:8960, 9088:9216, 9344:9472, 9600:9728, 9856:9984, 10112:10368, 10624:10880, 11136:11392, 11648:11904, 12160:12288, 12544:12672, 12800:12928, 13056:13184, 13312:13440, 13568:13696], [0:128, 256:384, 512:640, 768:896, 1024:1152, 1664:1920, 2176:2432, 2688:2944, 3072:3200, 3328:3456, 3584:3712, 3840:3968, 4096:4224, 4352:4480, 4736:4992, 5248:5504, 5760:6016, 6272:6528, 6784:7040, 7296:7552, 7808:8064, 8320:8576, 8704:8832, 8960:9088, 9216:9344, 9472:9600, 9728:9856, 9984:10112, 10368:10624, 10880:11136, 11392:11648, 11904:12160, 12288:12544, 12672:12800, 12928:13056, 13184:13312, 13440:13568, 13696:13788]] workload [7707, 7705] imbalance 1.000100e+00
  mllm.train steps 10 adamw lr 1.000000e-04 weight_decay 0.000000e+00 precision bf16 seed 0
  mllm.pipeline frozen_aware encoders_parallel microbatches 32 gpus 256 bottleneck 135.588 ms iteration 5293.270 ms {
    mllm.stage @vision_s0 part @vision layers [0, 8) with ["patch_embed"] fwd 11.364 ms bwd_w 0.000 ms bwd_d 0.000 ms recompute 0.000 ms memory 347 MiB = weights 347 + grads 0 + optimizer 0 + activations 0 x 16 ranks [0, 32) strides dp 8 cp 8 tp 1
    mllm.stage @vision_s1 part @vision layers [8, 16) fwd 11.139 ms bwd_w 0.000 ms bwd_d 0.000 ms recompute 0.000 ms memory 338 MiB = weights 338 + grads 0 + optimizer 0 + activations 0 x 15 ranks [32, 64) strides dp 8 cp 8 tp 1
    mllm.stage @vision_s2 part @vision layers [16, 24) fwd 11.139 ms bwd_w 0.000 ms bwd_d 0.000 ms recompute 0.000 ms memory 338 MiB = weights 338 + grads 0 + optimizer 0 + activations 0 x 14 ranks [64, 96) strides dp 8 cp 8 tp 1
    mllm.stage @vision_s3 part @vision layers [24, 32) fwd 11.139 ms bwd_w 0.000 ms bwd_d 0.000 ms recompute 0.000 ms memory 338 MiB = weights 338 + grads 0 + optimizer 0 + activations 0 x 13 ranks [96, 128) strides dp 8 cp 8 tp 1
    mllm.stage @vision_s4 part @vision layers [32, 40) fwd 11.139 ms bwd_w 0.000 ms bwd_d 0.000 ms recompute 0.000 ms memory 338 MiB = weights 338 + grads 0 + optimizer 0 + activations 0 x 12 ranks [128, 160) strides dp 8 cp 8 tp 1
    mllm.stage @vision_s5 part @vision layers [40, 48) fwd 11.139 ms bwd_w 0.000 ms bwd_d 0.000 ms recompute 0.000 ms memory 338 MiB = weights 338 + grads 0 + optimizer 0 + activations 0 x 11 ranks [160, 192) strides dp 8 cp 8 tp 1
    mllm.stage @vision_s6 part @vision layers [48, 56) fwd 11.139 ms bwd_w 0.000 ms bwd_d 0.000 ms recompute 0.000 ms memory 338 MiB = weights 338 + grads 0 + optimizer 0 + activations 0 x 10 ranks [192, 224) strides dp 8 cp 8 tp 1
    mllm.stage @vision_s7 part @vision layers [56, 64) with ["post_norm", "vision_projector.mlp"] fwd 11.785 ms bwd_w 0.562 ms bwd_d 0.000 ms recompute 0.000 ms memory 2133 MiB = weights 425 + grads 173 + optimizer 518 + activations 113 x 9 ranks [224, 256) strides dp 8 cp 8 tp 1
    mllm.stage @audio_s0 part @audio layers [0, 8) with ["frontend"] fwd 5.484 ms bwd_w 0.000 ms bwd_d 0.000 ms recompute 0.000 ms memory 1695 MiB = weights 1695 + grads 0 + optimizer 0 + activations 0 x 14 ranks [256, 288) strides dp 8 cp 8 tp 1
    mllm.stage @audio_s1 part @audio layers [8, 16) fwd 4.992 ms bwd_w 0.000 ms bwd_d 0.000 ms recompute 0.000 ms memory 1542 MiB = weights 1542 + grads 0 + optimizer 0 + activations 0 x 13 ranks [288, 320) strides dp 8 cp 8 tp 1
    mllm.stage @audio_s2 part @audio layers [16, 24) fwd 4.992 ms bwd_w 0.000 ms bwd_d 0.000 ms recompute 0.000 ms memory 1542 MiB = weights 1542 + grads 0 + optimizer 0 + activations 0 x 12 ranks [320, 352) strides dp 8 cp 8 tp 1
    mllm.stage @audio_s3 part @audio layers [24, 32) fwd 4.992 ms bwd_w 0.000 ms bwd_d 0.000 ms recompute 0.000 ms memory 1542 MiB = weights 1542 + grads 0 + optimizer 0 + activations 0 x 11 ranks [352, 384) strides dp 8 cp 8 tp 1
    mllm.stage @audio_s4 part @audio layers [32, 40) fwd 4.992 ms bwd_w 0.000 ms bwd_d 0.000 ms recompute 0.000 ms memory 1542 MiB = weights 1542 + grads 0 + optimizer 0 + activations 0 x 10 ranks [384, 416) strides dp 8 cp 8 tp 1
    mllm.stage @audio_s5 part @audio layers [40, 48) with ["post_norm", "audio_projector.mlp"] fwd 5.089 ms bwd_w 0.083 ms bwd_d 0.000 ms recompute 0.000 ms memory 1967 MiB = weights 1568 + grads 53 + optimizer 157 + activations 21 x 9 ranks [416, 448) strides dp 8 cp 8 tp 1
    mllm.stage @video_s0 part @video layers [0, 16) with ["patch_embed"] fwd 1.024 ms bwd_w 0.676 ms bwd_d 1.346 ms recompute 1.024 ms memory 2405 MiB = weights 79 + grads 157 + optimizer 469 + activations 170 x 10 ranks [448, 480) strides dp 8 cp 8 tp 1
    mllm.stage @video_s1 part @video layers [16, 32) with ["post_norm", "video_projector.mlp"] fwd 1.044 ms bwd_w 0.693 ms bwd_d 1.391 ms recompute 1.008 ms memory 2473 MiB = weights 92 + grads 184 + optimizer 550 + activations 183 x 9 ranks [480, 512) strides dp 8 cp 8 tp 1
    mllm.stage @llm_s0 part @llm layers [0, 10) with ["embed"] fwd 38.530 ms bwd_w 0.000 ms bwd_d 46.336 ms recompute 38.463 ms memory 11014 MiB = weights 2390 + grads 0 + optimizer 0 + activations 1078 x 8 ranks [512, 576) strides dp 16 cp 8 tp 1
    mllm.stage @llm_s1 part @llm layers [10, 21) fwd 42.309 ms bwd_w 0.000 ms bwd_d 50.970 ms recompute 42.309 ms memory 10598 MiB = weights 2303 + grads 0 + optimizer 0 + activations 1185 x 7 ranks [576, 640) strides dp 16 cp 8 tp 1
    mllm.stage @llm_s2 part @llm layers [21, 32) fwd 42.309 ms bwd_w 0.000 ms bwd_d 50.970 ms recompute 42.309 ms memory 9413 MiB = weights 2303 + grads 0 + optimizer 0 + activations 1185 x 6 ranks [640, 704) strides dp 16 cp 8 tp 1
    mllm.stage @llm_s3 part @llm layers [32, 42) fwd 38.463 ms bwd_w 0.000 ms bwd_d 46.336 ms recompute 38.463 ms memory 7483 MiB = weights 2093 + grads 0 + optimizer 0 + activations 1078 x 5 ranks [704, 768) strides dp 16 cp 8 tp 1
    mllm.stage @llm_s4 part @llm layers [42, 52) fwd 38.463 ms bwd_w 0.000 ms bwd_d 46.336 ms recompute 38.463 ms memory 6405 MiB = weights 2093 + grads 0 + optimizer 0 + activations 1078 x 4 ranks [768, 832) strides dp 16 cp 8 tp 1
    mllm.stage @llm_s5 part @llm layers [52, 62) fwd 38.463 ms bwd_w 0.000 ms bwd_d 46.336 ms recompute 38.463 ms memory 5327 MiB = weights 2093 + grads 0 + optimizer 0 + activations 1078 x 3 ranks [832, 896) strides dp 16 cp 8 tp 1
    mllm.stage @llm_s6 part @llm layers [62, 72) fwd 38.463 ms bwd_w 0.000 ms bwd_d 46.336 ms recompute 38.463 ms memory 4249 MiB = weights 2093 + grads 0 + optimizer 0 + activations 1078 x 2 ranks [896, 960) strides dp 16 cp 8 tp 1
    mllm.stage @llm_s7 part @llm layers [72, 80) with ["final_norm", "lm_head"] fwd 35.213 ms bwd_w 0.000 ms bwd_d 41.512 ms recompute 35.213 ms memory 3050 MiB = weights 1972 + grads 0 + optimizer 0 + activations 1078 x 1 ranks [960, 1024) strides dp 16 cp 8 tp 1
  }
}

