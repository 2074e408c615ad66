// RUN: mllm-opt %s -split-input-file --sched-verify -verify-diagnostics
//
// sched-verify on schedules that pass the op verifiers but not the schedule
// verifier: a deadlock, sends and receives that do not pair up, an
// in-flight cap the program exceeds. The error goes on the action the
// verifier names (a stuck one), else on the program it names first.

// A correct two-stage 1F1B schedule passes: sends are asynchronous, so @a
// sends microbatch 1 right after its forward and then waits for the
// gradient of microbatch 0.
sched.schedule linear_1f1b microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 2 {
    sched.forward mb 0
    sched.send_act mb 0 to @b tag 0 shape [4] x bf16 bytes 8
    sched.forward mb 1
    sched.send_act mb 1 to @b tag 2 shape [4] x bf16 bytes 8
    sched.recv_grad mb 0 from @b tag 1 shape [4] x bf16 bytes 8
    sched.backward_weight mb 0
    sched.recv_grad mb 1 from @b tag 3 shape [4] x bf16 bytes 8
    sched.backward_weight mb 1
    sched.optimizer_step
  }
  sched.program @b stage 1 part "p" ranks first 1 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.recv_act mb 0 from @a tag 0 shape [4] x bf16 bytes 8
    sched.forward mb 0
    sched.backward_input mb 0
    sched.send_grad mb 0 to @a tag 1 shape [4] x bf16 bytes 8
    sched.recv_act mb 1 from @a tag 2 shape [4] x bf16 bytes 8
    sched.forward mb 1
    sched.backward_input mb 1
    sched.send_grad mb 1 to @a tag 3 shape [4] x bf16 bytes 8
  }
}

// -----

// @a waits for the gradient of microbatch 0 before it sends the activation
// @b needs to compute it: two receives that wait for each other.
sched.schedule linear_1f1b microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 2 {
    sched.forward mb 0
    // expected-error@+1 {{deadlock: stage 'a' is stuck at action 1 (recv_grad microbatch 0 from 'b', 8 bytes) waiting for 'b', which has not sent it yet; 'b' waits at action 0 (recv_activation microbatch 0 from 'a', 8 bytes)}}
    sched.recv_grad mb 0 from @b tag 1 shape [4] x bf16 bytes 8
    sched.send_act mb 0 to @b tag 0 shape [4] x bf16 bytes 8
    sched.forward mb 1
    sched.send_act mb 1 to @b tag 2 shape [4] x bf16 bytes 8
    sched.backward_weight mb 0
    sched.recv_grad mb 1 from @b tag 3 shape [4] x bf16 bytes 8
    sched.backward_weight mb 1
  }
  sched.program @b stage 1 part "p" ranks first 1 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.recv_act mb 0 from @a tag 0 shape [4] x bf16 bytes 8
    sched.forward mb 0
    sched.backward_input mb 0
    sched.send_grad mb 0 to @a tag 1 shape [4] x bf16 bytes 8
    sched.recv_act mb 1 from @a tag 2 shape [4] x bf16 bytes 8
    sched.forward mb 1
    sched.backward_input mb 1
    sched.send_grad mb 1 to @a tag 3 shape [4] x bf16 bytes 8
  }
}

// -----

// @b receives the microbatches out of order.
sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 2 {
    sched.forward mb 0
    sched.send_act mb 0 to @b tag 0 shape [4] x bf16 bytes 8
    sched.forward mb 1
    sched.send_act mb 1 to @b tag 2 shape [4] x bf16 bytes 8
  }
  // expected-error@+1 {{stage 'b' receives the activation of microbatch 1 as message 0 from 'a', which sends microbatch 0 there}}
  sched.program @b stage 1 part "p" ranks first 1 dp 1 stride 1 cp 1 tp 1 max_in_flight 2 {
    sched.recv_act mb 1 from @a tag 2 shape [4] x bf16 bytes 8
    sched.forward mb 1
    sched.recv_act mb 0 from @a tag 0 shape [4] x bf16 bytes 8
    sched.forward mb 0
  }
}

