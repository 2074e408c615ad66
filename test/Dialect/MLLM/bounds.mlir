// RUN: mllm-opt %s -split-input-file -verify-diagnostics
//
// Every integer of the IR is bounded as docs/language.md ("Bounds")
// documents it, and what is derived from several of them is computed
// overflow-checked (Bounds.h): issue 15 found signed overflow, allocations
// without end and negative GPU counts in the tools on IR that was only
// "positive".

// expected-error@+1 {{'mllm.parallel' op 'dp' is 4611686018427387904; the limit is 1048576}}
mllm.parallel dp 4611686018427387904 encoders_parallel partition frozen_aware cp_balance lpt {
}

// -----

mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  // expected-error@+1 {{'mllm.module_parallel' op 'tp' is 1099511627776; the limit is 65536}}
  mllm.module_parallel @llm tp 1099511627776 pp 1 cp 1
}

// -----

mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  // expected-error@+1 {{'mllm.module_parallel' op stage layer counts must be at most 4096, got 4611686018427387904}}
  mllm.module_parallel @llm tp 1 pp 2 cp 1 stages [4611686018427387904, 4611686018427387904]
}

// -----

// expected-error@+1 {{'mllm.data' op 'microbatches' is 1048576; the limit is 65536}}
mllm.data text 256 packing 1 seq_len 256 microbatch 1 x 1048576 mask causal {
}

// -----

// expected-error@+1 {{'mllm.data' op 'microbatch_size' is 4611686018427387904; the limit is 65536}}
mllm.data text 256 packing 1 seq_len 256 microbatch 4611686018427387904 x 4 mask causal {
}

// -----

// tokens x items x packing overflowed int64 in the verifier itself.
// expected-error@+1 {{'mllm.data' op the layout gives more than 1099511627776 tokens per sequence}}
mllm.data text 256 packing 1 seq_len 256 microbatch 1 x 4 mask causal {
  mllm.input @vision tokens 1099511627776 x 1024 prepend mask bidirectional
}

// -----

// expected-error@+1 {{'mllm.cp_assignment' op 'cp' is 9223372036854775807; the limit is 65536}}
mllm.cp_assignment @llm cp 9223372036854775807 uniform tokens 256 tile 128 x 32 ranks [[0:128], [128:256]] workload [1, 3] imbalance 1.5

// -----

// expected-error@+1 {{'mllm.cp_assignment' op the workloads sum beyond int64}}
mllm.cp_assignment @llm cp 2 uniform tokens 256 tile 128 x 32 ranks [[0:128], [128:256]] workload [9223372036854775807, 9223372036854775807] imbalance 1.0

// -----

mllm.model @m {
  mllm.llm @llm : "d" width 16 recompute none {
    // expected-error@+1 {{'mllm.layers' op 'count' is 5000; the limit is 4096}}
    mllm.layers "blocks" : transformer_block x 5000 {hidden = 16, ffn = 16, heads = 1, kv_heads = 1, head_dim = 16}
  }
}

// -----

mllm.model @m {
  mllm.llm @llm : "d" width 16 recompute none {
    // expected-error@+1 {{'mllm.layers' op config 'hidden' is 2097152; the limit is 1048576}}
    mllm.layers "embed" : token_embedding x 1 {vocab = 10, hidden = 2097152}
  }
}

// -----

mllm.model @m {
  mllm.llm @llm : "d" width 16 recompute none {
    // expected-error@+1 {{'mllm.layers' op config 'vocab' must be a 64-bit integer, got 'i128'}}
    mllm.layers "embed" : token_embedding x 1 {vocab = 100000000000000000000000 : i128, hidden = 16}
  }
}

// -----

mllm.model @m {
  // expected-error@+1 {{'mllm.llm' op 'width' is 2097152; the limit is 1048576}}
  mllm.llm @llm : "d" width 2097152 recompute none {
    mllm.layers "embed" : token_embedding x 1 {vocab = 10, hidden = 16}
  }
}

