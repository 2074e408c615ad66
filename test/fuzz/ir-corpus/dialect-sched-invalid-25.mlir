sched.schedule gpipe microbatches 1 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    "sched.send_act"() <{microbatch = 0 : i64, peer = @b, tag = 0 : i64, shape = [tensor<?xbf16>], bytes = 8 : i64}> : () -> ()
  }
}
