sched.schedule multimodal_1f1b microbatches 2 {
  sched.program @vision_s0 stage 0 part "vision" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 2 {
    sched.forward mb 0
    sched.send_act mb 0 to @llm_s0 tag 0 shape [4, 64] x bf16 + [2, 64] x f32 bytes 1024
    sched.forward mb 1
    sched.send_act mb 1 to @llm_s0 tag 2 shape [4, 64] x bf16 + [2, 64] x f32 bytes 1024
  }
  sched.program @audio_s0 stage 1 part "audio" ranks first 1 dp 1 stride 1 cp 1 tp 1 max_in_flight 2 {
    sched.forward mb 0
    sched.send_act mb 0 to @llm_s0 tag 0 shape [4, 64] x bf16 bytes 512
    sched.forward mb 1
    sched.send_act mb 1 to @llm_s0 tag 2 shape [4, 64] x bf16 bytes 512
    sched.recv_grad mb 0 from @llm_s0 tag 1 shape [4, 64] x bf16 bytes 512
    sched.backward_weight mb 0
    sched.recv_grad mb 1 from @llm_s0 tag 3 shape [4, 64] x bf16 bytes 512
    sched.backward_weight mb 1
    sched.all_reduce_grads bytes 4096 group dp 1 x cp 1
    sched.optimizer_step
  }
  sched.program @llm_s0 stage 2 part "llm" llm ranks first 2 dp 1 stride 1 cp 2 tp 2 max_in_flight 1 {
    sched.recv_act mb 0 from @vision_s0 tag 0 shape [4, 64] x bf16 + [2, 64] x f32 bytes 1024
    sched.recv_act mb 0 from @audio_s0 tag 0 shape [4, 64] x bf16 bytes 512
    sched.forward mb 0 tp_all_reduce cp_all_gather
    sched.send_act mb 0 to @llm_s1 tag 0 shape [16, 64] x bf16 bytes 2048
    sched.recv_grad mb 0 from @llm_s1 tag 1 shape [16, 64] x bf16 bytes 2048
    sched.backward_input mb 0 tp_all_reduce cp_all_gather cp_reduce_scatter
    sched.send_grad mb 0 to @audio_s0 tag 1 shape [4, 64] x bf16 bytes 512
    sched.recv_act mb 1 from @vision_s0 tag 2 shape [4, 64] x bf16 + [2, 64] x f32 bytes 1024
    sched.recv_act mb 1 from @audio_s0 tag 2 shape [4, 64] x bf16 bytes 512
    sched.forward mb 1 tp_all_reduce cp_all_gather
    sched.send_act mb 1 to @llm_s1 tag 2 shape [16, 64] x bf16 bytes 2048
    sched.recv_grad mb 1 from @llm_s1 tag 3 shape [16, 64] x bf16 bytes 2048
    sched.backward_input mb 1 tp_all_reduce cp_all_gather cp_reduce_scatter
    sched.send_grad mb 1 to @audio_s0 tag 3 shape [4, 64] x bf16 bytes 512
  }
  sched.program @llm_s1 stage 3 part "llm" llm ranks first 6 dp 1 stride 1 cp 2 tp 2 max_in_flight 1 {
    sched.recv_act mb 0 from @llm_s0 tag 0 shape [16, 64] x bf16 bytes 2048
    sched.forward mb 0 tp_all_reduce cp_all_gather
    sched.backward_input mb 0 tp_all_reduce cp_all_gather cp_reduce_scatter
    sched.send_grad mb 0 to @llm_s0 tag 1 shape [16, 64] x bf16 bytes 2048
    sched.backward_weight mb 0
    sched.recv_act mb 1 from @llm_s0 tag 2 shape [16, 64] x bf16 bytes 2048
    sched.forward mb 1 tp_all_reduce cp_all_gather
    sched.backward_input mb 1 tp_all_reduce
    sched.send_grad mb 1 to @llm_s0 tag 3 shape [16, 64] x bf16 bytes 2048
    sched.backward_weight mb 1 cp_all_gather cp_reduce_scatter
    sched.all_reduce_grads bytes 8192 group dp 1 x cp 2
    sched.optimizer_step
  }
}

sched.schedule gpipe microbatches 1 {
  sched.program @only stage 0 part "llm" llm ranks first 8 dp 2 stride 4 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    sched.backward_input mb 0
    sched.backward_weight mb 0
    sched.all_reduce_grads bytes 64 group dp 2 x cp 1
    sched.optimizer_step
  }
}

sched.schedule linear_1f1b microbatches 1 {
}
