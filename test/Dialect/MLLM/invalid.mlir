// RUN: mllm-opt %s -split-input-file -verify-diagnostics
//
// One case per diagnostic of the op verifiers in MLLMOps.cpp. Each case is
// otherwise valid, so the expected error is the first one the verifier meets.
// mllm.input is written in generic form: its custom syntax for `positions`
// is independent of what these cases check.

//===----------------------------------------------------------------------===//
// mllm.model
//===----------------------------------------------------------------------===//

mllm.model @m {
  mllm.encoder @vision : "v" modality image width 8 recompute none {
    mllm.layers "blocks" : transformer_block x 1 {hidden = 8, ffn = 8, heads = 1, kv_heads = 1, head_dim = 8}
  }
  mllm.projector @p1 linear @vision -> @llm merge 1 {
    mllm.layers "proj" : linear x 1 {in = 8, out = 16}
  }
  // expected-error@+1 {{'mllm.projector' op is the second projector of encoder 'vision'}}
  mllm.projector @p2 linear @vision -> @llm merge 1 {
    mllm.layers "proj" : linear x 1 {in = 8, out = 16}
  }
  mllm.llm @llm : "d" width 16 recompute none {
    mllm.layers "embed" : token_embedding x 1 {vocab = 10, hidden = 16}
  }
}

// -----

mllm.model @m {
  mllm.llm @llm : "d" width 16 recompute none {
    mllm.layers "embed" : token_embedding x 1 {vocab = 10, hidden = 16}
  }
  // expected-error@+1 {{'mllm.train' op is not allowed in 'mllm.model'}}
  mllm.train steps 1 adamw lr 1.0e-4 weight_decay 0.0 precision bf16 seed 0
}

// -----

// expected-error@+1 {{'mllm.model' op must contain exactly one 'mllm.llm', found 0}}
mllm.model @m {
}

// -----

// expected-error@+1 {{'mllm.model' op must contain exactly one 'mllm.llm', found 2}}
mllm.model @m {
  mllm.llm @a : "d" width 16 recompute none {
    mllm.layers "embed" : token_embedding x 1 {vocab = 10, hidden = 16}
  }
  mllm.llm @b : "d" width 16 recompute none {
    mllm.layers "embed" : token_embedding x 1 {vocab = 10, hidden = 16}
  }
}

// -----

mllm.model @m {
  // expected-error@+1 {{'mllm.encoder' op has no projector into the LLM}}
  mllm.encoder @vision : "v" modality image width 8 recompute none {
    mllm.layers "blocks" : transformer_block x 1 {hidden = 8, ffn = 8, heads = 1, kv_heads = 1, head_dim = 8}
  }
  mllm.llm @llm : "d" width 16 recompute none {
    mllm.layers "embed" : token_embedding x 1 {vocab = 10, hidden = 16}
  }
}

//===----------------------------------------------------------------------===//
// mllm.encoder / mllm.llm / mllm.projector
//===----------------------------------------------------------------------===//

// -----

mllm.model @m {
  // expected-error@+1 {{'mllm.llm' op has no layer groups}}
  mllm.llm @llm : "d" width 16 recompute none {
  }
}

// -----

mllm.model @m {
  mllm.encoder @vision : "v" modality image width 8 recompute none {
    // expected-error@+1 {{'mllm.train' op is not allowed in 'mllm.encoder'; expected 'mllm.layers'}}
    mllm.train steps 1 adamw lr 1.0e-4 weight_decay 0.0 precision bf16 seed 0
  }
  mllm.projector @p linear @vision -> @llm merge 1 {
    mllm.layers "proj" : linear x 1 {in = 8, out = 16}
  }
  mllm.llm @llm : "d" width 16 recompute none {
    mllm.layers "embed" : token_embedding x 1 {vocab = 10, hidden = 16}
  }
}

// -----

