// RUN: mllm-opt %s -split-input-file --sched-verify-memory -verify-diagnostics
//
// sched-verify-memory on plans that break an invariant: buffers live at
// the same time sharing bytes, an operand freed before its use, a message
// larger than its buffer, a buffer outside the arena, a malformed
// attribute. The error goes on the action the check names.

// A correct plan passes.
sched.schedule linear_1f1b microbatches 1 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 attributes {sched.memory = {arena = 256, buffers = [{kind = "saved", mb = 0, bytes = 64, live = array<i64: 0, 3>, offset = 0}, {kind = "send_act", mb = 0, action = 1, bytes = 8, live = array<i64: 0, 4>, offset = 64}, {kind = "recv_grad", mb = 0, action = 2, bytes = 8, live = array<i64: 2, 3>, offset = 128}]}} {
    sched.forward mb 0
    sched.send_act mb 0 to @b tag 0 shape [4] x bf16 bytes 8
    sched.recv_grad mb 0 from @b tag 1 shape [4] x bf16 bytes 8
    sched.backward_weight mb 0
    sched.optimizer_step
  }
  sched.program @b stage 1 part "p" ranks first 1 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.recv_act mb 0 from @a tag 0 shape [4] x bf16 bytes 8
    sched.forward mb 0
    sched.backward_input mb 0
    sched.send_grad mb 0 to @a tag 1 shape [4] x bf16 bytes 8
  }
}

// -----

// The received gradient reuses the bytes of the sent activations, which
// are still in flight.
sched.schedule linear_1f1b microbatches 1 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 attributes {sched.memory = {arena = 256, buffers = [{kind = "saved", mb = 0, bytes = 64, live = array<i64: 0, 3>, offset = 0}, {kind = "send_act", mb = 0, action = 1, bytes = 8, live = array<i64: 0, 4>, offset = 64}, {kind = "recv_grad", mb = 0, action = 2, bytes = 8, live = array<i64: 2, 3>, offset = 64}]}} {
    sched.forward mb 0
    sched.send_act mb 0 to @b tag 0 shape [4] x bf16 bytes 8
    // expected-error@+1 {{memory plan of 'a': buffers send_act of microbatch 0 (action 1) and recv_grad of microbatch 0 (action 2) share bytes of the arena while both are live (actions 2 to 3)}}
    sched.recv_grad mb 0 from @b tag 1 shape [4] x bf16 bytes 8
    sched.backward_weight mb 0
    sched.optimizer_step
  }
  sched.program @b stage 1 part "p" ranks first 1 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.recv_act mb 0 from @a tag 0 shape [4] x bf16 bytes 8
    sched.forward mb 0
    sched.backward_input mb 0
    sched.send_grad mb 0 to @a tag 1 shape [4] x bf16 bytes 8
  }
}

// -----

// The saved activations are freed before the backward that reads them.
sched.schedule linear_1f1b microbatches 1 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 attributes {sched.memory = {arena = 256, buffers = [{kind = "saved", mb = 0, bytes = 64, live = array<i64: 0, 2>, offset = 0}, {kind = "send_act", mb = 0, action = 1, bytes = 8, live = array<i64: 0, 4>, offset = 64}, {kind = "recv_grad", mb = 0, action = 2, bytes = 8, live = array<i64: 2, 3>, offset = 128}]}} {
    sched.forward mb 0
    sched.send_act mb 0 to @b tag 0 shape [4] x bf16 bytes 8
    sched.recv_grad mb 0 from @b tag 1 shape [4] x bf16 bytes 8
    // expected-error@+1 {{memory plan of 'a': action backward_weight uses buffer saved of microbatch 0, which lives only from action 0 to 2}}
    sched.backward_weight mb 0
    sched.optimizer_step
  }
  sched.program @b stage 1 part "p" ranks first 1 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.recv_act mb 0 from @a tag 0 shape [4] x bf16 bytes 8
    sched.forward mb 0
    sched.backward_input mb 0
    sched.send_grad mb 0 to @a tag 1 shape [4] x bf16 bytes 8
  }
}

// -----

// A message larger than its buffer.
sched.schedule linear_1f1b microbatches 1 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 attributes {sched.memory = {arena = 256, buffers = [{kind = "send_act", mb = 0, action = 1, bytes = 4, live = array<i64: 0, 1>, offset = 0}]}} {
    sched.forward mb 0
    // expected-error@+1 {{memory plan of 'a': the buffer of action send_act holds 4 bytes but its message has 8}}
    sched.send_act mb 0 to @b tag 0 shape [4] x bf16 bytes 8
  }
  sched.program @b stage 1 part "p" ranks first 1 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.recv_act mb 0 from @a tag 0 shape [4] x bf16 bytes 8
    sched.forward mb 0
  }
}

// -----

// expected-error@+2 {{memory plan of 'a': buffer saved of microbatch 0 at [192, 256) lies outside the arena of 128 bytes}}
sched.schedule linear_1f1b microbatches 1 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 attributes {sched.memory = {arena = 128, buffers = [{kind = "saved", mb = 0, bytes = 64, live = array<i64: 0, 0>, offset = 192}]}} {
    sched.forward mb 0
  }
}

// -----

sched.schedule linear_1f1b microbatches 1 {
  // expected-error@+1 {{malformed 'sched.memory': buffer 0: unknown kind 'scratch'}}
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 attributes {sched.memory = {arena = 128, buffers = [{kind = "scratch", bytes = 64, live = array<i64: 0, 0>, offset = 0}]}} {
    sched.forward mb 0
  }
}
