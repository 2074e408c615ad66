sched.schedule multimodal_1f1b microbatches 9223372036854775807 {
  sched.program @llm_s0 stage 0 part "llm" llm ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
  }
}
