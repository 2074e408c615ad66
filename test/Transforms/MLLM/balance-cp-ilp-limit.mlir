// RUN: mllm-opt %s --mllm-balance-cp=ilp-time-limit=0.01 --verify-diagnostics | FileCheck %s
//
// A time limit that binds is part of the ilp policy's answer: 729 image
// tokens in 3000 text tokens over 3 ranks have no split at the bound
// ceil(1701 / 3) = 567 that CBC can prove or refute in 10 ms, so the pass
// says how far from the bound the best split it found may be, and records
// it without `optimal`. (A build without CBC warns that the policy is not
// available and uses lpt.)

// CHECK: mllm.cp_assignment @llm cp 3 {{ilp|lpt}} tokens 3729 tile 128 x 32
mllm.data text 3000 packing 1 seq_len 3729 microbatch 1 x 4 mask causal {
  mllm.input @vision tokens 729 x 1 at [5.000000e-01] mask bidirectional
}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance ilp {
  // expected-warning-re @below {{the ilp CP balancer {{(stopped at its 0.01 s time limit without proving the split of 'llm' optimal: its slowest rank has [0-9]+ tiles, the lower bound is 567 \([0-9.]+% above it\)|is not available.*)}}}}
  mllm.module_parallel @llm tp 1 pp 1 cp 3
}
