// RUN: mllm-opt %s -split-input-file -verify-diagnostics
//
// One case per diagnostic of the sched verifiers (SchedOps.cpp). Each case is
// otherwise valid, so the expected error is the first one the verifier meets.

//===----------------------------------------------------------------------===//
// sched.schedule
//===----------------------------------------------------------------------===//

sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
  }
  // expected-error@+1 {{'sched.schedule' op is not a 'sched.program'; a schedule holds only programs}}
  sched.schedule gpipe microbatches 1 {
  }
}

// -----

sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
  }
  // expected-error@+1 {{'sched.program' op is stage 2 but is program 1 of the schedule; programs go in stage order}}
  sched.program @b stage 2 part "p" ranks first 2 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
  }
}

// -----

//===----------------------------------------------------------------------===//
// sched.program
//===----------------------------------------------------------------------===//

sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    // expected-error@+1 {{'sched.schedule' op is not a sched action; a program holds only actions}}
    sched.schedule gpipe microbatches 1 {
    }
  }
}

// -----

sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    // expected-error@+1 {{'sched.forward' op repeats the forward of microbatch 0}}
    sched.forward mb 0
  }
}

// -----

sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    // expected-error@+1 {{'sched.backward_input' op runs the backward of microbatch 1 before its forward}}
    sched.backward_input mb 1
  }
}

// -----

sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    // expected-error@+1 {{'sched.backward_weight' op runs the backward of microbatch 0 before its forward}}
    sched.backward_weight mb 0
  }
}

// -----

sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    sched.backward_input mb 0
    // expected-error@+1 {{'sched.backward_input' op repeats the input-gradient backward of microbatch 0}}
    sched.backward_input mb 0
  }
}

// -----

sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    sched.backward_weight mb 0
    // expected-error@+1 {{'sched.backward_weight' op repeats the weight-gradient backward of microbatch 0}}
    sched.backward_weight mb 0
  }
}

// -----

sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    sched.forward mb 1
    sched.backward_weight mb 0
    sched.all_reduce_grads bytes 8 group dp 1 x cp 1
    // expected-error@+1 {{'sched.backward_weight' op computes weight gradients of microbatch 1 after the gradient all-reduce}}
    sched.backward_weight mb 1
  }
}

// -----

sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    sched.forward mb 1
    sched.backward_weight mb 0
    sched.optimizer_step
    // expected-error@+1 {{'sched.backward_weight' op computes weight gradients of microbatch 1 after the optimizer step}}
    sched.backward_weight mb 1
  }
}

// -----

sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    sched.backward_weight mb 0
    sched.all_reduce_grads bytes 8 group dp 1 x cp 1
    // expected-error@+1 {{'sched.all_reduce_grads' op repeats the gradient all-reduce}}
    sched.all_reduce_grads bytes 8 group dp 1 x cp 1
  }
}

// -----

sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    sched.backward_weight mb 0
    sched.optimizer_step
    // expected-error@+1 {{'sched.all_reduce_grads' op all-reduces gradients after the optimizer step}}
    sched.all_reduce_grads bytes 8 group dp 1 x cp 1
  }
}

// -----

sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    sched.backward_weight mb 0
    sched.optimizer_step
    // expected-error@+1 {{'sched.optimizer_step' op repeats the optimizer step}}
    sched.optimizer_step
  }
}

// -----

sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    sched.backward_input mb 0
    // expected-error@+1 {{'sched.all_reduce_grads' op all-reduces gradients but the program computes no weight gradients}}
    sched.all_reduce_grads bytes 8 group dp 1 x cp 1
  }
}

// -----

sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    // expected-error@+1 {{'sched.optimizer_step' op steps the optimizer but the program computes no weight gradients}}
    sched.optimizer_step
  }
}

// -----

sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    sched.send_act mb 0 to @b tag 0 shape [4] x bf16 bytes 8
  }
  sched.program @b stage 1 part "p" ranks first 1 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    // expected-error@+1 {{'sched.recv_act' op receives activations of microbatch 0 after its forward}}
    sched.recv_act mb 0 from @a tag 0 shape [4] x bf16 bytes 8
  }
}

// -----

sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    // expected-error@+1 {{'sched.send_act' op sends activations of microbatch 0 before its forward}}
    sched.send_act mb 0 to @b tag 0 shape [4] x bf16 bytes 8
  }
  sched.program @b stage 1 part "p" ranks first 1 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.recv_act mb 0 from @a tag 0 shape [4] x bf16 bytes 8
    sched.forward mb 0
  }
}

