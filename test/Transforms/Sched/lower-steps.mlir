// RUN: mllm-opt %s --sched-memory-plan="saved-bytes=1000" --sched-lower-steps --cse | FileCheck %s
// RUN: mllm-opt %s --sched-memory-plan="saved-bytes=1000" --sched-lower-steps="loops=false program=1" --cse | FileCheck %s --check-prefix=LINE
// RUN: mllm-opt %s --sched-to-llvm | FileCheck %s --check-prefix=LLVM
// A program that is not there (99 was printed as the character 'c'):
// RUN: not mllm-opt %s --sched-memory-plan="saved-bytes=1000" --sched-lower-steps="program=99" 2>&1 | FileCheck %s --check-prefix=NONE
// RUN: not mllm-opt %s --sched-memory-plan="saved-bytes=1000" --sched-lower-steps="program=-2" 2>&1 | FileCheck %s --check-prefix=NONE
// NONE: error: no program {{99|-2}} to lower; the schedule has 2 (program=0..1, or -1 for all)
//
// Step functions of a GPipe schedule of 4 microbatches. Each repeated run
// (forward + send per microbatch; receive + backward) becomes one scf.for
// whose body shifts the microbatch by k, the tag by 2k and the action index
// by k x (run length), and reads the arena offset from the program's table;
// each call runs only while the status is 0. The all-reduce and optimizer
// step run once, in line, returning early on a non-zero status.

// CHECK: func.func private @mllm_rt_begin(!llvm.ptr, i64, i64, i64) -> i32
// CHECK: func.func private @mllm_rt_send_act(!llvm.ptr, i64, i64, i64, i64, i64, i64) -> i32
// CHECK: llvm.mlir.global internal constant @mllm_offsets_0(dense<[4096, 8192, 5120, 8704, 6144, 9216, 7168, 9728, 10240, 4096, 4096, 5120, 4096, 6144, 4096, 7168, 0, -1]> : tensor<18xi64>)
// CHECK-LABEL: func.func @mllm_step_0(
// CHECK-SAME: %[[CTX:.+]]: !llvm.ptr) -> i32
// CHECK: %[[BEGIN:.+]] = call @mllm_rt_begin(%[[CTX]], %{{.+}}, %{{.+}}, %{{.+}})
// CHECK: cf.cond_br %{{.+}}, ^[[EXIT:bb[0-9]+]](%[[BEGIN]] : i32), ^bb1
// CHECK: %[[FWD:.+]] = scf.for %[[K:.+]] = %{{.+}} to %[[C4:.+]] step %{{.+}} iter_args(%[[ST:.+]] = %{{.+}}) -> (i32)
// CHECK:   %[[K64:.+]] = arith.index_cast %[[K]] : index to i64
// CHECK:   %[[TWOK:.+]] = arith.addi %[[K64]], %[[K64]] : i64
// CHECK:   %[[KLEN:.+]] = arith.muli %[[K64]], %[[C2:.+]] : i64
// CHECK:   %[[OK:.+]] = arith.cmpi eq, %[[ST]], %{{.+}} : i32
// CHECK:   %[[S1:.+]] = scf.if %[[OK]] -> (i32)
// CHECK:     llvm.getelementptr %{{.+}}[0, %[[ACT:.+]]] : (!llvm.ptr, i64) -> !llvm.ptr, !llvm.array<18 x i64>
// CHECK:     %[[OFF:.+]] = llvm.load
// CHECK:     func.call @mllm_rt_forward(%[[CTX]], %[[ACT]], %[[MB:.+]], %[[OFF]])
// CHECK:   scf.if
// CHECK:     func.call @mllm_rt_send_act(%[[CTX]], %{{.+}}, %[[MB]], %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}})
// CHECK:   scf.yield
// CHECK: cf.cond_br %{{.+}}, ^[[EXIT]](%[[FWD]] : i32)
// CHECK: scf.for
// CHECK:   func.call @mllm_rt_recv_grad
// CHECK:   func.call @mllm_rt_backward_weight
// CHECK: call @mllm_rt_all_reduce_grads(%[[CTX]], %{{.+}}, %{{.+}}, %{{.+}})
// CHECK: call @mllm_rt_optimizer_step(%[[CTX]], %{{.+}})
// CHECK: cf.br ^[[EXIT]](%{{.+}} : i32)
// CHECK: ^[[EXIT]](%[[RET:.+]]: i32):
// CHECK-NEXT: return %[[RET]] : i32
// CHECK-LABEL: func.func @mllm_step_1
// CHECK: scf.for
// CHECK:   func.call @mllm_rt_recv_act
// CHECK:   func.call @mllm_rt_forward
// CHECK: scf.for
// CHECK:   func.call @mllm_rt_backward_input
// CHECK:   func.call @mllm_rt_send_grad
// CHECK:   func.call @mllm_rt_backward_weight
// CHECK-NOT: scf.for
// CHECK: return

// In line: one call per action with its constants (action 9 is the
// send_grad of microbatch 0 to stage 0, tag 1, 512 bytes), no loop.
// LINE-NOT: @mllm_step_0
// LINE-LABEL: func.func @mllm_step_1
// LINE-NOT: scf.for
// LINE-DAG: %[[C9:.+]] = arith.constant 9 : i64
// LINE-DAG: %[[C512:.+]] = arith.constant 512 : i64
// LINE: call @mllm_rt_send_grad(%{{.+}}, %[[C9]], %{{.+}}, %{{.+}}, %{{.+}}, %[[C512]], %{{.+}})
// LINE-COUNT-4: call @mllm_rt_backward_weight
// LINE: call @mllm_rt_all_reduce_grads
// LINE-NOT: scf.for

// The whole pipeline: LLVM dialect only.
// LLVM-NOT: sched.
// LLVM-NOT: scf.
// LLVM-NOT: func.func
// LLVM: llvm.func @mllm_rt_forward(!llvm.ptr, i64, i64, i64) -> i32
// LLVM: llvm.mlir.global internal constant @mllm_offsets_0
// LLVM: llvm.func @mllm_step_0(%{{.+}}: !llvm.ptr) -> i32
// LLVM: llvm.call @mllm_rt_forward
// LLVM: llvm.cond_br
// LLVM: llvm.func @mllm_step_1
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
