// RUN: mllm-opt %s --sched-verify --sched-memory-plan="saved-bytes=1000 workspace-bytes=100" --sched-verify-memory | FileCheck %s
// RUN: mllm-opt %s --sched-memory-plan="saved-bytes=1000" | mllm-opt --sched-verify-memory | FileCheck %s --check-prefix=ROUND
// Sizes out of range (a negative one was planned; a huge one overflowed the
// arena's size to a negative number):
// RUN: not mllm-opt %s --sched-memory-plan="saved-bytes=-5" 2>&1 | FileCheck %s --check-prefix=NEG
// NEG: error: sched-memory-plan: 'saved-bytes' takes a number of bytes from 0 to 1099511627776, not -5
// RUN: not mllm-opt %s --sched-memory-plan="workspace-bytes=9223372036854775807" 2>&1 | FileCheck %s --check-prefix=HUGE
// HUGE: error: sched-memory-plan: 'workspace-bytes' takes a number of bytes from 0 to 1099511627776, not 9223372036854775807
//
// The static memory plan of a GPipe schedule (all forwards, then all
// backwards) of two stages and 4 microbatches: every saved activation is
// live at once, so each gets its own bytes; a received gradient lives only
// up to its backward, so the next one reuses its bytes. Gradients live for
// the whole iteration. A send lives until the runtime waits for it: the
// encoder's activations until its backward of microbatch 0 (action 9), which
// waits for the gradient llm_s0 sends only after it received all four (the
// wait finds every send complete). Nothing comes back to llm_s0 after its
// gradients, so each is waited where the gradient two later on the same
// link is sent (the schedule still runs to its end with those waits); the
// last two to the end of the iteration.

// CHECK-LABEL: sched.program @enc_s0
// CHECK-SAME: sched.memory = {arena = 10880 : i64, buffers = [
// CHECK-SAME: {bytes = 4096 : i64, kind = "grads", live = array<i64: 0, 17>, offset = 0 : i64}
// CHECK-SAME: {bytes = 1000 : i64, kind = "saved", live = array<i64: 0, 9>, mb = 0 : i64, offset = 4096 : i64}
// CHECK-SAME: {action = 0 : i64, bytes = 100 : i64, kind = "workspace", live = array<i64: 0, 0>, mb = 0 : i64, offset = 5120 : i64}
// CHECK-SAME: {action = 1 : i64, bytes = 512 : i64, kind = "send_act", live = array<i64: 0, 9>, mb = 0 : i64, offset = 8192 : i64}
// CHECK-SAME: {bytes = 1000 : i64, kind = "saved", live = array<i64: 2, 11>, mb = 1 : i64, offset = 5120 : i64}
// CHECK-SAME: {action = 3 : i64, bytes = 512 : i64, kind = "send_act", live = array<i64: 2, 9>, mb = 1 : i64
// CHECK-SAME: {action = 5 : i64, bytes = 512 : i64, kind = "send_act", live = array<i64: 4, 9>, mb = 2 : i64
// CHECK-SAME: {action = 7 : i64, bytes = 512 : i64, kind = "send_act", live = array<i64: 6, 9>, mb = 3 : i64
// CHECK-SAME: {action = 10 : i64, bytes = 512 : i64, kind = "recv_grad", live = array<i64: 10, 11>, mb = 1 : i64, offset = [[RECV:[0-9]+]] : i64}
// CHECK-SAME: {action = 12 : i64, bytes = 512 : i64, kind = "recv_grad", live = array<i64: 12, 13>, mb = 2 : i64, offset = [[RECV]] : i64}
// CHECK-SAME: {action = 14 : i64, bytes = 512 : i64, kind = "recv_grad", live = array<i64: 14, 15>, mb = 3 : i64, offset = [[RECV]] : i64}
// The loss stage: received activations live to their forward, sent
// gradients from the backward_input that computes them.
// CHECK-LABEL: sched.program @llm_s0
// CHECK-SAME: {action = 0 : i64, bytes = 512 : i64, kind = "recv_act", live = array<i64: 0, 1>, mb = 0 : i64
// CHECK-SAME: {action = 9 : i64, bytes = 512 : i64, kind = "send_grad", live = array<i64: 8, 15>, mb = 0 : i64
// CHECK-SAME: {action = 12 : i64, bytes = 512 : i64, kind = "send_grad", live = array<i64: 11, 18>, mb = 1 : i64
// CHECK-SAME: {action = 15 : i64, bytes = 512 : i64, kind = "send_grad", live = array<i64: 14, 21>, mb = 2 : i64
// CHECK-SAME: {action = 18 : i64, bytes = 512 : i64, kind = "send_grad", live = array<i64: 17, 21>, mb = 3 : i64