// -----

sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    sched.send_act mb 0 to @b tag 0 shape [4] x bf16 bytes 8
    sched.backward_weight mb 0
    // expected-error@+1 {{'sched.recv_grad' op receives gradients of microbatch 0 after its backward}}
    sched.recv_grad mb 0 from @b tag 1 shape [4] x bf16 bytes 8
  }
  sched.program @b stage 1 part "p" ranks first 1 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.recv_act mb 0 from @a tag 0 shape [4] x bf16 bytes 8
    sched.forward mb 0
  }
}

// -----

sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    sched.send_act mb 0 to @b tag 0 shape [4] x bf16 bytes 8
  }
  sched.program @b stage 1 part "p" ranks first 1 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.recv_act mb 0 from @a tag 0 shape [4] x bf16 bytes 8
    sched.forward mb 0
    sched.backward_weight mb 0
    // expected-error@+1 {{'sched.send_grad' op sends gradients of microbatch 0 before its input-gradient backward}}
    sched.send_grad mb 0 to @a tag 1 shape [4] x bf16 bytes 8
  }
}

// -----

sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    sched.send_act mb 0 to @b tag 0 shape [4] x bf16 bytes 8
    // expected-error@+1 {{'sched.send_act' op repeats the transfer of microbatch 0 with 'b'}}
    sched.send_act mb 0 to @b tag 0 shape [4] x bf16 bytes 8
  }
  sched.program @b stage 1 part "p" ranks first 1 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.recv_act mb 0 from @a tag 0 shape [4] x bf16 bytes 8
    sched.forward mb 0
  }
}

// -----

// Two messages to the same peer with one tag.
sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    sched.send_act mb 0 to @b tag 4 shape [4] x bf16 bytes 8
    sched.forward mb 1
    // expected-error@+1 {{'sched.send_act' op repeats tag 4 with 'b'; a tag names one message between a pair of stages}}
    sched.send_act mb 1 to @b tag 4 shape [4] x bf16 bytes 8
  }
  sched.program @b stage 1 part "p" ranks first 1 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.recv_act mb 0 from @a tag 4 shape [4] x bf16 bytes 8
    sched.forward mb 0
    sched.recv_act mb 1 from @a tag 4 shape [4] x bf16 bytes 8
    sched.forward mb 1
  }
}

// -----

//===----------------------------------------------------------------------===//
// shapes
//===----------------------------------------------------------------------===//

sched.schedule gpipe microbatches 1 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    // expected-error@+1 {{'sched.send_act' op has a shape of 1024 bytes but transfers 1000 bytes}}
    sched.send_act mb 0 to @b tag 0 shape [2, 256] x bf16 bytes 1000
  }
  sched.program @b stage 1 part "p" ranks first 1 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.recv_act mb 0 from @a tag 0 shape [500] x bf16 bytes 1000
    sched.forward mb 0
  }
}

// -----

// The tensors of a message add up: 2 x 4 x 2 + 3 x 4 = 28 bytes.
sched.schedule gpipe microbatches 1 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    // expected-error@+1 {{'sched.send_act' op has a shape of 28 bytes but transfers 16 bytes}}
    sched.send_act mb 0 to @b tag 0 shape [2, 4] x bf16 + [3] x f32 bytes 16
  }
  sched.program @b stage 1 part "p" ranks first 1 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.recv_act mb 0 from @a tag 0 shape [8] x bf16 bytes 16
    sched.forward mb 0
  }
}

// -----

sched.schedule gpipe microbatches 1 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    // expected-error@+1 {{'sched.send_act' op has element type 'i1'; each is an integer or float type of whole bytes}}
    sched.send_act mb 0 to @b tag 0 shape [8] x i1 bytes 1
  }
}

// -----

sched.schedule gpipe microbatches 1 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    // expected-error@+1 {{the element type of a message shape is an integer or float type, not 'index'}}
    sched.send_act mb 0 to @b tag 0 shape [8] x index bytes 64
  }
}

// -----

sched.schedule gpipe microbatches 1 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    // expected-error@+1 {{'sched.send_act' op has shape element 'tensor<?xbf16>'; each is a ranked tensor type of static shape}}
    "sched.send_act"() <{microbatch = 0 : i64, peer = @b, tag = 0 : i64, shape = [tensor<?xbf16>], bytes = 8 : i64}> : () -> ()
  }
}

// -----

//===----------------------------------------------------------------------===//
// microbatches
//===----------------------------------------------------------------------===//

sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    // expected-error@+1 {{'sched.forward' op microbatch 2 is out of range: the schedule has 2 microbatches}}
    sched.forward mb 2
  }
}

// -----

sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    // expected-error@+1 {{'sched.send_act' op microbatch 5 is out of range: the schedule has 2 microbatches}}
    sched.send_act mb 5 to @b tag 10 shape [4] x bf16 bytes 8
  }
  sched.program @b stage 1 part "p" ranks first 1 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
  }
}

// -----

//===----------------------------------------------------------------------===//
// collectives
//===----------------------------------------------------------------------===//

sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    // expected-error@+1 {{'sched.forward' op has 'tp_all_reduce' but the stage has tp 1}}
    sched.forward mb 0 tp_all_reduce
  }
}

// -----

sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 2 max_in_flight 1 {
    // expected-error@+1 {{'sched.forward' op has 'cp_all_gather' but the stage has cp 1}}
    sched.forward mb 0 cp_all_gather
  }
}

// -----

sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    // expected-error@+1 {{'sched.backward_input' op has 'cp_reduce_scatter' but the stage has cp 1}}
    sched.backward_input mb 0 cp_reduce_scatter
  }
}

// -----

sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 2 tp 1 max_in_flight 1 {
    // expected-error@+1 {{'sched.forward' op has 'cp_reduce_scatter'; a forward only gathers}}
    sched.forward mb 0 cp_reduce_scatter
  }
}

// -----

sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 2 max_in_flight 1 {
    sched.forward mb 0
    // expected-error@+1 {{'sched.backward_weight' op has 'tp_all_reduce'; weight gradients need no tensor-parallel reduction}}
    sched.backward_weight mb 0 tp_all_reduce
  }
}

// -----

sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 4 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    sched.backward_weight mb 0
    // expected-error@+1 {{'sched.all_reduce_grads' op group dp 2 x cp 1 differs from the stage's dp 4 x cp 1}}
    sched.all_reduce_grads bytes 8 group dp 2 x cp 1
  }
}

// -----

sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 2 tp 1 max_in_flight 1 {
    sched.forward mb 0
    sched.backward_weight mb 0
    // expected-error@+1 {{'sched.optimizer_step' op steps the optimizer without a gradient all-reduce over dp 1 x cp 2}}
    sched.optimizer_step
  }
}

// -----

//===----------------------------------------------------------------------===//
// peers
//===----------------------------------------------------------------------===//

sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    // expected-error@+1 {{'sched.send_act' op names peer @nowhere, which is not a program of the schedule}}
    sched.send_act mb 0 to @nowhere tag 0 shape [4] x bf16 bytes 8
  }
}

// -----

sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    // expected-error@+1 {{'sched.send_act' op names its own program as the peer}}
    sched.send_act mb 0 to @a tag 0 shape [4] x bf16 bytes 8
  }
}

// -----

sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.recv_act mb 0 from @b tag 0 shape [4] x bf16 bytes 8
    sched.forward mb 0
  }
  sched.program @b stage 1 part "p" ranks first 1 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    // expected-error@+1 {{'sched.send_act' op sends activations to an earlier stage, @a (stage 0)}}
    sched.send_act mb 0 to @a tag 0 shape [4] x bf16 bytes 8
  }
}

// -----

sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    // expected-error@+1 {{'sched.recv_act' op receives activations from a later stage, @b (stage 1)}}
    sched.recv_act mb 0 from @b tag 0 shape [4] x bf16 bytes 8
    sched.forward mb 0
  }
  sched.program @b stage 1 part "p" ranks first 1 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
  }
}

// -----

sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
    sched.backward_input mb 0
    // expected-error@+1 {{'sched.send_grad' op sends gradients to a later stage, @b (stage 1)}}
    sched.send_grad mb 0 to @b tag 1 shape [4] x bf16 bytes 8
  }
  sched.program @b stage 1 part "p" ranks first 1 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
  }
}

// -----

sched.schedule gpipe microbatches 2 {
  sched.program @a stage 0 part "p" ranks first 0 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    sched.forward mb 0
  }
  sched.program @b stage 1 part "p" ranks first 1 dp 1 stride 1 cp 1 tp 1 max_in_flight 1 {
    // expected-error@+1 {{'sched.recv_grad' op receives gradients from an earlier stage, @a (stage 0)}}
    sched.recv_grad mb 0 from @a tag 1 shape [4] x bf16 bytes 8
    sched.forward mb 0
  }
}
