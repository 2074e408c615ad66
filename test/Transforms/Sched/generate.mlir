// RUN: mllm-opt %s --sched-generate | FileCheck %s
// RUN: mllm-opt %s --sched-generate=kind=linear_1f1b | FileCheck %s --check-prefix=LINEAR
// RUN: mllm-opt %s --sched-generate=kind=gpipe | FileCheck %s --check-prefix=GPIPE
// RUN: mllm-opt %s --sched-pipeline | mllm-opt --sched-verify | FileCheck %s
// RUN: not mllm-opt %s --sched-generate=kind=2f2b 2>&1 | FileCheck %s --check-prefix=KIND
//
// sched-generate on a planned job (mllmc --emit=mllm of
// test/mllmc/Inputs/two_encoders.mllm): two encoders in parallel, a frozen vision
// encoder with a trainable projector and a trainable audio encoder, into a
// frozen two-stage LLM; one GPU per stage, 4 microbatches. The multimodal 1F1B order is pinned action by
// action:
// - both encoders fan into llm_s0, which receives from both before each
//   forward and sends the gradients back to both after each input backward;
// - warm-up depth is the number of stages left to the loss (encoders 2,
//   llm_s0 1, llm_s1 0); sends are asynchronous, so the steady state is the
//   textbook recv_act(j+w), forward(j+w), send_act(j+w), recv_grad(j),
//   backward(j), send_grad(j) (before the weight backward);
// - frozen-aware: the frozen LLM runs input backwards only and no optimizer
//   step, the vision stage only its projector's weight backward (no input
//   backward: nothing trainable upstream), and nobody all-reduces (dp 1).
// The Megatron-like baseline chains vision -> audio -> LLM with a full
// backward everywhere; GPipe runs all forwards, then all backwards.