// -----

// expected-error@+1 {{'mllm.cluster' op a cluster of 1073741824 GPUs exceeds the limit of 1048576}}
mllm.cluster 1048576 x 1024 "a40" {inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 48000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, peak_flops = 1.497000e+14 : f64}

// -----

// expected-error@+1 {{'mllm.cluster' op 'peak_flops' must be positive and finite}}
mllm.cluster 1 x 4 "a40" {inter_node_bandwidth = 2.500000e+10 : f64, intra_node_bandwidth = 5.625000e+10 : f64, memory = 48000000000 : i64, memory_bandwidth = 6.960000e+11 : f64, peak_flops = 0x7FF0000000000000 : f64}

// -----

// expected-error@+1 {{'mllm.train' op 'steps' is 4611686018427387904; the limit is 2147483648}}
mllm.train steps 4611686018427387904 adamw lr 1.0e-4 weight_decay 0.0 precision bf16 seed 0

// -----

mllm.pipeline frozen_aware encoders_parallel microbatches 4 gpus 1 bottleneck 1.5 ms iteration 6.0 ms {
  // expected-error@+1 {{'mllm.stage' op time 'fwd' must be between 0 and 86400000 ms, got INF}}
  "mllm.stage"() <{begin = 0 : i64, bwd_d = 5.000000e-01 : f64, bwd_w = 0.000000e+00 : f64, end = 2 : i64, fwd = 0x7FF0000000000000 : f64, part = @llm, recompute = 0.000000e+00 : f64, sym_name = "llm_s0"}> : () -> ()
}

// -----

mllm.pipeline frozen_aware encoders_parallel microbatches 4 gpus 1 bottleneck 1.5 ms iteration 6.0 ms {
  // expected-error@+1 {{'mllm.stage' op 'in_flight' is 4611686018427387904; the limit is 65536}}
  mllm.stage @llm_s0 part @llm layers [0, 2) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms memory 2 MiB = weights 1 + grads 1 + optimizer 0 + activations 0 x 4611686018427387904
}

// -----

// A plan's schedule holds every microbatch of every stage: 33 stages x
// 65536 microbatches are more than 2^20 (a schedule in IR holds fewer,
// test/Dialect/Sched/bounds.mlir).
// expected-error@+1 {{'mllm.pipeline' op plans 33 stages x 65536 microbatches; a plan's schedule holds at most 1048576 (fewer stages or microbatches)}}
mllm.pipeline frozen_aware encoders_parallel microbatches 65536 gpus 33 bottleneck 1.5 ms iteration 6.0 ms {
  mllm.stage @llm_s0 part @llm layers [0, 1) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s1 part @llm layers [1, 2) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s2 part @llm layers [2, 3) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s3 part @llm layers [3, 4) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s4 part @llm layers [4, 5) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s5 part @llm layers [5, 6) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s6 part @llm layers [6, 7) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s7 part @llm layers [7, 8) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s8 part @llm layers [8, 9) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s9 part @llm layers [9, 10) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s10 part @llm layers [10, 11) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s11 part @llm layers [11, 12) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s12 part @llm layers [12, 13) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s13 part @llm layers [13, 14) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s14 part @llm layers [14, 15) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s15 part @llm layers [15, 16) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s16 part @llm layers [16, 17) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s17 part @llm layers [17, 18) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s18 part @llm layers [18, 19) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s19 part @llm layers [19, 20) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s20 part @llm layers [20, 21) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s21 part @llm layers [21, 22) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s22 part @llm layers [22, 23) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s23 part @llm layers [23, 24) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s24 part @llm layers [24, 25) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s25 part @llm layers [25, 26) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s26 part @llm layers [26, 27) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s27 part @llm layers [27, 28) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s28 part @llm layers [28, 29) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s29 part @llm layers [29, 30) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s30 part @llm layers [30, 31) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s31 part @llm layers [31, 32) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
  mllm.stage @llm_s32 part @llm layers [32, 33) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
}
