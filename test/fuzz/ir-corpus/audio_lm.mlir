module {
  mllm.model @qwen_audio_7b {
    mllm.encoder @audio : "qwen2_audio_encoder" modality audio width 1280 recompute full {
      mllm.layers "frontend" : audio_frontend x 1 {frames = 3000 : i64, hidden = 1280 : i64, mel_bins = 128 : i64, position = "sinusoidal", positions = 1500 : i64} {needs_weight_grad, recomputes}
      mllm.layers "blocks" : transformer_block x 32 {activation = "gelu", bias, ffn = 5120 : i64, head_dim = 64 : i64, heads = 20 : i64, hidden = 1280 : i64, kv_heads = 20 : i64, layer_norm, qkv_bias} {needs_input_grad, needs_weight_grad, recomputes}
      mllm.layers "post_norm" : norm x 1 {hidden = 1280 : i64, layer_norm} {needs_input_grad, needs_weight_grad, recomputes}
    }
    mllm.projector @audio_projector linear @audio -> @llm merge 2 {
      mllm.layers "linear" : linear x 1 {in = 2560 : i64, out = 3584 : i64} {needs_input_grad, needs_weight_grad}
    }
    mllm.llm @llm : "qwen2_5_7b" width 3584 frozen recompute full {
      mllm.layers "embed" : token_embedding x 1 {hidden = 3584 : i64, vocab = 152064 : i64}
      mllm.layers "blocks" : transformer_block x 28 {activation = "swiglu", ffn = 18944 : i64, gated, head_dim = 128 : i64, heads = 28 : i64, hidden = 3584 : i64, kv_heads = 4 : i64, position = "rope", qkv_bias, rope_theta = 1.000000e+06 : f64} {needs_input_grad, recomputes}
      mllm.layers "final_norm" : norm x 1 {hidden = 3584 : i64} {needs_input_grad, recomputes}
      mllm.layers "lm_head" : lm_head x 1 {hidden = 3584 : i64, vocab = 152064 : i64} {needs_input_grad, recomputes}
    }
  }
  mllm.data text 1024 packing 1 seq_len 4024 microbatch 1 x 16 mask causal {
    mllm.input @audio tokens 3000 x 1 at [5.000000e-01] mask bidirectional
  }
  mllm.cluster 2 x 8 "h100_sxm" {inter_node_bandwidth = 4.000000e+11 : f64, intra_node_bandwidth = 4.500000e+11 : f64, memory = 80000000000 : i64, memory_bandwidth = 3.350000e+12 : f64, peak_flops = 9.890000e+14 : f64}
  mllm.parallel dp 2 encoders_parallel partition frozen_aware cp_balance lpt {
    mllm.module_parallel @audio tp 2 pp 1 cp 1
    mllm.module_parallel @llm tp 2 pp 3 cp 1
  }
  mllm.train steps 1000 adamw lr 2.000000e-05 weight_decay 1.000000e-01 precision bf16 seed 0
  mllm.pipeline frozen_aware encoders_parallel microbatches 16 gpus 8 bottleneck 66.407 ms iteration 1250.132 ms {
    mllm.stage @audio_s0 part @audio layers [0, 32) with ["frontend", "post_norm", "audio_projector.linear"] fwd 13.810 ms bwd_w 7.842 ms bwd_d 19.631 ms recompute 13.754 ms memory 7616 MiB = weights 624 + grads 1247 + optimizer 3741 + activations 501 x 4 ranks [0, 4) strides dp 2 cp 2 tp 1
    mllm.stage @llm_s0 part @llm layers [0, 10) with ["embed"] fwd 21.329 ms bwd_w 0.000 ms bwd_d 23.659 ms recompute 21.311 ms memory 3571 MiB = weights 2743 + grads 0 + optimizer 0 + activations 276 x 3 ranks [4, 8) strides dp 2 cp 2 tp 1
    mllm.stage @llm_s1 part @llm layers [10, 20) fwd 21.311 ms bwd_w 0.000 ms bwd_d 23.659 ms recompute 21.311 ms memory 2775 MiB = weights 2223 + grads 0 + optimizer 0 + activations 276 x 2 ranks [8, 12) strides dp 2 cp 2 tp 1
    mllm.stage @llm_s2 part @llm layers [20, 28) with ["final_norm", "lm_head"] fwd 21.510 ms bwd_w 0.000 ms bwd_d 23.388 ms recompute 21.510 ms memory 2574 MiB = weights 2298 + grads 0 + optimizer 0 + activations 276 x 1 ranks [12, 16) strides dp 2 cp 2 tp 1
  }
}

