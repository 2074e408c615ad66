// RUN: mllm-opt %s -split-input-file -verify-diagnostics
// RUN: mllm-opt %s -split-input-file -verify-diagnostics --sched-verify
//
// The sched verifiers bound every integer the schedule library sizes
// allocations by: `--sched-verify` on `microbatches 9223372036854775807`
// threw an uncaught std::length_error (issue 15).

// expected-error@+1 {{'sched.schedule' op 'microbatches' is 9223372036854775807; the limit is 65536}}
sched.schedule multimodal_1f1b microbatches 9223372036854775807 {
  sched.program @llm_s0 stage 0 part "llm" llm ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
  }
}

// -----

// expected-error@+1 {{'sched.schedule' op has 2 programs x 65536 microbatches; a schedule holds at most 65536}}
sched.schedule multimodal_1f1b microbatches 65536 {
  sched.program @llm_s0 stage 0 part "llm" llm ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
  }
  sched.program @llm_s1 stage 1 part "llm" llm ranks first 1 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
  }
}

// -----

sched.schedule multimodal_1f1b microbatches 2 {
  // expected-error@+1 {{'sched.program' op has ranks beyond the largest cluster's 1048576 GPUs}}
  sched.program @llm_s0 stage 0 part "llm" llm ranks first 0 dp 1025 stride 1024 cp 2 tp 1 max_in_flight 1 {
    sched.forward mb 0
  }
}

// -----

sched.schedule multimodal_1f1b microbatches 2 {
  sched.program @vision_s0 stage 0 part "vision" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    // expected-error@+1 {{'sched.send_act' op has a shape of more than 9007199254740992 bytes}}
    sched.send_act mb 0 to @llm_s0 tag 0 shape [4611686018427387904, 4] x bf16 bytes 0
  }
  sched.program @llm_s0 stage 1 part "llm" llm ranks first 1 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.recv_act mb 0 from @vision_s0 tag 0 shape [4, 4] x bf16 bytes 32
    sched.forward mb 0
  }
}
