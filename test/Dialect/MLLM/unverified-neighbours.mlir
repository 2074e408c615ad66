// RUN: mllm-opt %s -split-input-file -verify-diagnostics
//
// A verifier that reads another op may meet it unverified: every mllm.model
// is verified after the other ops of its module, and an op later in a block
// after the ones before it. Each case below crashed a verifier (issue 15:
// SIGSEGV or abort) by reading a required attribute that is absent; now the
// op that lacks it reports it. Written in generic form, which can leave any
// attribute out.

// mllm.pipeline counted the blocks of an mllm.layers without a count.
"mllm.model"() <{sym_name = "m"}> ({
  "mllm.llm"() <{instance = "lm", recompute = 0 : i32, sym_name = "llm", width = 128 : i64}> ({
    // expected-error@+1 {{'mllm.layers' op requires attribute 'count'}}
    "mllm.layers"() <{config = {ffn = 512 : i64, head_dim = 32 : i64, heads = 4 : i64, hidden = 128 : i64, kv_heads = 2 : i64}, kind = 3 : i32, name = "blocks"}> : () -> ()
  }) : () -> ()
}) : () -> ()
mllm.pipeline frozen_aware encoders_parallel microbatches 4 gpus 1 bottleneck 1.5 ms iteration 6.0 ms {
  mllm.stage @llm_s0 part @llm layers [0, 6) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
}

// -----

// ... and of an mllm.layers without a kind.
"mllm.model"() <{sym_name = "m"}> ({
  "mllm.llm"() <{instance = "lm", recompute = 0 : i32, sym_name = "llm", width = 128 : i64}> ({
    // expected-error@+1 {{'mllm.layers' op requires attribute 'kind'}}
    "mllm.layers"() <{config = {hidden = 128 : i64}, count = 6 : i64, name = "blocks"}> : () -> ()
  }) : () -> ()
}) : () -> ()
mllm.pipeline frozen_aware encoders_parallel microbatches 4 gpus 1 bottleneck 1.5 ms iteration 6.0 ms {
  mllm.stage @llm_s0 part @llm layers [0, 6) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
}

// -----

// mllm.data summed the tokens of an mllm.input without tokens.
"mllm.data"() <{microbatch_size = 1 : i64, microbatches = 4 : i64, packing = 1 : i64, seq_len = 256 : i64, text_mask = 0 : i32, text_tokens = 240 : i64}> ({
  // expected-error@+1 {{'mllm.input' op requires attribute 'tokens'}}
  "mllm.input"() <{encoder = @vision, items = 1 : i64, mask = 1 : i32, placement = 0 : i32}> : () -> ()
}) : () -> ()

// -----

// ... and without items.
"mllm.data"() <{microbatch_size = 1 : i64, microbatches = 4 : i64, packing = 1 : i64, seq_len = 256 : i64, text_mask = 0 : i32, text_tokens = 240 : i64}> ({
  // expected-error@+1 {{'mllm.input' op requires attribute 'items'}}
  "mllm.input"() <{encoder = @vision, mask = 1 : i32, placement = 0 : i32, tokens = 16 : i64}> : () -> ()
}) : () -> ()

// -----

// ... and without an encoder.
"mllm.data"() <{microbatch_size = 1 : i64, microbatches = 4 : i64, packing = 1 : i64, seq_len = 256 : i64, text_mask = 0 : i32, text_tokens = 240 : i64}> ({
  // expected-error@+1 {{'mllm.input' op requires attribute 'encoder'}}
  "mllm.input"() <{items = 1 : i64, mask = 1 : i32, placement = 0 : i32, tokens = 16 : i64}> : () -> ()
}) : () -> ()

// -----

// mllm.pipeline read the part of an mllm.module_parallel without one.
"mllm.model"() <{sym_name = "m"}> ({
  "mllm.llm"() <{instance = "lm", recompute = 0 : i32, sym_name = "llm", width = 128 : i64}> ({
    "mllm.layers"() <{config = {hidden = 128 : i64, vocab = 1000 : i64}, count = 1 : i64, kind = 0 : i32, name = "embed"}> : () -> ()
  }) : () -> ()
}) : () -> ()
mllm.pipeline frozen_aware encoders_parallel microbatches 4 gpus 1 bottleneck 1.5 ms iteration 6.0 ms {
  mllm.stage @llm_s0 part @llm layers [0, 1) fwd 1.000 ms bwd_w 0.000 ms bwd_d 0.500 ms recompute 0.000 ms
}
"mllm.parallel"() <{cp_balance = 0 : i32, dp = 1 : i64, layout = 0 : i32, partition = 0 : i32}> ({
  // expected-error@+1 {{'mllm.module_parallel' op requires attribute 'part'}}
  "mllm.module_parallel"() <{cp = 1 : i64, pp = 1 : i64, tp = 1 : i64}> : () -> ()
}) : () -> ()

// -----

// mllm.cp_assignment read the cp of an mllm.module_parallel without one.
mllm.cp_assignment @llm cp 2 uniform tokens 256 tile 128 x 32 ranks [[0:128], [128:256]] workload [1, 3] imbalance 1.5
"mllm.parallel"() <{cp_balance = 0 : i32, dp = 1 : i64, layout = 0 : i32, partition = 0 : i32}> ({
  // expected-error@+1 {{'mllm.module_parallel' op requires attribute 'cp'}}
  "mllm.module_parallel"() <{part = @llm, pp = 1 : i64, tp = 1 : i64}> : () -> ()
}) : () -> ()

