module {
  mllm.model @tiny_omni {
    mllm.encoder @vision : "tiny_vit" modality image width 32 frozen recompute none {
      mllm.layers "patch_embed" : patch_embedding x 1 {channels = 3 : i64, hidden = 32 : i64, image_height = 32 : i64, image_width = 32 : i64, patch = 8 : i64, position = "learned", positions = 16 : i64}
      mllm.layers "blocks" : transformer_block x 2 {activation = "gelu", ffn = 64 : i64, head_dim = 16 : i64, heads = 2 : i64, hidden = 32 : i64, kv_heads = 2 : i64, layer_norm}
      mllm.layers "post_norm" : norm x 1 {hidden = 32 : i64, layer_norm}
    }
    mllm.projector @vision_projector mlp @vision -> @llm merge 1 {
      mllm.layers "mlp" : mlp x 1 {activation = "gelu", hidden = 64 : i64, in = 32 : i64, out = 64 : i64} {needs_weight_grad}
    }
    mllm.encoder @audio : "tiny_whisper" modality audio width 32 recompute none {
      mllm.layers "frontend" : audio_frontend x 1 {frames = 16 : i64, hidden = 32 : i64, mel_bins = 16 : i64, position = "sinusoidal", positions = 8 : i64} {needs_weight_grad}
      mllm.layers "blocks" : transformer_block x 2 {activation = "gelu", ffn = 64 : i64, head_dim = 8 : i64, heads = 4 : i64, hidden = 32 : i64, kv_heads = 4 : i64, layer_norm} {needs_input_grad, needs_weight_grad}
      mllm.layers "post_norm" : norm x 1 {hidden = 32 : i64, layer_norm} {needs_input_grad, needs_weight_grad}
    }
    mllm.projector @audio_projector linear @audio -> @llm merge 2 {
      mllm.layers "linear" : linear x 1 {in = 64 : i64, out = 64 : i64} {needs_input_grad, needs_weight_grad}
    }
    mllm.encoder @video : "tiny_frames" modality image width 24 recompute none {
      mllm.layers "patch_embed" : patch_embedding x 1 {channels = 3 : i64, hidden = 24 : i64, image_height = 16 : i64, image_width = 16 : i64, patch = 8 : i64, position = "learned", positions = 4 : i64} {needs_weight_grad}
      mllm.layers "blocks" : transformer_block x 1 {activation = "silu", ffn = 48 : i64, head_dim = 12 : i64, heads = 2 : i64, hidden = 24 : i64, kv_heads = 2 : i64} {needs_input_grad, needs_weight_grad}
      mllm.layers "post_norm" : norm x 1 {hidden = 24 : i64} {needs_input_grad, needs_weight_grad}
    }
    mllm.projector @video_projector mlp @video -> @llm merge 1 {
      mllm.layers "mlp" : mlp x 1 {activation = "gelu", hidden = 64 : i64, in = 24 : i64, out = 64 : i64} {needs_input_grad, needs_weight_grad}
    }
    mllm.llm @llm : "tiny_llama" width 64 recompute none {
      mllm.layers "embed" : token_embedding x 1 {hidden = 64 : i64, vocab = 256 : i64} {needs_weight_grad}
      mllm.layers "blocks" : transformer_block x 3 {activation = "swiglu", ffn = 128 : i64, gated, head_dim = 16 : i64, heads = 4 : i64, hidden = 64 : i64, kv_heads = 2 : i64, position = "rope", rope_theta = 1.000000e+04 : f64} {needs_input_grad, needs_weight_grad}
      mllm.layers "final_norm" : norm x 1 {hidden = 64 : i64} {needs_input_grad, needs_weight_grad}
      mllm.layers "lm_head" : lm_head x 1 {hidden = 64 : i64, vocab = 256 : i64} {needs_input_grad, needs_weight_grad}
    }
  }
  mllm.data text 32 packing 2 seq_len 120 microbatch 1 x 4 mask causal {
    mllm.input @vision tokens 16 x 1 at [2.500000e-01] mask bidirectional
    mllm.input @audio tokens 4 x 1 append mask bidirectional
    mllm.input @video tokens 4 x 2 prepend mask bidirectional
  }
  mllm.cluster 1 x 4 "a40" {inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 48000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, peak_flops = 1.497000e+14 : f64}
  mllm.parallel dp 1 encoders_colocated partition frozen_aware cp_balance lpt {
    mllm.module_parallel @vision tp 1 pp 1 cp 1
    mllm.module_parallel @audio tp 1 pp 1 cp 1
    mllm.module_parallel @video tp 1 pp 1 cp 1
    mllm.module_parallel @llm tp 1 pp 3 cp 1
  }
  mllm.train steps 30 adamw lr 3.000000e-03 weight_decay 0.000000e+00 precision fp32 seed 1
  mllm.pipeline frozen_aware encoders_colocated microbatches 4 gpus 4 bottleneck 0.005 ms iteration 0.025 ms {
    mllm.stage @vision_s0 part @vision layers [0, 2) with ["patch_embed", "post_norm", "vision_projector.mlp"] fwd 0.000 ms bwd_w 0.000 ms bwd_d 0.000 ms recompute 0.000 ms memory 7 MiB = weights 1 + grads 1 + optimizer 1 + activations 1 x 4 ranks [0, 1) strides dp 1 cp 1 tp 1
    mllm.stage @audio_s0 part @audio layers [0, 2) with ["frontend", "post_norm", "audio_projector.linear"] fwd 0.000 ms bwd_w 0.000 ms bwd_d 0.000 ms recompute 0.000 ms memory 7 MiB = weights 1 + grads 1 + optimizer 1 + activations 1 x 4 ranks [0, 1) strides dp 1 cp 1 tp 1
    mllm.stage @video_s0 part @video layers [0, 1) with ["patch_embed", "post_norm", "video_projector.mlp"] fwd 0.000 ms bwd_w 0.000 ms bwd_d 0.000 ms recompute 0.000 ms memory 7 MiB = weights 1 + grads 1 + optimizer 1 + activations 1 x 4 ranks [0, 1) strides dp 1 cp 1 tp 1
    mllm.stage @llm_s0 part @llm layers [0, 1) with ["embed"] fwd 0.001 ms bwd_w 0.001 ms bwd_d 0.001 ms recompute 0.000 ms memory 6 MiB = weights 1 + grads 1 + optimizer 1 + activations 1 x 3 ranks [1, 2) strides dp 1 cp 1 tp 1
    mllm.stage @llm_s1 part @llm layers [1, 2) fwd 0.001 ms bwd_w 0.001 ms bwd_d 0.001 ms recompute 0.000 ms memory 5 MiB = weights 1 + grads 1 + optimizer 1 + activations 1 x 2 ranks [2, 3) strides dp 1 cp 1 tp 1
    mllm.stage @llm_s2 part @llm layers [2, 3) with ["final_norm", "lm_head"] fwd 0.002 ms bwd_w 0.001 ms bwd_d 0.002 ms recompute 0.000 ms memory 4 MiB = weights 1 + grads 1 + optimizer 1 + activations 1 x 1 ranks [3, 4) strides dp 1 cp 1 tp 1
  }
  sched.schedule multimodal_1f1b microbatches 4 {
    sched.program @"vision+audio+video_s0" stage 0 part "vision+audio+video" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 4 {
      sched.forward mb 0
      sched.send_act mb 0 to @llm_s0 tag 0 shape [32, 64] x f32 + [8, 64] x f32 + [16, 64] x f32 bytes 14336
      sched.forward mb 1
      sched.send_act mb 1 to @llm_s0 tag 2 shape [32, 64] x f32 + [8, 64] x f32 + [16, 64] x f32 bytes 14336
      sched.forward mb 2
      sched.send_act mb 2 to @llm_s0 tag 4 shape [32, 64] x f32 + [8, 64] x f32 + [16, 64] x f32 bytes 14336
      sched.forward mb 3
      sched.send_act mb 3 to @llm_s0 tag 6 shape [32, 64] x f32 + [8, 64] x f32 + [16, 64] x f32 bytes 14336
      sched.recv_grad mb 0 from @llm_s0 tag 1 shape [32, 64] x f32 + [8, 64] x f32 + [16, 64] x f32 bytes 14336
      sched.backward_input mb 0
      sched.backward_weight mb 0
      sched.recv_grad mb 1 from @llm_s0 tag 3 shape [32, 64] x f32 + [8, 64] x f32 + [16, 64] x f32 bytes 14336
      sched.backward_input mb 1
      sched.backward_weight mb 1
      sched.recv_grad mb 2 from @llm_s0 tag 5 shape [32, 64] x f32 + [8, 64] x f32 + [16, 64] x f32 bytes 14336
      sched.backward_input mb 2
      sched.backward_weight mb 2
      sched.recv_grad mb 3 from @llm_s0 tag 7 shape [32, 64] x f32 + [8, 64] x f32 + [16, 64] x f32 bytes 14336
      sched.backward_input mb 3
      sched.backward_weight mb 3
      sched.optimizer_step
    }
    sched.program @llm_s0 stage 1 part "llm" llm ranks first 1 dp 1 stride 1 cp 1 tp 1 max_in_flight 3 {
      sched.recv_act mb 0 from @"vision+audio+video_s0" tag 0 shape [32, 64] x f32 + [8, 64] x f32 + [16, 64] x f32 bytes 14336
      sched.forward mb 0
      sched.send_act mb 0 to @llm_s1 tag 0 shape [120, 64] x f32 bytes 30720
      sched.recv_act mb 1 from @"vision+audio+video_s0" tag 2 shape [32, 64] x f32 + [8, 64] x f32 + [16, 64] x f32 bytes 14336
      sched.forward mb 1
      sched.send_act mb 1 to @llm_s1 tag 2 shape [120, 64] x f32 bytes 30720
      sched.recv_act mb 2 from @"vision+audio+video_s0" tag 4 shape [32, 64] x f32 + [8, 64] x f32 + [16, 64] x f32 bytes 14336
      sched.forward mb 2
      sched.send_act mb 2 to @llm_s1 tag 4 shape [120, 64] x f32 bytes 30720
      sched.recv_grad mb 0 from @llm_s1 tag 1 shape [120, 64] x f32 bytes 30720
      sched.backward_input mb 0
      sched.send_grad mb 0 to @"vision+audio+video_s0" tag 1 shape [32, 64] x f32 + [8, 64] x f32 + [16, 64] x f32 bytes 14336
      sched.backward_weight mb 0
      sched.recv_act mb 3 from @"vision+audio+video_s0" tag 6 shape [32, 64] x f32 + [8, 64] x f32 + [16, 64] x f32 bytes 14336
      sched.forward mb 3
      sched.send_act mb 3 to @llm_s1 tag 6 shape [120, 64] x f32 bytes 30720
      sched.recv_grad mb 1 from @llm_s1 tag 3 shape [120, 64] x f32 bytes 30720
      sched.backward_input mb 1
      sched.send_grad mb 1 to @"vision+audio+video_s0" tag 3 shape [32, 64] x f32 + [8, 64] x f32 + [16, 64] x f32 bytes 14336
      sched.backward_weight mb 1
      sched.recv_grad mb 2 from @llm_s1 tag 5 shape [120, 64] x f32 bytes 30720
      sched.backward_input mb 2
      sched.send_grad mb 2 to @"vision+audio+video_s0" tag 5 shape [32, 64] x f32 + [8, 64] x f32 + [16, 64] x f32 bytes 14336
      sched.backward_weight mb 2
      sched.recv_grad mb 3 from @llm_s1 tag 7 shape [120, 64] x f32 bytes 30720
      sched.backward_input mb 3
      sched.send_grad mb 3 to @"vision+audio+video_s0" tag 7 shape [32, 64] x f32 + [8, 64] x f32 + [16, 64] x f32 bytes 14336
      sched.backward_weight mb 3
      sched.optimizer_step
    }
    sched.program @llm_s1 stage 2 part "llm" llm ranks first 2 dp 1 stride 1 cp 1 tp 1 max_in_flight 2 {
      sched.recv_act mb 0 from @llm_s0 tag 0 shape [120, 64] x f32 bytes 30720
      sched.forward mb 0
      sched.send_act mb 0 to @llm_s2 tag 0 shape [120, 64] x f32 bytes 30720
      sched.recv_act mb 1 from @llm_s0 tag 2 shape [120, 64] x f32 bytes 30720
      sched.forward mb 1
      sched.send_act mb 1 to @llm_s2 tag 2 shape [120, 64] x f32 bytes 30720
      sched.recv_grad mb 0 from @llm_s2 tag 1 shape [120, 64] x f32 bytes 30720
      sched.backward_input mb 0
      sched.send_grad mb 0 to @llm_s0 tag 1 shape [120, 64] x f32 bytes 30720
      sched.backward_weight mb 0
      sched.recv_act mb 2 from @llm_s0 tag 4 shape [120, 64] x f32 bytes 30720
      sched.forward mb 2
      sched.send_act mb 2 to @llm_s2 tag 4 shape [120, 64] x f32 bytes 30720
      sched.recv_grad mb 1 from @llm_s2 tag 3 shape [120, 64] x f32 bytes 30720
      sched.backward_input mb 1
      sched.send_grad mb 1 to @llm_s0 tag 3 shape [120, 64] x f32 bytes 30720
      sched.backward_weight mb 1
      sched.recv_act mb 3 from @llm_s0 tag 6 shape [120, 64] x f32 bytes 30720
      sched.forward mb 3
      sched.send_act mb 3 to @llm_s2 tag 6 shape [120, 64] x f32 bytes 30720
      sched.recv_grad mb 2 from @llm_s2 tag 5 shape [120, 64] x f32 bytes 30720
      sched.backward_input mb 2
      sched.send_grad mb 2 to @llm_s0 tag 5 shape [120, 64] x f32 bytes 30720
      sched.backward_weight mb 2
      sched.recv_grad mb 3 from @llm_s2 tag 7 shape [120, 64] x f32 bytes 30720
      sched.backward_input mb 3
      sched.send_grad mb 3 to @llm_s0 tag 7 shape [120, 64] x f32 bytes 30720
      sched.backward_weight mb 3
      sched.optimizer_step
    }
    sched.program @llm_s2 stage 3 part "llm" llm ranks first 3 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
      sched.recv_act mb 0 from @llm_s1 tag 0 shape [120, 64] x f32 bytes 30720
      sched.forward mb 0
      sched.backward_input mb 0
      sched.send_grad mb 0 to @llm_s1 tag 1 shape [120, 64] x f32 bytes 30720
      sched.backward_weight mb 0
      sched.recv_act mb 1 from @llm_s1 tag 2 shape [120, 64] x f32 bytes 30720
      sched.forward mb 1
      sched.backward_input mb 1
      sched.send_grad mb 1 to @llm_s1 tag 3 shape [120, 64] x f32 bytes 30720
      sched.backward_weight mb 1
      sched.recv_act mb 2 from @llm_s1 tag 4 shape [120, 64] x f32 bytes 30720
      sched.forward mb 2
      sched.backward_input mb 2
      sched.send_grad mb 2 to @llm_s1 tag 5 shape [120, 64] x f32 bytes 30720
      sched.backward_weight mb 2
      sched.recv_act mb 3 from @llm_s1 tag 6 shape [120, 64] x f32 bytes 30720
      sched.forward mb 3
      sched.backward_input mb 3
      sched.send_grad mb 3 to @llm_s1 tag 7 shape [120, 64] x f32 bytes 30720
      sched.backward_weight mb 3
      sched.optimizer_step
    }
  }
}

