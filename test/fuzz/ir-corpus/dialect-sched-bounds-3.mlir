sched.schedule multimodal_1f1b microbatches 2 {
  sched.program @vision_s0 stage 0 part "vision" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    sched.send_act mb 0 to @llm_s0 tag 0 shape [4611686018427387904, 4] x bf16 bytes 0
  }
  sched.program @llm_s0 stage 1 part "llm" llm ranks first 1 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.recv_act mb 0 from @vision_s0 tag 0 shape [4, 4] x bf16 bytes 32
    sched.forward mb 0
  }
}