// -----

// ... and the sequence of an mllm.data without a seq_len.
mllm.cp_assignment @llm cp 2 uniform tokens 256 tile 128 x 32 ranks [[0:128], [128:256]] workload [1, 3] imbalance 1.5
// expected-error@+1 {{'mllm.data' op requires attribute 'seq_len'}}
"mllm.data"() <{microbatch_size = 1 : i64, microbatches = 4 : i64, packing = 1 : i64, text_mask = 0 : i32, text_tokens = 256 : i64}> ({
}) : () -> ()

// -----

// ... and the name of an mllm.llm without one.
mllm.cp_assignment @llm cp 2 uniform tokens 256 tile 128 x 32 ranks [[0:128], [128:256]] workload [1, 3] imbalance 1.5
"mllm.model"() <{sym_name = "m"}> ({
  // expected-error@+1 {{'mllm.llm' op requires attribute 'sym_name'}}
  "mllm.llm"() <{instance = "lm", recompute = 0 : i32, width = 128 : i64}> ({
    "mllm.layers"() <{config = {hidden = 128 : i64, vocab = 1000 : i64}, count = 1 : i64, kind = 0 : i32, name = "embed"}> : () -> ()
  }) : () -> ()
}) : () -> ()

// -----

// mllm.model read the source of an mllm.projector without one.
"mllm.model"() <{sym_name = "m"}> ({
  "mllm.encoder"() <{instance = "vit", modality = 0 : i32, recompute = 0 : i32, sym_name = "vision", width = 64 : i64}> ({
    "mllm.layers"() <{config = {hidden = 64 : i64}, count = 1 : i64, kind = 5 : i32, name = "post_norm"}> : () -> ()
  }) : () -> ()
  // expected-error@+1 {{'mllm.projector' op requires attribute 'source'}}
  "mllm.projector"() <{kind = 1 : i32, merge = 1 : i64, sym_name = "vision_projector", target = @llm}> ({
    "mllm.layers"() <{config = {hidden = 128 : i64, in = 64 : i64, out = 128 : i64}, count = 1 : i64, kind = 8 : i32, name = "mlp"}> : () -> ()
  }) : () -> ()
}) : () -> ()

// -----

// mllm.projector read the width of an mllm.llm without one.
"mllm.model"() <{sym_name = "m"}> ({
  "mllm.encoder"() <{instance = "vit", modality = 0 : i32, recompute = 0 : i32, sym_name = "vision", width = 64 : i64}> ({
    "mllm.layers"() <{config = {hidden = 64 : i64}, count = 1 : i64, kind = 5 : i32, name = "post_norm"}> : () -> ()
  }) : () -> ()
  "mllm.projector"() <{kind = 1 : i32, merge = 1 : i64, source = @vision, sym_name = "vision_projector", target = @llm}> ({
    "mllm.layers"() <{config = {hidden = 128 : i64, in = 64 : i64, out = 128 : i64}, count = 1 : i64, kind = 8 : i32, name = "mlp"}> : () -> ()
  }) : () -> ()
  // expected-error@+1 {{'mllm.llm' op requires attribute 'width'}}
  "mllm.llm"() <{instance = "lm", recompute = 0 : i32, sym_name = "llm"}> ({
    "mllm.layers"() <{config = {hidden = 128 : i64, vocab = 1000 : i64}, count = 1 : i64, kind = 0 : i32, name = "embed"}> : () -> ()
  }) : () -> ()
}) : () -> ()

// -----

// An mllm.model without its body block, read by mllm.input.
// expected-error@+1 {{'mllm.model' op region #0 ('body') failed to verify constraint: region with 1 blocks}}
"mllm.model"() <{sym_name = "m"}> ({
}) : () -> ()
"mllm.data"() <{microbatch_size = 1 : i64, microbatches = 4 : i64, packing = 1 : i64, seq_len = 16 : i64, text_mask = 0 : i32, text_tokens = 0 : i64}> ({
  "mllm.input"() <{encoder = @vision, items = 1 : i64, mask = 1 : i32, placement = 0 : i32, tokens = 16 : i64}> : () -> ()
}) : () -> ()

// -----

// mllm.stage dereferenced the breakdown of a memory estimate without one.
mllm.pipeline frozen_aware encoders_parallel microbatches 4 gpus 1 bottleneck 1.5 ms iteration 6.0 ms {
  // expected-error@+1 {{'mllm.stage' op has a partial memory estimate: 'weights' is missing}}
  "mllm.stage"() <{begin = 0 : i64, bwd_d = 5.000000e-01 : f64, bwd_w = 0.000000e+00 : f64, end = 2 : i64, fwd = 1.000000e+00 : f64, memory = 10 : i64, part = @llm, recompute = 0.000000e+00 : f64, sym_name = "llm_s0"}> : () -> ()
}

// -----

// ... and the strides of ranks without an end.
mllm.pipeline frozen_aware encoders_parallel microbatches 4 gpus 1 bottleneck 1.5 ms iteration 6.0 ms {
  // expected-error@+1 {{'mllm.stage' op has a partial rank layout: 'end_rank' is missing}}
  "mllm.stage"() <{begin = 0 : i64, bwd_d = 5.000000e-01 : f64, bwd_w = 0.000000e+00 : f64, end = 2 : i64, first_rank = 0 : i64, fwd = 1.000000e+00 : f64, part = @llm, recompute = 0.000000e+00 : f64, sym_name = "llm_s0"}> : () -> ()
}