// KIND: error: unknown schedule kind '2f2b'; expected multimodal_1f1b, linear_1f1b or gpipe
module {
  mllm.model @m {
    mllm.encoder @vision : "vit" modality image width 64 frozen recompute none {
      mllm.layers "patch_embed" : patch_embedding x 1 {channels = 3 : i64, hidden = 64 : i64, patch = 16 : i64, positions = 16 : i64}
      mllm.layers "blocks" : transformer_block x 2 {ffn = 256 : i64, head_dim = 16 : i64, heads = 4 : i64, hidden = 64 : i64, kv_heads = 4 : i64, layer_norm}
      mllm.layers "post_norm" : norm x 1 {hidden = 64 : i64, layer_norm}
    }
    mllm.projector @vision_projector mlp @vision -> @llm merge 1 {
      mllm.layers "mlp" : mlp x 1 {hidden = 128 : i64, in = 64 : i64, out = 128 : i64} {needs_weight_grad}
    }
    mllm.encoder @audio : "whisper_base" modality audio width 512 recompute none {
      mllm.layers "frontend" : audio_frontend x 1 {hidden = 512 : i64, mel_bins = 80 : i64, positions = 1500 : i64} {needs_weight_grad}
      mllm.layers "blocks" : transformer_block x 6 {bias, ffn = 2048 : i64, head_dim = 64 : i64, heads = 8 : i64, hidden = 512 : i64, kv_heads = 8 : i64, layer_norm, qkv_bias} {needs_input_grad, needs_weight_grad}
      mllm.layers "post_norm" : norm x 1 {hidden = 512 : i64, layer_norm} {needs_input_grad, needs_weight_grad}
    }
    mllm.projector @audio_projector linear @audio -> @llm merge 2 {
      mllm.layers "linear" : linear x 1 {in = 1024 : i64, out = 128 : i64} {needs_input_grad, needs_weight_grad}
    }
    mllm.llm @llm : "lm" width 128 frozen recompute none {
      mllm.layers "embed" : token_embedding x 1 {hidden = 128 : i64, vocab = 1000 : i64}
      mllm.layers "blocks" : transformer_block x 4 {ffn = 512 : i64, gated, head_dim = 32 : i64, heads = 4 : i64, hidden = 128 : i64, kv_heads = 2 : i64} {needs_input_grad}
      mllm.layers "final_norm" : norm x 1 {hidden = 128 : i64} {needs_input_grad}
      mllm.layers "lm_head" : lm_head x 1 {hidden = 128 : i64, vocab = 1000 : i64} {needs_input_grad}
    }
  }
  mllm.data text 240 packing 1 seq_len 1006 microbatch 1 x 4 mask causal {
    mllm.input @vision tokens 16 x 1 prepend mask bidirectional
    mllm.input @audio tokens 750 x 1 append mask bidirectional
  }
  mllm.cluster 1 x 4 "a40" {inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 48000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, peak_flops = 1.497000e+14 : f64}
  mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
    mllm.module_parallel @vision tp 1 pp 1 cp 1
    mllm.module_parallel @audio tp 1 pp 1 cp 1
    mllm.module_parallel @llm tp 1 pp 2 cp 1
  }
  mllm.train steps 1 adamw lr 1.000000e-04 weight_decay 0.000000e+00 precision bf16 seed 0
  mllm.pipeline frozen_aware encoders_parallel microbatches 4 gpus 4 bottleneck 3.491 ms iteration 14.122 ms {
    mllm.stage @vision_s0 part @vision layers [0, 2) with ["patch_embed", "post_norm", "vision_projector.mlp"] fwd 0.001 ms bwd_w 0.000 ms bwd_d 0.000 ms recompute 0.000 ms memory 6 MiB = weights 1 + grads 1 + optimizer 1 + activations 1 x 3 ranks [0, 1) strides dp 1 cp 1 tp 1
    mllm.stage @audio_s0 part @audio layers [0, 6) with ["frontend", "post_norm", "audio_projector.linear"] fwd 1.179 ms bwd_w 0.805 ms bwd_d 1.507 ms recompute 0.000 ms memory 814 MiB = weights 40 + grads 80 + optimizer 238 + activations 152 x 3 ranks [1, 2) strides dp 1 cp 1 tp 1
    mllm.stage @llm_s0 part @llm layers [0, 2) with ["embed"] fwd 0.028 ms bwd_w 0.000 ms bwd_d 0.041 ms recompute 0.000 ms memory 22 MiB = weights 2 + grads 0 + optimizer 0 + activations 10 x 2 ranks [2, 3) strides dp 1 cp 1 tp 1
    mllm.stage @llm_s1 part @llm layers [2, 4) with ["final_norm", "lm_head"] fwd 0.038 ms bwd_w 0.000 ms bwd_d 0.052 ms recompute 0.000 ms memory 16 MiB = weights 2 + grads 0 + optimizer 0 + activations 14 x 1 ranks [3, 4) strides dp 1 cp 1 tp 1
  }
}

