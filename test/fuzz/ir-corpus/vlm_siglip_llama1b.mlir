module {
  mllm.model @siglip_llama1b {
    mllm.encoder @vision : "siglip_so400m" modality image width 1152 frozen recompute full {
      mllm.layers "patch_embed" : patch_embedding x 1 {bias, channels = 3 : i64, hidden = 1152 : i64, image_height = 384 : i64, image_width = 384 : i64, patch = 14 : i64, position = "learned", positions = 729 : i64}
      mllm.layers "blocks" : transformer_block x 27 {activation = "gelu", bias, ffn = 4304 : i64, head_dim = 72 : i64, heads = 16 : i64, hidden = 1152 : i64, kv_heads = 16 : i64, layer_norm, qkv_bias}
      mllm.layers "post_norm" : norm x 1 {hidden = 1152 : i64, layer_norm}
    }
    mllm.projector @vision_projector mlp @vision -> @llm merge 1 {
      mllm.layers "mlp" : mlp x 1 {activation = "gelu", hidden = 2048 : i64, in = 1152 : i64, out = 2048 : i64} {needs_weight_grad}
    }
    mllm.llm @llm : "llama3_2_1b" width 2048 frozen recompute full {
      mllm.layers "embed" : token_embedding x 1 {hidden = 2048 : i64, vocab = 128256 : i64}
      mllm.layers "blocks" : transformer_block x 16 {activation = "swiglu", ffn = 8192 : i64, gated, head_dim = 64 : i64, heads = 32 : i64, hidden = 2048 : i64, kv_heads = 8 : i64, position = "rope", rope_theta = 5.000000e+05 : f64} {needs_input_grad, recomputes}
      mllm.layers "final_norm" : norm x 1 {hidden = 2048 : i64} {needs_input_grad, recomputes}
      mllm.layers "lm_head" : lm_head x 1 {hidden = 2048 : i64, tied, vocab = 128256 : i64} {needs_input_grad, recomputes}
    }
  }
  mllm.data text 1024 packing 1 seq_len 1753 microbatch 1 x 64 mask causal {
    mllm.input @vision tokens 729 x 1 prepend mask bidirectional
  }
  mllm.cluster 1 x 4 "a40" {inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 48000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, peak_flops = 1.497000e+14 : f64}
  mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
    mllm.module_parallel @vision tp 1 pp 1 cp 1
    mllm.module_parallel @llm tp 1 pp 3 cp 1
  }
  mllm.train steps 100 adamw lr 1.000000e-03 weight_decay 0.000000e+00 precision bf16 seed 0
  mllm.pipeline frozen_aware encoders_parallel microbatches 64 gpus 4 bottleneck 69.240 ms iteration 4566.576 ms {
    mllm.stage @vision_s0 part @vision layers [0, 27) with ["patch_embed", "post_norm", "vision_projector.mlp"] fwd 9.039 ms bwd_w 0.128 ms bwd_d 0.000 ms recompute 0.000 ms memory 935 MiB = weights 801 + grads 26 + optimizer 76 + activations 8 x 4 ranks [0, 1) strides dp 1 cp 1 tp 1
    mllm.stage @llm_s0 part @llm layers [0, 6) with ["embed"] fwd 19.131 ms bwd_w 0.000 ms bwd_d 21.128 ms recompute 19.110 ms memory 1324 MiB = weights 1198 + grads 0 + optimizer 0 + activations 42 x 3 ranks [1, 2) strides dp 1 cp 1 tp 1
    mllm.stage @llm_s1 part @llm layers [6, 13) fwd 22.295 ms bwd_w 0.000 ms bwd_d 24.650 ms recompute 22.295 ms memory 909 MiB = weights 813 + grads 0 + optimizer 0 + activations 48 x 2 ranks [2, 3) strides dp 1 cp 1 tp 1
    mllm.stage @llm_s2 part @llm layers [13, 16) with ["final_norm", "lm_head"] fwd 21.890 ms bwd_w 0.000 ms bwd_d 22.899 ms recompute 21.890 ms memory 885 MiB = weights 850 + grads 0 + optimizer 0 + activations 35 x 1 ranks [3, 4) strides dp 1 cp 1 tp 1
  }
}