mllm.model @m {
  // expected-error@+1 {{'mllm.projector' op source 'llm' is not an encoder}}
  mllm.projector @p linear @llm -> @llm merge 1 {
    mllm.layers "proj" : linear x 1 {in = 16, out = 16}
  }
  mllm.llm @llm : "d" width 16 recompute none {
    mllm.layers "embed" : token_embedding x 1 {vocab = 10, hidden = 16}
  }
}

// -----

mllm.model @m {
  mllm.encoder @vision : "v" modality image width 8 recompute none {
    mllm.layers "blocks" : transformer_block x 1 {hidden = 8, ffn = 8, heads = 1, kv_heads = 1, head_dim = 8}
  }
  // expected-error@+1 {{'mllm.projector' op target 'vision' is not the LLM}}
  mllm.projector @p linear @vision -> @vision merge 1 {
    mllm.layers "proj" : linear x 1 {in = 8, out = 16}
  }
  mllm.llm @llm : "d" width 16 recompute none {
    mllm.layers "embed" : token_embedding x 1 {vocab = 10, hidden = 16}
  }
}

// -----

mllm.model @m {
  mllm.encoder @vision : "v" modality image width 8 recompute none {
    mllm.layers "blocks" : transformer_block x 1 {hidden = 8, ffn = 8, heads = 1, kv_heads = 1, head_dim = 8}
  }
  // expected-error@+1 {{'mllm.projector' op reads 8 features but encoder 'vision' provides 32 (width 8 x merge 4)}}
  mllm.projector @p mlp @vision -> @llm merge 4 {
    mllm.layers "proj" : mlp x 1 {in = 8, hidden = 16, out = 16}
  }
  mllm.llm @llm : "d" width 16 recompute none {
    mllm.layers "embed" : token_embedding x 1 {vocab = 10, hidden = 16}
  }
}

// -----

mllm.model @m {
  mllm.encoder @vision : "v" modality image width 8 recompute none {
    mllm.layers "blocks" : transformer_block x 1 {hidden = 8, ffn = 8, heads = 1, kv_heads = 1, head_dim = 8}
  }
  // expected-error@+1 {{'mllm.projector' op writes 12 features but the LLM's width is 16}}
  mllm.projector @p linear @vision -> @llm merge 1 {
    mllm.layers "proj" : linear x 1 {in = 8, out = 12}
  }
  mllm.llm @llm : "d" width 16 recompute none {
    mllm.layers "embed" : token_embedding x 1 {vocab = 10, hidden = 16}
  }
}

//===----------------------------------------------------------------------===//
// mllm.layers
//===----------------------------------------------------------------------===//

// -----

mllm.model @m {
  mllm.llm @llm : "d" width 16 recompute none {
    // expected-error@+1 {{'mllm.layers' op of kind 'transformer_block' needs integer config 'kv_heads'}}
    mllm.layers "blocks" : transformer_block x 2 {hidden = 16, ffn = 64, heads = 4, head_dim = 4}
  }
}

// -----

mllm.model @m {
  mllm.llm @llm : "d" width 16 recompute none {
    // expected-error@+1 {{'mllm.layers' op of kind 'token_embedding' needs integer config 'vocab'}}
    mllm.layers "embed" : token_embedding x 1 {vocab = "many", hidden = 16}
  }
}

// -----

// The config keys are the layer-config table's (runtime/LayerConfig.h).
mllm.model @m {
  mllm.llm @llm : "d" width 16 recompute none {
    // expected-error@+1 {{'mllm.layers' op has an unknown config key 'vocabulary'}}
    mllm.layers "embed" : token_embedding x 1 {vocab = 100, hidden = 16, vocabulary = 3}
  }
}

// -----

mllm.model @m {
  mllm.llm @llm : "d" width 16 recompute none {
    // expected-error@+1 {{'mllm.layers' op config 'activation' has the wrong type}}
    mllm.layers "blocks" : transformer_block x 2 {hidden = 16, ffn = 64, heads = 4, kv_heads = 4, head_dim = 4, activation = 3}
  }
}