// -----

// The sizes of a send and its receive differ.
sched.schedule gpipe microbatches 1 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    sched.send_act mb 0 to @b tag 0 shape [4] x bf16 bytes 8
  }
  // expected-error@+1 {{stage 'b' receives 16 bytes for the activation of microbatch 0 from 'a', which sends 8 bytes}}
  sched.program @b stage 1 part "p" ranks first 1 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.recv_act mb 0 from @a tag 0 shape [8] x bf16 bytes 16
    sched.forward mb 0
  }
}

// -----

// A send and its receive agree on the size but not on the tag.
sched.schedule gpipe microbatches 1 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    sched.send_act mb 0 to @b tag 0 shape [4] x bf16 bytes 8
  }
  // expected-error@+1 {{stage 'b' receives the activation of microbatch 0 from 'a' with tag 7, which sends it with tag 0 (tag mismatch)}}
  sched.program @b stage 1 part "p" ranks first 1 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.recv_act mb 0 from @a tag 7 shape [4] x bf16 bytes 8
    sched.forward mb 0
  }
}

// -----

// A send and its receive agree on the size but not on the shape.
sched.schedule gpipe microbatches 1 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    sched.send_act mb 0 to @b tag 0 shape [2, 64] x bf16 bytes 256
  }
  // expected-error@+1 {{stage 'b' receives the activation of microbatch 0 from 'a' as [64, 2] x bf16, which sends it as [2, 64] x bf16 (shape mismatch)}}
  sched.program @b stage 1 part "p" ranks first 1 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.recv_act mb 0 from @a tag 0 shape [64, 2] x bf16 bytes 256
    sched.forward mb 0
  }
}

// -----

// The same bytes as other tensors (two instead of one) are a different shape.
sched.schedule gpipe microbatches 1 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    sched.send_act mb 0 to @b tag 0 shape [2, 64] x bf16 + [64] x f32 bytes 512
  }
  // expected-error@+1 {{stage 'b' receives the activation of microbatch 0 from 'a' as [256] x bf16, which sends it as [2, 64] x bf16 + [64] x f32 (shape mismatch)}}
  sched.program @b stage 1 part "p" ranks first 1 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.recv_act mb 0 from @a tag 0 shape [256] x bf16 bytes 512
    sched.forward mb 0
  }
}

// -----

// A gradient nobody receives.
sched.schedule gpipe microbatches 1 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    sched.send_act mb 0 to @b tag 0 shape [4] x bf16 bytes 8
  }
  // expected-error@+1 {{stage 'b' sends the gradient of microbatch 0 to 'a', which never receives it}}
  sched.program @b stage 1 part "p" ranks first 1 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.recv_act mb 0 from @a tag 0 shape [4] x bf16 bytes 8
    sched.forward mb 0
    sched.backward_input mb 0
    sched.send_grad mb 0 to @a tag 1 shape [4] x bf16 bytes 8
  }
}

// -----

// GPipe holds every microbatch; a cap of 1 does not fit.
sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    // expected-error@+1 {{stage 'a': holds 2 microbatches at action 1 (forward microbatch 1) but its cap is 1}}
    sched.forward mb 1
    sched.backward_weight mb 0
    sched.backward_weight mb 1
  }
}

// -----

// Every stage runs the forward of every microbatch.
sched.schedule gpipe microbatches 2 {
  // expected-error@+1 {{never runs the forward of microbatch 1}}
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 2 {
    sched.forward mb 0
  }
}

// -----

// The schedule's microbatch count must be the data layout's.
mllm.data text 16 packing 1 seq_len 16 microbatch 1 x 4 mask causal {
}
// expected-error @below {{the schedule runs 1 microbatches but 'mllm.data' has 4}}
sched.schedule gpipe microbatches 1 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
  }
}
