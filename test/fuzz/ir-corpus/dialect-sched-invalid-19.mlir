sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    sched.send_act mb 0 to @b tag 0 shape [4] x bf16 bytes 8
    sched.send_act mb 0 to @b tag 0 shape [4] x bf16 bytes 8
  }
  sched.program @b stage 1 part "p" ranks first 1 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.recv_act mb 0 from @a tag 0 shape [4] x bf16 bytes 8
    sched.forward mb 0
  }
}