// -----

mllm.model @m {
  mllm.llm @llm : "d" width 16 recompute none {
    // expected-error@+1 {{'mllm.layers' op config 'hidden' must be positive, got 0}}
    mllm.layers "norm" : norm x 1 {hidden = 0}
  }
}

// -----

mllm.model @m {
  mllm.llm @llm : "d" width 16 recompute none {
    // expected-error@+1 {{'mllm.layers' op has 4 heads, not a multiple of its 3 kv_heads}}
    mllm.layers "blocks" : transformer_block x 2 {hidden = 16, ffn = 64, heads = 4, kv_heads = 3, head_dim = 4}
  }
}

//===----------------------------------------------------------------------===//
// mllm.data / mllm.input
//===----------------------------------------------------------------------===//

// -----

mllm.data text 16 packing 1 seq_len 16 microbatch 1 x 1 mask causal {
  // expected-error@+1 {{'mllm.train' op is not allowed in 'mllm.data'}}
  mllm.train steps 1 adamw lr 1.0e-4 weight_decay 0.0 precision bf16 seed 0
}

// -----

mllm.data text 16 packing 1 seq_len 32 microbatch 1 x 1 mask causal {
  "mllm.input"() <{encoder = @vision, tokens = 8 : i64, items = 1 : i64, placement = 0 : i32, positions = array<f64>, mask = 1 : i32}> : () -> ()
  // expected-error@+1 {{'mllm.input' op repeats the input of encoder 'vision'}}
  "mllm.input"() <{encoder = @vision, tokens = 8 : i64, items = 1 : i64, placement = 0 : i32, positions = array<f64>, mask = 1 : i32}> : () -> ()
}

// -----

// expected-error@+1 {{'mllm.data' op seq_len 100 does not match the layout, which gives 96}}
mllm.data text 16 packing 2 seq_len 100 microbatch 1 x 1 mask causal {
  "mllm.input"() <{encoder = @vision, tokens = 16 : i64, items = 2 : i64, placement = 0 : i32, positions = array<f64>, mask = 1 : i32}> : () -> ()
}

// -----

mllm.model @m {
  mllm.llm @llm : "d" width 16 recompute none {
    mllm.layers "embed" : token_embedding x 1 {vocab = 10, hidden = 16}
  }
}
mllm.data text 16 packing 1 seq_len 24 microbatch 1 x 1 mask causal {
  // expected-error@+1 {{'mllm.input' op refers to 'llm', which is not an encoder of model 'm'}}
  "mllm.input"() <{encoder = @llm, tokens = 8 : i64, items = 1 : i64, placement = 0 : i32, positions = array<f64>, mask = 1 : i32}> : () -> ()
}

// -----

mllm.model @m {
  mllm.encoder @vision : "v" modality image width 8 recompute none {
    mllm.layers "blocks" : transformer_block x 1 {hidden = 8, ffn = 8, heads = 1, kv_heads = 1, head_dim = 8}
  }
  mllm.projector @p linear @vision -> @llm merge 3 {
    mllm.layers "proj" : linear x 1 {in = 24, out = 16}
  }
  mllm.llm @llm : "d" width 16 recompute none {
    mllm.layers "embed" : token_embedding x 1 {vocab = 10, hidden = 16}
  }
}
mllm.data text 16 packing 1 seq_len 22 microbatch 1 x 1 mask causal {
  // expected-error@+1 {{'mllm.input' op has encoder_tokens 16, which merge 3 pads to 6 tokens, not 5}}
  mllm.input @vision tokens 5 x 1 prepend mask bidirectional encoder_tokens 16
}

// -----

mllm.data text 16 packing 1 seq_len 40 microbatch 1 x 1 mask causal {
  // expected-error@+1 {{'mllm.input' op has 2 positions for 3 items; give one position or one per item}}
  "mllm.input"() <{encoder = @vision, tokens = 8 : i64, items = 3 : i64, placement = 2 : i32, positions = array<f64: 0.25, 0.5>, mask = 1 : i32}> : () -> ()
}