// CHECK-LABEL: sched.schedule multimodal_1f1b microbatches 4 {
// CHECK-LABEL: sched.program @vision_s0 stage 0 part "vision" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 3 {
// CHECK-NEXT:  sched.forward mb 0
// CHECK-NEXT:  sched.send_act mb 0 to @llm_s0 tag 0 shape [16, 128] x bf16 bytes 4096
// CHECK-NEXT:  sched.forward mb 1
// CHECK-NEXT:  sched.send_act mb 1 to @llm_s0 tag 2 shape [16, 128] x bf16 bytes 4096
// CHECK-NEXT:  sched.forward mb 2
// CHECK-NEXT:  sched.send_act mb 2 to @llm_s0 tag 4 shape [16, 128] x bf16 bytes 4096
// CHECK-NEXT:  sched.recv_grad mb 0 from @llm_s0 tag 1 shape [16, 128] x bf16 bytes 4096
// CHECK-NEXT:  sched.backward_weight mb 0
// CHECK-NEXT:  sched.forward mb 3
// CHECK-NEXT:  sched.send_act mb 3 to @llm_s0 tag 6 shape [16, 128] x bf16 bytes 4096
// CHECK-NEXT:  sched.recv_grad mb 1 from @llm_s0 tag 3 shape [16, 128] x bf16 bytes 4096
// CHECK-NEXT:  sched.backward_weight mb 1
// CHECK-NEXT:  sched.recv_grad mb 2 from @llm_s0 tag 5 shape [16, 128] x bf16 bytes 4096
// CHECK-NEXT:  sched.backward_weight mb 2
// CHECK-NEXT:  sched.recv_grad mb 3 from @llm_s0 tag 7 shape [16, 128] x bf16 bytes 4096
// CHECK-NEXT:  sched.backward_weight mb 3
// CHECK-NEXT:  sched.optimizer_step
// CHECK-NEXT:  }
// CHECK-LABEL: sched.program @audio_s0 stage 1 part "audio" ranks first 1 dp 1 stride 1 cp 1 tp 1 max_in_flight 3 {
// CHECK-NEXT:  sched.forward mb 0
// CHECK-NEXT:  sched.send_act mb 0 to @llm_s0 tag 0 shape [750, 128] x bf16 bytes 192000
// CHECK-NEXT:  sched.forward mb 1
// CHECK-NEXT:  sched.send_act mb 1 to @llm_s0 tag 2 shape [750, 128] x bf16 bytes 192000
// CHECK-NEXT:  sched.forward mb 2
// CHECK-NEXT:  sched.send_act mb 2 to @llm_s0 tag 4 shape [750, 128] x bf16 bytes 192000
// CHECK-NEXT:  sched.recv_grad mb 0 from @llm_s0 tag 1 shape [750, 128] x bf16 bytes 192000
// CHECK-NEXT:  sched.backward_input mb 0
// CHECK-NEXT:  sched.backward_weight mb 0
// CHECK-NEXT:  sched.forward mb 3
// CHECK-NEXT:  sched.send_act mb 3 to @llm_s0 tag 6 shape [750, 128] x bf16 bytes 192000
// CHECK-NEXT:  sched.recv_grad mb 1 from @llm_s0 tag 3 shape [750, 128] x bf16 bytes 192000
// CHECK-NEXT:  sched.backward_input mb 1
// CHECK-NEXT:  sched.backward_weight mb 1
// CHECK-NEXT:  sched.recv_grad mb 2 from @llm_s0 tag 5 shape [750, 128] x bf16 bytes 192000
// CHECK-NEXT:  sched.backward_input mb 2
// CHECK-NEXT:  sched.backward_weight mb 2
// CHECK-NEXT:  sched.recv_grad mb 3 from @llm_s0 tag 7 shape [750, 128] x bf16 bytes 192000
// CHECK-NEXT:  sched.backward_input mb 3
// CHECK-NEXT:  sched.backward_weight mb 3
// CHECK-NEXT:  sched.optimizer_step
// CHECK-NEXT:  }
// CHECK-LABEL: sched.program @llm_s0 stage 2 part "llm" llm ranks first 2 dp 1 stride 1 cp 1 tp 1 max_in_flight 2 {
// CHECK-NEXT:  sched.recv_act mb 0 from @vision_s0 tag 0 shape [16, 128] x bf16 bytes 4096
// CHECK-NEXT:  sched.recv_act mb 0 from @audio_s0 tag 0 shape [750, 128] x bf16 bytes 192000
// CHECK-NEXT:  sched.forward mb 0
// CHECK-NEXT:  sched.send_act mb 0 to @llm_s1 tag 0 shape [1006, 128] x bf16 bytes 257536
// CHECK-NEXT:  sched.recv_act mb 1 from @vision_s0 tag 2 shape [16, 128] x bf16 bytes 4096
// CHECK-NEXT:  sched.recv_act mb 1 from @audio_s0 tag 2 shape [750, 128] x bf16 bytes 192000
// CHECK-NEXT:  sched.forward mb 1
// CHECK-NEXT:  sched.send_act mb 1 to @llm_s1 tag 2 shape [1006, 128] x bf16 bytes 257536
// CHECK-NEXT:  sched.recv_grad mb 0 from @llm_s1 tag 1 shape [1006, 128] x bf16 bytes 257536
// CHECK-NEXT:  sched.backward_input mb 0
// CHECK-NEXT:  sched.send_grad mb 0 to @vision_s0 tag 1 shape [16, 128] x bf16 bytes 4096
// CHECK-NEXT:  sched.send_grad mb 0 to @audio_s0 tag 1 shape [750, 128] x bf16 bytes 192000
// CHECK-NEXT:  sched.recv_act mb 2 from @vision_s0 tag 4 shape [16, 128] x bf16 bytes 4096
// CHECK-NEXT:  sched.recv_act mb 2 from @audio_s0 tag 4 shape [750, 128] x bf16 bytes 192000
// CHECK-NEXT:  sched.forward mb 2
// CHECK-NEXT:  sched.send_act mb 2 to @llm_s1 tag 4 shape [1006, 128] x bf16 bytes 257536
// CHECK-NEXT:  sched.recv_grad mb 1 from @llm_s1 tag 3 shape [1006, 128] x bf16 bytes 257536
// CHECK-NEXT:  sched.backward_input mb 1
// CHECK-NEXT:  sched.send_grad mb 1 to @vision_s0 tag 3 shape [16, 128] x bf16 bytes 4096
// CHECK-NEXT:  sched.send_grad mb 1 to @audio_s0 tag 3 shape [750, 128] x bf16 bytes 192000
// CHECK-NEXT:  sched.recv_act mb 3 from @vision_s0 tag 6 shape [16, 128] x bf16 bytes 4096
// CHECK-NEXT:  sched.recv_act mb 3 from @audio_s0 tag 6 shape [750, 128] x bf16 bytes 192000
// CHECK-NEXT:  sched.forward mb 3
// CHECK-NEXT:  sched.send_act mb 3 to @llm_s1 tag 6 shape [1006, 128] x bf16 bytes 257536
// CHECK-NEXT:  sched.recv_grad mb 2 from @llm_s1 tag 5 shape [1006, 128] x bf16 bytes 257536
// CHECK-NEXT:  sched.backward_input mb 2
// CHECK-NEXT:  sched.send_grad mb 2 to @vision_s0 tag 5 shape [16, 128] x bf16 bytes 4096
// CHECK-NEXT:  sched.send_grad mb 2 to @audio_s0 tag 5 shape [750, 128] x bf16 bytes 192000
// CHECK-NEXT:  sched.recv_grad mb 3 from @llm_s1 tag 7 shape [1006, 128] x bf16 bytes 257536
// CHECK-NEXT:  sched.backward_input mb 3
// CHECK-NEXT:  sched.send_grad mb 3 to @vision_s0 tag 7 shape [16, 128] x bf16 bytes 4096
// CHECK-NEXT:  sched.send_grad mb 3 to @audio_s0 tag 7 shape [750, 128] x bf16 bytes 192000
// CHECK-NEXT:  }
// CHECK-LABEL: sched.program @llm_s1 stage 3 part "llm" llm ranks first 3 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
// CHECK-NEXT:  sched.recv_act mb 0 from @llm_s0 tag 0 shape [1006, 128] x bf16 bytes 257536
// CHECK-NEXT:  sched.forward mb 0
// CHECK-NEXT:  sched.backward_input mb 0
// CHECK-NEXT:  sched.send_grad mb 0 to @llm_s0 tag 1 shape [1006, 128] x bf16 bytes 257536
// CHECK-NEXT:  sched.recv_act mb 1 from @llm_s0 tag 2 shape [1006, 128] x bf16 bytes 257536
// CHECK-NEXT:  sched.forward mb 1
// CHECK-NEXT:  sched.backward_input mb 1
// CHECK-NEXT:  sched.send_grad mb 1 to @llm_s0 tag 3 shape [1006, 128] x bf16 bytes 257536
// CHECK-NEXT:  sched.recv_act mb 2 from @llm_s0 tag 4 shape [1006, 128] x bf16 bytes 257536
// CHECK-NEXT:  sched.forward mb 2
// CHECK-NEXT:  sched.backward_input mb 2
// CHECK-NEXT:  sched.send_grad mb 2 to @llm_s0 tag 5 shape [1006, 128] x bf16 bytes 257536
// CHECK-NEXT:  sched.recv_act mb 3 from @llm_s0 tag 6 shape [1006, 128] x bf16 bytes 257536
// CHECK-NEXT:  sched.forward mb 3
// CHECK-NEXT:  sched.backward_input mb 3
// CHECK-NEXT:  sched.send_grad mb 3 to @llm_s0 tag 7 shape [1006, 128] x bf16 bytes 257536
// CHECK-NEXT:  }
// CHECK-NEXT:  }