// ROUND-LABEL: sched.program @enc_s0
// ROUND-SAME: sched.memory = {arena = {{[0-9]+}} : i64
// ROUND-NOT: kind = "workspace"
sched.schedule gpipe microbatches 4 {
  sched.program @enc_s0 stage 0 part "enc" ranks first 0 dp 2 stride 1 cp 1 tp 1 max_in_flight 4 {
    sched.forward mb 0
    sched.send_act mb 0 to @llm_s0 tag 0 shape [8, 16] x f32 bytes 512
    sched.forward mb 1
    sched.send_act mb 1 to @llm_s0 tag 2 shape [8, 16] x f32 bytes 512
    sched.forward mb 2
    sched.send_act mb 2 to @llm_s0 tag 4 shape [8, 16] x f32 bytes 512
    sched.forward mb 3
    sched.send_act mb 3 to @llm_s0 tag 6 shape [8, 16] x f32 bytes 512
    sched.recv_grad mb 0 from @llm_s0 tag 1 shape [8, 16] x f32 bytes 512
    sched.backward_weight mb 0
    sched.recv_grad mb 1 from @llm_s0 tag 3 shape [8, 16] x f32 bytes 512
    sched.backward_weight mb 1
    sched.recv_grad mb 2 from @llm_s0 tag 5 shape [8, 16] x f32 bytes 512
    sched.backward_weight mb 2
    sched.recv_grad mb 3 from @llm_s0 tag 7 shape [8, 16] x f32 bytes 512
    sched.backward_weight mb 3
    sched.all_reduce_grads bytes 4096 group dp 2 x cp 1
    sched.optimizer_step
  }
  sched.program @llm_s0 stage 1 part "llm" llm ranks first 2 dp 2 stride 1 cp 1 tp 1 max_in_flight 4 {
    sched.recv_act mb 0 from @enc_s0 tag 0 shape [8, 16] x f32 bytes 512
    sched.forward mb 0
    sched.recv_act mb 1 from @enc_s0 tag 2 shape [8, 16] x f32 bytes 512
    sched.forward mb 1
    sched.recv_act mb 2 from @enc_s0 tag 4 shape [8, 16] x f32 bytes 512
    sched.forward mb 2
    sched.recv_act mb 3 from @enc_s0 tag 6 shape [8, 16] x f32 bytes 512
    sched.forward mb 3
    sched.backward_input mb 0
    sched.send_grad mb 0 to @enc_s0 tag 1 shape [8, 16] x f32 bytes 512
    sched.backward_weight mb 0
    sched.backward_input mb 1
    sched.send_grad mb 1 to @enc_s0 tag 3 shape [8, 16] x f32 bytes 512
    sched.backward_weight mb 1
    sched.backward_input mb 2
    sched.send_grad mb 2 to @enc_s0 tag 5 shape [8, 16] x f32 bytes 512
    sched.backward_weight mb 2
    sched.backward_input mb 3
    sched.send_grad mb 3 to @enc_s0 tag 7 shape [8, 16] x f32 bytes 512
    sched.backward_weight mb 3
    sched.all_reduce_grads bytes 8192 group dp 2 x cp 1
    sched.optimizer_step
  }
}
