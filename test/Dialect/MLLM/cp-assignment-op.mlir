// RUN: mllm-opt %s --split-input-file --verify-diagnostics | FileCheck %s
// RUN: mllm-opt %s --split-input-file --verify-diagnostics --mlir-print-op-generic | mllm-opt --split-input-file | FileCheck %s

// The mllm.cp_assignment op: syntax and verifier. The pass that produces it
// is tested in balance-cp.mlir.

// CHECK-LABEL: mllm.cp_assignment @llm cp 2 lpt tokens 300 tile 128 x 32
// CHECK-SAME: ranks {{\[}}[0:128, 256:300], [128:256]] workload [10, 8] imbalance 1.111100e+00
mllm.cp_assignment @llm cp 2 lpt tokens 300 tile 128 x 32 ranks [[0:128, 256:300], [128:256]] workload [10, 8] imbalance 1.1111

// -----

// CHECK-LABEL: mllm.cp_assignment @llm cp 3 ilp optimal tokens 384 tile 128 x 64
// CHECK-SAME: ranks {{\[}}[256:384], [0:128], [128:256]] workload [0, 0, 0] imbalance 0.000000e+00
mllm.data text 384 packing 1 seq_len 384 microbatch 1 x 1 mask causal {
}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance ilp {
  mllm.module_parallel @llm tp 1 pp 1 cp 3
}
mllm.cp_assignment @llm cp 3 ilp optimal tokens 384 tile 128 x 64 ranks [[256:384], [0:128], [128:256]] workload [0, 0, 0] imbalance 0.0

// -----

// A token weight (what lpt balanced besides the tiles), and its range.
// CHECK-LABEL: mllm.cp_assignment @llm cp 2 lpt tokens 300 tile 128 x 32 token_weight 7.500000e-01
// CHECK-SAME: ranks {{\[}}[0:128, 256:300], [128:256]]
mllm.cp_assignment @llm cp 2 lpt tokens 300 tile 128 x 32 token_weight 0.75 ranks [[0:128, 256:300], [128:256]] workload [10, 8] imbalance 1.1111

// -----

// expected-error @below {{token_weight must be in [0, 1e6], got -1}}
mllm.cp_assignment @llm cp 2 lpt tokens 300 tile 128 x 32 token_weight -1.0 ranks [[0:128, 256:300], [128:256]] workload [10, 8] imbalance 1.1111

// -----

// expected-error @below {{lists the ranges of 1 ranks but cp is 2}}
mllm.cp_assignment @llm cp 2 lpt tokens 256 tile 128 x 32 ranks [[0:256]] workload [12, 0] imbalance 2.0

// -----

// expected-error @below {{rank 1 owns no tokens}}
mllm.cp_assignment @llm cp 2 lpt tokens 256 tile 128 x 32 ranks [[0:256], []] workload [12, 0] imbalance 2.0

// -----

// expected-error @below {{rank 0 has the range 0:100, which does not follow the blocks of 128 tokens}}
mllm.cp_assignment @llm cp 2 lpt tokens 256 tile 128 x 32 ranks [[0:100], [100:256]] workload [4, 8] imbalance 1.3333

// -----

// expected-error @below {{rank 1 has the range 128:384, which is empty or outside the 256 tokens}}
mllm.cp_assignment @llm cp 2 lpt tokens 256 tile 128 x 32 ranks [[0:128], [128:384]] workload [4, 8] imbalance 1.3333

// -----

// expected-error @below {{the ranges of rank 0 must be ascending and disjoint}}
mllm.cp_assignment @llm cp 2 lpt tokens 384 tile 128 x 32 ranks [[256:384, 0:128], [128:256]] workload [4, 8] imbalance 1.3333

// -----

// expected-error @below {{ranks share token 128}}
mllm.cp_assignment @llm cp 2 lpt tokens 384 tile 128 x 32 ranks [[0:256], [128:384]] workload [4, 8] imbalance 1.3333

// -----

// expected-error @below {{no rank owns token 256}}
mllm.cp_assignment @llm cp 2 lpt tokens 384 tile 128 x 32 ranks [[0:128], [128:256]] workload [4, 8] imbalance 1.3333

// -----

// expected-error @below {{lists 3 workloads but cp is 2}}
mllm.cp_assignment @llm cp 2 lpt tokens 256 tile 128 x 32 ranks [[0:128], [128:256]] workload [4, 8, 1] imbalance 1.3333

// -----

// expected-error @below {{imbalance 1.000000e+00 does not match the workloads (max / mean = 1.333333e+00)}}
mllm.cp_assignment @llm cp 2 lpt tokens 256 tile 128 x 32 ranks [[0:128], [128:256]] workload [4, 8] imbalance 1.0

// -----

mllm.data text 384 packing 1 seq_len 384 microbatch 1 x 1 mask causal {
}
// expected-error @below {{splits 256 tokens but the sequence has 384}}
mllm.cp_assignment @llm cp 2 lpt tokens 256 tile 128 x 32 ranks [[0:128], [128:256]] workload [4, 8] imbalance 1.3333

// -----

mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  mllm.module_parallel @llm tp 1 pp 1 cp 4
}
// expected-error @below {{has cp 2 but 'llm' has cp 4}}
mllm.cp_assignment @llm cp 2 lpt tokens 256 tile 128 x 32 ranks [[0:128], [128:256]] workload [4, 8] imbalance 1.3333

// -----

mllm.model @m {
  mllm.llm @lm : "tiny" width 64 recompute none {
    mllm.layers "blocks" : transformer_block x 2 {hidden = 64, ffn = 256, heads = 4, kv_heads = 4, head_dim = 16}
  }
}
// expected-error @below {{part 'llm' is not the LLM 'lm'}}
mllm.cp_assignment @llm cp 2 lpt tokens 256 tile 128 x 32 ranks [[0:128], [128:256]] workload [4, 8] imbalance 1.3333

// -----

// expected-error @below {{rank offsets must not decrease}}
"mllm.cp_assignment"() <{block = 128 : i64, cp = 2 : i64, imbalance = 1.3333 : f64, key_tile = 32 : i64, part = @llm, policy = 0 : i32, ranges = array<i64: 0, 128, 128, 256>, rank_offsets = array<i64: 0, 5, 2>, tokens = 256 : i64, workload = array<i64: 4, 8>}> : () -> ()

// -----

// expected-error @below {{rank offsets must start at 0 and end at the number of ranges}}
"mllm.cp_assignment"() <{block = 128 : i64, cp = 2 : i64, imbalance = 1.3333 : f64, key_tile = 32 : i64, part = @llm, policy = 0 : i32, ranges = array<i64: 0, 128, 128, 256>, rank_offsets = array<i64: 0, 1, 3>, tokens = 256 : i64, workload = array<i64: 4, 8>}> : () -> ()

// -----

// expected-error @below {{token ranges must come in [start, end) pairs}}
"mllm.cp_assignment"() <{block = 128 : i64, cp = 1 : i64, imbalance = 1.0 : f64, key_tile = 32 : i64, part = @llm, policy = 0 : i32, ranges = array<i64: 0, 128, 256>, rank_offsets = array<i64: 0, 1>, tokens = 256 : i64, workload = array<i64: 4>}> : () -> ()