// -----

mllm.data text 16 packing 1 seq_len 24 microbatch 1 x 1 mask causal {
  // expected-error@+1 {{'mllm.input' op positions are only meaningful with placement 'at'}}
  "mllm.input"() <{encoder = @vision, tokens = 8 : i64, items = 1 : i64, placement = 1 : i32, positions = array<f64: 0.5>, mask = 1 : i32}> : () -> ()
}

// -----

mllm.data text 16 packing 1 seq_len 24 microbatch 1 x 1 mask causal {
  // expected-error@+1 {{is outside [0, 1]}}
  "mllm.input"() <{encoder = @vision, tokens = 8 : i64, items = 1 : i64, placement = 2 : i32, positions = array<f64: 1.5>, mask = 1 : i32}> : () -> ()
}

//===----------------------------------------------------------------------===//
// mllm.cluster / mllm.parallel / mllm.module_parallel / mllm.train
//===----------------------------------------------------------------------===//

// -----

// expected-error@+1 {{'mllm.cluster' op 'inter_node_bandwidth' must be positive}}
mllm.cluster 1 x 4 "a40" {peak_flops = 1.0e14, memory = 1024, memory_bandwidth = 1.0e11, intra_node_bandwidth = 1.0e10, inter_node_bandwidth = 0.0}

// -----

// expected-error@+1 {{'mllm.cluster' op 'peak_flops' must be positive}}
mllm.cluster 1 x 4 "a40" {peak_flops = -1.0, memory = 1024, memory_bandwidth = 1.0e11, intra_node_bandwidth = 1.0e10, inter_node_bandwidth = 1.0e10}

// -----

mllm.parallel dp 1 encoders_parallel partition uniform cp_balance lpt {
  // expected-error@+1 {{'mllm.train' op is not allowed in 'mllm.parallel'}}
  mllm.train steps 1 adamw lr 1.0e-4 weight_decay 0.0 precision bf16 seed 0
}

// -----

mllm.parallel dp 1 encoders_parallel partition uniform cp_balance lpt {
  mllm.module_parallel @llm tp 1 pp 1 cp 1
  // expected-error@+1 {{'mllm.module_parallel' op repeats the parallel config of 'llm'}}
  mllm.module_parallel @llm tp 2 pp 1 cp 1
}

// -----

mllm.parallel dp 1 encoders_parallel partition explicit cp_balance lpt {
  // expected-error@+1 {{'mllm.module_parallel' op lists 2 stages but pp is 3}}
  mllm.module_parallel @llm tp 1 pp 3 cp 1 stages [4, 4]
}

// -----

mllm.parallel dp 1 encoders_parallel partition explicit cp_balance lpt {
  // expected-error@+1 {{'mllm.module_parallel' op stage layer counts must be positive, got 0}}
  mllm.module_parallel @llm tp 1 pp 2 cp 1 stages [8, 0]
}

// -----

mllm.model @m {
  mllm.llm @llm : "d" width 16 recompute none {
    mllm.layers "embed" : token_embedding x 1 {vocab = 10, hidden = 16}
  }
}
mllm.parallel dp 1 encoders_parallel partition uniform cp_balance lpt {
  // expected-error@+1 {{'mllm.module_parallel' op refers to 'audio', which is not an encoder or the LLM}}
  mllm.module_parallel @audio tp 1 pp 1 cp 1
}

// -----

// expected-error@+1 {{'mllm.train' op learning rate must be positive}}
mllm.train steps 1 adamw lr 0.0 weight_decay 0.0 precision bf16 seed 0

// -----

// expected-error@+1 {{'mllm.train' op weight decay must not be negative}}
mllm.train steps 1 adamw lr 1.0e-4 weight_decay -0.5 precision bf16 seed 0
