sched.schedule multimodal_1f1b microbatches 2 {
  sched.program @llm_s0 stage 0 part "llm" llm ranks first 0 dp 1025 stride 1024 cp 2 tp 1 max_in_flight 1 {
    sched.forward mb 0
  }
}