// LINEAR-LABEL: sched.schedule linear_1f1b microbatches 4 {
// LINEAR: sched.program @vision_s0 stage 0 part "vision" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 4 {
// LINEAR: sched.program @audio_s0 stage 1 part "audio" ranks first 1 dp 1 stride 1 cp 1 tp 1 max_in_flight 3 {
// LINEAR-NEXT: sched.recv_act mb 0 from @vision_s0 tag 0 shape [16, 128] x bf16 bytes 4096
// LINEAR-NEXT: sched.forward mb 0
// LINEAR-NEXT: sched.send_act mb 0 to @llm_s0 tag 0 shape [16, 128] x bf16 + [750, 128] x bf16 bytes 196096
// LINEAR-NEXT: sched.recv_act mb 1 from @vision_s0 tag 2 shape [16, 128] x bf16 bytes 4096
// LINEAR-NEXT: sched.forward mb 1
// LINEAR-NEXT: sched.send_act mb 1 to @llm_s0 tag 2 shape [16, 128] x bf16 + [750, 128] x bf16 bytes 196096
// LINEAR-NEXT: sched.recv_act mb 2 from @vision_s0 tag 4 shape [16, 128] x bf16 bytes 4096
// LINEAR-NEXT: sched.forward mb 2
// LINEAR-NEXT: sched.send_act mb 2 to @llm_s0 tag 4 shape [16, 128] x bf16 + [750, 128] x bf16 bytes 196096
// LINEAR-NEXT: sched.recv_grad mb 0 from @llm_s0 tag 1 shape [16, 128] x bf16 + [750, 128] x bf16 bytes 196096
// LINEAR-NEXT: sched.backward_input mb 0
// LINEAR-NEXT: sched.backward_weight mb 0
// LINEAR-NEXT: sched.send_grad mb 0 to @vision_s0 tag 1 shape [16, 128] x bf16 bytes 4096
// LINEAR-NEXT: sched.recv_act mb 3 from @vision_s0 tag 6 shape [16, 128] x bf16 bytes 4096
// LINEAR-NEXT: sched.forward mb 3
// LINEAR-NEXT: sched.send_act mb 3 to @llm_s0 tag 6 shape [16, 128] x bf16 + [750, 128] x bf16 bytes 196096
// LINEAR-NEXT: sched.recv_grad mb 1 from @llm_s0 tag 3 shape [16, 128] x bf16 + [750, 128] x bf16 bytes 196096
// LINEAR-NEXT: sched.backward_input mb 1
// LINEAR-NEXT: sched.backward_weight mb 1
// LINEAR-NEXT: sched.send_grad mb 1 to @vision_s0 tag 3 shape [16, 128] x bf16 bytes 4096
// LINEAR-NEXT: sched.recv_grad mb 2 from @llm_s0 tag 5 shape [16, 128] x bf16 + [750, 128] x bf16 bytes 196096
// LINEAR-NEXT: sched.backward_input mb 2
// LINEAR-NEXT: sched.backward_weight mb 2
// LINEAR-NEXT: sched.send_grad mb 2 to @vision_s0 tag 5 shape [16, 128] x bf16 bytes 4096
// LINEAR-NEXT: sched.recv_grad mb 3 from @llm_s0 tag 7 shape [16, 128] x bf16 + [750, 128] x bf16 bytes 196096
// LINEAR-NEXT: sched.backward_input mb 3
// LINEAR-NEXT: sched.backward_weight mb 3
// LINEAR-NEXT: sched.send_grad mb 3 to @vision_s0 tag 7 shape [16, 128] x bf16 bytes 4096
// LINEAR-NEXT: sched.optimizer_step
// LINEAR-NEXT: }
// LINEAR: sched.program @llm_s0 stage 2 part "llm" llm ranks first 2 dp 1 stride 1 cp 1 tp 1 max_in_flight 2 {
// LINEAR: sched.program @llm_s1 stage 3 part "llm" llm ranks first 3 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {

// GPIPE-LABEL: sched.schedule gpipe microbatches 4 {
// GPIPE: sched.program @vision_s0 stage 0 part "vision" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 4 {
// GPIPE: sched.program @audio_s0 stage 1 part "audio" ranks first 1 dp 1 stride 1 cp 1 tp 1 max_in_flight 4 {
// GPIPE: sched.program @llm_s0 stage 2 part "llm" llm ranks first 2 dp 1 stride 1 cp 1 tp 1 max_in_flight 4 {
// GPIPE-NEXT: sched.recv_act mb 0 from @vision_s0 tag 0 shape [16, 128] x bf16 bytes 4096
// GPIPE-NEXT: sched.recv_act mb 0 from @audio_s0 tag 0 shape [750, 128] x bf16 bytes 192000
// GPIPE-NEXT: sched.forward mb 0
// GPIPE-NEXT: sched.send_act mb 0 to @llm_s1 tag 0 shape [1006, 128] x bf16 bytes 257536
// GPIPE-NEXT: sched.recv_act mb 1 from @vision_s0 tag 2 shape [16, 128] x bf16 bytes 4096
// GPIPE-NEXT: sched.recv_act mb 1 from @audio_s0 tag 2 shape [750, 128] x bf16 bytes 192000
// GPIPE-NEXT: sched.forward mb 1
// GPIPE-NEXT: sched.send_act mb 1 to @llm_s1 tag 2 shape [1006, 128] x bf16 bytes 257536
// GPIPE-NEXT: sched.recv_act mb 2 from @vision_s0 tag 4 shape [16, 128] x bf16 bytes 4096
// GPIPE-NEXT: sched.recv_act mb 2 from @audio_s0 tag 4 shape [750, 128] x bf16 bytes 192000
// GPIPE-NEXT: sched.forward mb 2
// GPIPE-NEXT: sched.send_act mb 2 to @llm_s1 tag 4 shape [1006, 128] x bf16 bytes 257536
// GPIPE-NEXT: sched.recv_act mb 3 from @vision_s0 tag 6 shape [16, 128] x bf16 bytes 4096
// GPIPE-NEXT: sched.recv_act mb 3 from @audio_s0 tag 6 shape [750, 128] x bf16 bytes 192000
// GPIPE-NEXT: sched.forward mb 3
// GPIPE-NEXT: sched.send_act mb 3 to @llm_s1 tag 6 shape [1006, 128] x bf16 bytes 257536
// GPIPE-NEXT: sched.recv_grad mb 0 from @llm_s1 tag 1 shape [1006, 128] x bf16 bytes 257536
// GPIPE-NEXT: sched.backward_input mb 0
// GPIPE-NEXT: sched.send_grad mb 0 to @vision_s0 tag 1 shape [16, 128] x bf16 bytes 4096
// GPIPE-NEXT: sched.send_grad mb 0 to @audio_s0 tag 1 shape [750, 128] x bf16 bytes 192000
// GPIPE-NEXT: sched.recv_grad mb 1 from @llm_s1 tag 3 shape [1006, 128] x bf16 bytes 257536
// GPIPE-NEXT: sched.backward_input mb 1
// GPIPE-NEXT: sched.send_grad mb 1 to @vision_s0 tag 3 shape [16, 128] x bf16 bytes 4096
// GPIPE-NEXT: sched.send_grad mb 1 to @audio_s0 tag 3 shape [750, 128] x bf16 bytes 192000
// GPIPE-NEXT: sched.recv_grad mb 2 from @llm_s1 tag 5 shape [1006, 128] x bf16 bytes 257536
// GPIPE-NEXT: sched.backward_input mb 2
// GPIPE-NEXT: sched.send_grad mb 2 to @vision_s0 tag 5 shape [16, 128] x bf16 bytes 4096
// GPIPE-NEXT: sched.send_grad mb 2 to @audio_s0 tag 5 shape [750, 128] x bf16 bytes 192000
// GPIPE-NEXT: sched.recv_grad mb 3 from @llm_s1 tag 7 shape [1006, 128] x bf16 bytes 257536
// GPIPE-NEXT: sched.backward_input mb 3
// GPIPE-NEXT: sched.send_grad mb 3 to @vision_s0 tag 7 shape [16, 128] x bf16 bytes 4096
// GPIPE-NEXT: sched.send_grad mb 3 to @audio_s0 tag 7 shape [750, 128] x bf16 bytes 192000
// GPIPE-NEXT: }
// GPIPE: sched.program @llm_s1 stage 3 part "llm" llm ranks first 3 dp 1 stride 1 cp 1 tp 1 max_in_flight 4 {
