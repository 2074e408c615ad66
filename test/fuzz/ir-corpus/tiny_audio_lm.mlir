module {
  mllm.model @tiny_audio_lm {
    mllm.encoder @audio : "tiny_whisper" modality audio width 32 recompute none {
      mllm.layers "frontend" : audio_frontend x 1 {frames = 16 : i64, hidden = 32 : i64, mel_bins = 16 : i64, position = "sinusoidal", positions = 8 : i64} {needs_weight_grad}
      mllm.layers "blocks" : transformer_block x 2 {activation = "gelu", ffn = 64 : i64, head_dim = 8 : i64, heads = 4 : i64, hidden = 32 : i64, kv_heads = 4 : i64, layer_norm} {needs_input_grad, needs_weight_grad}
      mllm.layers "post_norm" : norm x 1 {hidden = 32 : i64, layer_norm} {needs_input_grad, needs_weight_grad}
    }
    mllm.projector @audio_projector linear @audio -> @llm merge 2 {
      mllm.layers "linear" : linear x 1 {in = 64 : i64, out = 48 : i64} {needs_input_grad, needs_weight_grad}
    }
    mllm.llm @llm : "tiny_gpt" width 48 recompute none {
      mllm.layers "embed" : token_embedding x 1 {hidden = 48 : i64, position = "learned", positions = 128 : i64, vocab = 128 : i64} {needs_weight_grad}
      mllm.layers "blocks" : transformer_block x 2 {activation = "gelu", bias, ffn = 96 : i64, head_dim = 12 : i64, heads = 4 : i64, hidden = 48 : i64, kv_heads = 4 : i64, layer_norm} {needs_input_grad, needs_weight_grad}
      mllm.layers "final_norm" : norm x 1 {hidden = 48 : i64, layer_norm} {needs_input_grad, needs_weight_grad}
      mllm.layers "lm_head" : lm_head x 1 {hidden = 48 : i64, tied, vocab = 128 : i64} {needs_input_grad, needs_weight_grad}
    }
  }
  mllm.data text 24 packing 2 seq_len 64 microbatch 2 x 2 mask causal {
    mllm.input @audio tokens 8 x 1 at [5.000000e-01] mask bidirectional
  }
  mllm.cluster 1 x 2 "a40" {inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 48000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, peak_flops = 1.497000e+14 : f64}
  mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
    mllm.module_parallel @audio tp 1 pp 1 cp 1
    mllm.module_parallel @llm tp 1 pp 1 cp 1
  }
  mllm.train steps 30 adamw lr 3.000000e-03 weight_decay 1.000000e-02 precision fp32 seed 3
  mllm.pipeline frozen_aware encoders_parallel microbatches 2 gpus 2 bottleneck 0.005 ms iteration 0.012 ms {
    mllm.stage @audio_s0 part @audio layers [0, 2) with ["frontend", "post_norm", "audio_projector.linear"] fwd 0.001 ms bwd_w 0.001 ms bwd_d 0.001 ms recompute 0.000 ms memory 5 MiB = weights 1 + grads 1 + optimizer 1 + activations 1 x 2 ranks [0, 1) strides dp 1 cp 1 tp 1
    mllm.stage @llm_s0 part @llm layers [0, 2) with ["embed", "final_norm", "lm_head"] fwd 0.002 ms bwd_w 0.002 ms bwd_d 0.002 ms recompute 0.000 ms memory 4 MiB = weights 1 + grads 1 + optimizer 1 + activations 1 x 1 ranks [1, 2) strides dp 1 cp 1 tp 1
  }
}

