module {
  mllm.model @tiny_vlm {
    mllm.encoder @vision : "tiny_vit" modality image width 32 frozen recompute none {
      mllm.layers "patch_embed" : patch_embedding x 1 {channels = 3 : i64, hidden = 32 : i64, image_height = 32 : i64, image_width = 32 : i64, patch = 8 : i64, position = "learned", positions = 16 : i64}
      mllm.layers "blocks" : transformer_block x 2 {activation = "gelu", ffn = 64 : i64, head_dim = 16 : i64, heads = 2 : i64, hidden = 32 : i64, kv_heads = 2 : i64, layer_norm}
      mllm.layers "post_norm" : norm x 1 {hidden = 32 : i64, layer_norm}
    }
    mllm.projector @vision_projector mlp @vision -> @llm merge 1 {
      mllm.layers "mlp" : mlp x 1 {activation = "gelu", hidden = 64 : i64, in = 32 : i64, out = 64 : i64} {needs_weight_grad}
    }
    mllm.llm @llm : "tiny_llama" width 64 recompute none {
      mllm.layers "embed" : token_embedding x 1 {hidden = 64 : i64, vocab = 256 : i64} {needs_weight_grad}
      mllm.layers "blocks" : transformer_block x 2 {activation = "swiglu", ffn = 128 : i64, gated, head_dim = 16 : i64, heads = 4 : i64, hidden = 64 : i64, kv_heads = 2 : i64, position = "rope", rope_theta = 1.000000e+04 : f64} {needs_input_grad, needs_weight_grad}
      mllm.layers "final_norm" : norm x 1 {hidden = 64 : i64} {needs_input_grad, needs_weight_grad}
      mllm.layers "lm_head" : lm_head x 1 {hidden = 64 : i64, vocab = 256 : i64} {needs_input_grad, needs_weight_grad}
    }
  }
  mllm.data text 48 packing 1 seq_len 64 microbatch 1 x 2 mask causal {
    mllm.input @vision tokens 16 x 1 prepend mask bidirectional
  }
  mllm.cluster 1 x 2 "a40" {inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 48000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, peak_flops = 1.497000e+14 : f64}
  mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
    mllm.module_parallel @vision tp 1 pp 1 cp 1
    mllm.module_parallel @llm tp 1 pp 1 cp 1
  }
  mllm.train steps 20 adamw lr 3.000000e-03 weight_decay 0.000000e+00 precision fp32 seed 7
  mllm.pipeline frozen_aware encoders_parallel microbatches 2 gpus 2 bottleneck 0.005 ms iteration 0.010 ms {
    mllm.stage @vision_s0 part @vision layers [0, 2) with ["patch_embed", "post_norm", "vision_projector.mlp"] fwd 0.000 ms bwd_w 0.000 ms bwd_d 0.000 ms recompute 0.000 ms memory 5 MiB = weights 1 + grads 1 + optimizer 1 + activations 1 x 2 ranks [0, 1) strides dp 1 cp 1 tp 1
    mllm.stage @llm_s0 part @llm layers [0, 2) with ["embed", "final_norm", "lm_head"] fwd 0.002 ms bwd_w 0.001 ms bwd_d 0.002 ms recompute 0.000 ms memory 4 MiB = weights 1 + grads 1 + optimizer 1 + activations 1 x 1 ranks [1, 2) strides dp 1 cp 1 tp 1
  }
  sched.schedule multimodal_1f1b microbatches 2 {
    sched.program @vision_s0 stage 0 part "vision" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 2 {
      sched.forward mb 0
      sched.send_act mb 0 to @llm_s0 tag 0 shape [16, 64] x f32 bytes 4096
      sched.forward mb 1
      sched.send_act mb 1 to @llm_s0 tag 2 shape [16, 64] x f32 bytes 4096
      sched.recv_grad mb 0 from @llm_s0 tag 1 shape [16, 64] x f32 bytes 4096
      sched.backward_weight mb 0
      sched.recv_grad mb 1 from @llm_s0 tag 3 shape [16, 64] x f32 bytes 4096
      sched.backward_weight mb 1
      sched.optimizer_step
    }
    sched.program @llm_s0 stage 1 part "llm" llm ranks first 1 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
      sched.recv_act mb 0 from @vision_s0 tag 0 shape [16, 64] x f32 bytes 4096
      sched.forward mb 0
      sched.backward_input mb 0
      sched.send_grad mb 0 to @vision_s0 tag 1 shape [16, 64] x f32 bytes 4096
      sched.backward_weight mb 0
      sched.recv_act mb 1 from @vision_s0 tag 2 shape [16, 64] x f32 bytes 4096
      sched.forward mb 1
      sched.backward_input mb 1
      sched.send_grad mb 1 to @vision_s0 tag 3 shape [16, 64] x f32 bytes 4096
      sched.backward_weight mb 1
      sched.optimizer_step
    }
  }
}

