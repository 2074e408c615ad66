// RUN: mllm-opt %s --split-input-file --mllm-frozen-analysis | FileCheck %s
// RUN: mllm-opt %s --split-input-file --mllm-frozen-analysis --mllm-frozen-analysis | FileCheck %s

// Fig. 1c of the paper: SigLIP so400m -> MLP projector -> Llama-3.2-1B,
// recompute = full on both, in the four frozen combinations (the projector
// trains in all of them), plus everything frozen.
//
// (Enc, Proj, LLM) = (train, train, train): every layer computes weight
// gradients; input gradients everywhere except the first layer of each path
// (the patch embedding reads pixels, the token embedding reads ids), and
// every layer with a backward recomputes.
// CHECK-LABEL: mllm.model @train_all
// CHECK:       mllm.layers "patch_embed" : patch_embedding x 1 {{\{[^}]*[}]}} {needs_weight_grad, recomputes}
// CHECK:       mllm.layers "blocks" : transformer_block x 27 {{\{[^}]*[}]}} {needs_input_grad, needs_weight_grad, recomputes}
// CHECK:       mllm.layers "post_norm" : norm x 1 {{\{[^}]*[}]}} {needs_input_grad, needs_weight_grad, recomputes}
// CHECK:       mllm.layers "mlp" : mlp x 1 {{\{[^}]*[}]}} {needs_input_grad, needs_weight_grad}
// CHECK:       mllm.layers "embed" : token_embedding x 1 {{\{[^}]*[}]}} {needs_weight_grad, recomputes}
// CHECK:       mllm.layers "blocks" : transformer_block x 16 {{\{[^}]*[}]}} {needs_input_grad, needs_weight_grad, recomputes}
// CHECK:       mllm.layers "final_norm" : norm x 1 {{\{[^}]*[}]}} {needs_input_grad, needs_weight_grad, recomputes}
// CHECK:       mllm.layers "lm_head" : lm_head x 1 {{\{[^}]*[}]}} {needs_input_grad, needs_weight_grad, recomputes}
mllm.model @train_all {
  mllm.encoder @vision : "siglip_so400m" modality image width 1152 recompute full {
    mllm.layers "patch_embed" : patch_embedding x 1 {bias, channels = 3 : i64, hidden = 1152 : i64, patch = 14 : i64, positions = 729 : i64}
    mllm.layers "blocks" : transformer_block x 27 {bias, ffn = 4304 : i64, head_dim = 72 : i64, heads = 16 : i64, hidden = 1152 : i64, kv_heads = 16 : i64, layer_norm, qkv_bias}
    mllm.layers "post_norm" : norm x 1 {hidden = 1152 : i64, layer_norm}
  }
  mllm.projector @vision_projector mlp @vision -> @llm merge 1 {
    mllm.layers "mlp" : mlp x 1 {hidden = 2048 : i64, in = 1152 : i64, out = 2048 : i64}
  }
  mllm.llm @llm : "llama3_2_1b" width 2048 recompute full {
    mllm.layers "embed" : token_embedding x 1 {hidden = 2048 : i64, vocab = 128256 : i64}
    mllm.layers "blocks" : transformer_block x 16 {ffn = 8192 : i64, gated, head_dim = 64 : i64, heads = 32 : i64, hidden = 2048 : i64, kv_heads = 8 : i64}
    mllm.layers "final_norm" : norm x 1 {hidden = 2048 : i64}
    mllm.layers "lm_head" : lm_head x 1 {hidden = 2048 : i64, tied, vocab = 128256 : i64}
  }
}

// -----

// (frozen, train, train): the encoder is upstream of every trainable layer:
// no backward, no recompute. The projector is the first trainable layer of
// its path: weight gradients only.
// CHECK-LABEL: mllm.model @frozen_encoder
// CHECK:       mllm.layers "patch_embed" : patch_embedding x 1 {{\{[^}]*[}]$}}
// CHECK:       mllm.layers "blocks" : transformer_block x 27 {{\{[^}]*[}]$}}
// CHECK:       mllm.layers "post_norm" : norm x 1 {{\{[^}]*[}]$}}
// CHECK:       mllm.layers "mlp" : mlp x 1 {{\{[^}]*[}]}} {needs_weight_grad}
// CHECK:       mllm.layers "embed" : token_embedding x 1 {{\{[^}]*[}]}} {needs_weight_grad, recomputes}
// CHECK:       mllm.layers "blocks" : transformer_block x 16 {{\{[^}]*[}]}} {needs_input_grad, needs_weight_grad, recomputes}
// CHECK:       mllm.layers "final_norm" : norm x 1 {{\{[^}]*[}]}} {needs_input_grad, needs_weight_grad, recomputes}
// CHECK:       mllm.layers "lm_head" : lm_head x 1 {{\{[^}]*[}]}} {needs_input_grad, needs_weight_grad, recomputes}
mllm.model @frozen_encoder {
  mllm.encoder @vision : "siglip_so400m" modality image width 1152 frozen recompute full {
    mllm.layers "patch_embed" : patch_embedding x 1 {bias, channels = 3 : i64, hidden = 1152 : i64, patch = 14 : i64, positions = 729 : i64}
    mllm.layers "blocks" : transformer_block x 27 {bias, ffn = 4304 : i64, head_dim = 72 : i64, heads = 16 : i64, hidden = 1152 : i64, kv_heads = 16 : i64, layer_norm, qkv_bias}
    mllm.layers "post_norm" : norm x 1 {hidden = 1152 : i64, layer_norm}
  }
  mllm.projector @vision_projector mlp @vision -> @llm merge 1 {
    mllm.layers "mlp" : mlp x 1 {hidden = 2048 : i64, in = 1152 : i64, out = 2048 : i64}
  }
  mllm.llm @llm : "llama3_2_1b" width 2048 recompute full {
    mllm.layers "embed" : token_embedding x 1 {hidden = 2048 : i64, vocab = 128256 : i64}
    mllm.layers "blocks" : transformer_block x 16 {ffn = 8192 : i64, gated, head_dim = 64 : i64, heads = 32 : i64, hidden = 2048 : i64, kv_heads = 8 : i64}
    mllm.layers "final_norm" : norm x 1 {hidden = 2048 : i64}
    mllm.layers "lm_head" : lm_head x 1 {hidden = 2048 : i64, tied, vocab = 128256 : i64}
  }
}

// -----

// (train, train, frozen): the frozen LLM still passes input gradients back
// to the projector and encoder (and recomputes for them); its token
// embedding is a source of its own and runs no backward.
// CHECK-LABEL: mllm.model @frozen_llm
// CHECK:       mllm.layers "patch_embed" : patch_embedding x 1 {{\{[^}]*[}]}} {needs_weight_grad, recomputes}
// CHECK:       mllm.layers "blocks" : transformer_block x 27 {{\{[^}]*[}]}} {needs_input_grad, needs_weight_grad, recomputes}
// CHECK:       mllm.layers "post_norm" : norm x 1 {{\{[^}]*[}]}} {needs_input_grad, needs_weight_grad, recomputes}
// CHECK:       mllm.layers "mlp" : mlp x 1 {{\{[^}]*[}]}} {needs_input_grad, needs_weight_grad}
// CHECK:       mllm.layers "embed" : token_embedding x 1 {{\{[^}]*[}]$}}
// CHECK:       mllm.layers "blocks" : transformer_block x 16 {{\{[^}]*[}]}} {needs_input_grad, recomputes}
// CHECK:       mllm.layers "final_norm" : norm x 1 {{\{[^}]*[}]}} {needs_input_grad, recomputes}
// CHECK:       mllm.layers "lm_head" : lm_head x 1 {{\{[^}]*[}]}} {needs_input_grad, recomputes}
mllm.model @frozen_llm {
  mllm.encoder @vision : "siglip_so400m" modality image width 1152 recompute full {
    mllm.layers "patch_embed" : patch_embedding x 1 {bias, channels = 3 : i64, hidden = 1152 : i64, patch = 14 : i64, positions = 729 : i64}
    mllm.layers "blocks" : transformer_block x 27 {bias, ffn = 4304 : i64, head_dim = 72 : i64, heads = 16 : i64, hidden = 1152 : i64, kv_heads = 16 : i64, layer_norm, qkv_bias}
    mllm.layers "post_norm" : norm x 1 {hidden = 1152 : i64, layer_norm}
  }
  mllm.projector @vision_projector mlp @vision -> @llm merge 1 {
    mllm.layers "mlp" : mlp x 1 {hidden = 2048 : i64, in = 1152 : i64, out = 2048 : i64}
  }
  mllm.llm @llm : "llama3_2_1b" width 2048 frozen recompute full {
    mllm.layers "embed" : token_embedding x 1 {hidden = 2048 : i64, vocab = 128256 : i64}
    mllm.layers "blocks" : transformer_block x 16 {ffn = 8192 : i64, gated, head_dim = 64 : i64, heads = 32 : i64, hidden = 2048 : i64, kv_heads = 8 : i64}
    mllm.layers "final_norm" : norm x 1 {hidden = 2048 : i64}
    mllm.layers "lm_head" : lm_head x 1 {hidden = 2048 : i64, tied, vocab = 128256 : i64}
  }
}

// -----

// (frozen, train, frozen), the usual recipe: a frozen encoder pays nothing,
// the projector computes weight gradients, the frozen LLM input gradients.
// CHECK-LABEL: mllm.model @projector_only
// CHECK:       mllm.layers "patch_embed" : patch_embedding x 1 {{\{[^}]*[}]$}}
// CHECK:       mllm.layers "blocks" : transformer_block x 27 {{\{[^}]*[}]$}}
// CHECK:       mllm.layers "post_norm" : norm x 1 {{\{[^}]*[}]$}}
// CHECK:       mllm.layers "mlp" : mlp x 1 {{\{[^}]*[}]}} {needs_weight_grad}
// CHECK:       mllm.layers "embed" : token_embedding x 1 {{\{[^}]*[}]$}}
// CHECK:       mllm.layers "blocks" : transformer_block x 16 {{\{[^}]*[}]}} {needs_input_grad, recomputes}
// CHECK:       mllm.layers "final_norm" : norm x 1 {{\{[^}]*[}]}} {needs_input_grad, recomputes}
// CHECK:       mllm.layers "lm_head" : lm_head x 1 {{\{[^}]*[}]}} {needs_input_grad, recomputes}
mllm.model @projector_only {
  mllm.encoder @vision : "siglip_so400m" modality image width 1152 frozen recompute full {
    mllm.layers "patch_embed" : patch_embedding x 1 {bias, channels = 3 : i64, hidden = 1152 : i64, patch = 14 : i64, positions = 729 : i64}
    mllm.layers "blocks" : transformer_block x 27 {bias, ffn = 4304 : i64, head_dim = 72 : i64, heads = 16 : i64, hidden = 1152 : i64, kv_heads = 16 : i64, layer_norm, qkv_bias}
    mllm.layers "post_norm" : norm x 1 {hidden = 1152 : i64, layer_norm}
  }
  mllm.projector @vision_projector mlp @vision -> @llm merge 1 {
    mllm.layers "mlp" : mlp x 1 {hidden = 2048 : i64, in = 1152 : i64, out = 2048 : i64}
  }
  mllm.llm @llm : "llama3_2_1b" width 2048 frozen recompute full {
    mllm.layers "embed" : token_embedding x 1 {hidden = 2048 : i64, vocab = 128256 : i64}
    mllm.layers "blocks" : transformer_block x 16 {ffn = 8192 : i64, gated, head_dim = 64 : i64, heads = 32 : i64, hidden = 2048 : i64, kv_heads = 8 : i64}
    mllm.layers "final_norm" : norm x 1 {hidden = 2048 : i64}
    mllm.layers "lm_head" : lm_head x 1 {hidden = 2048 : i64, tied, vocab = 128256 : i64}
  }
}

// -----

// Everything frozen: no layer runs a backward, nothing recomputes.
// CHECK-LABEL: mllm.model @all_frozen
// CHECK:       mllm.layers "patch_embed" : patch_embedding x 1 {{\{[^}]*[}]$}}
// CHECK:       mllm.layers "blocks" : transformer_block x 27 {{\{[^}]*[}]$}}
// CHECK:       mllm.layers "post_norm" : norm x 1 {{\{[^}]*[}]$}}
// CHECK:       mllm.layers "mlp" : mlp x 1 {{\{[^}]*[}]$}}
// CHECK:       mllm.layers "embed" : token_embedding x 1 {{\{[^}]*[}]$}}
// CHECK:       mllm.layers "blocks" : transformer_block x 16 {{\{[^}]*[}]$}}
// CHECK:       mllm.layers "final_norm" : norm x 1 {{\{[^}]*[}]$}}
// CHECK:       mllm.layers "lm_head" : lm_head x 1 {{\{[^}]*[}]$}}
mllm.model @all_frozen {
  mllm.encoder @vision : "siglip_so400m" modality image width 1152 frozen recompute full {
    mllm.layers "patch_embed" : patch_embedding x 1 {bias, channels = 3 : i64, hidden = 1152 : i64, patch = 14 : i64, positions = 729 : i64}
    mllm.layers "blocks" : transformer_block x 27 {bias, ffn = 4304 : i64, head_dim = 72 : i64, heads = 16 : i64, hidden = 1152 : i64, kv_heads = 16 : i64, layer_norm, qkv_bias}
    mllm.layers "post_norm" : norm x 1 {hidden = 1152 : i64, layer_norm}
  }
  mllm.projector @vision_projector mlp @vision -> @llm merge 1 frozen {
    mllm.layers "mlp" : mlp x 1 {hidden = 2048 : i64, in = 1152 : i64, out = 2048 : i64}
  }
  mllm.llm @llm : "llama3_2_1b" width 2048 frozen recompute full {
    mllm.layers "embed" : token_embedding x 1 {hidden = 2048 : i64, vocab = 128256 : i64}
    mllm.layers "blocks" : transformer_block x 16 {ffn = 8192 : i64, gated, head_dim = 64 : i64, heads = 32 : i64, hidden = 2048 : i64, kv_heads = 8 : i64}
    mllm.layers "final_norm" : norm x 1 {hidden = 2048 : i64}
    mllm.layers "lm_head" : lm_head x 1 {hidden = 2048 : i64, tied, vocab = 128256 : i64}
  }
}

// -----

// A trainable encoder without an embedding group: the first layer of its
// "blocks" group is the first trainable layer of the path and needs no
// input gradient, the other three do.
// CHECK-LABEL: mllm.model @first_trainable_in_group
// CHECK:       mllm.layers "blocks" : transformer_block x 4 {{\{[^}]*[}]}} {needs_input_grad_after_first, needs_weight_grad, recomputes}
// CHECK:       mllm.layers "linear" : linear x 1 {{\{[^}]*[}]}} {needs_input_grad}
// CHECK:       mllm.layers "embed" : token_embedding x 1 {{\{[^}]*[}]$}}
// CHECK:       mllm.layers "blocks" : transformer_block x 2 {{\{[^}]*[}]}} {needs_input_grad, recomputes}
mllm.model @first_trainable_in_group {
  mllm.encoder @enc : "blocks_only" modality image width 64 recompute full {
    mllm.layers "blocks" : transformer_block x 4 {ffn = 256 : i64, head_dim = 16 : i64, heads = 4 : i64, hidden = 64 : i64, kv_heads = 4 : i64}
  }
  mllm.projector @enc_projector linear @enc -> @llm merge 1 frozen {
    mllm.layers "linear" : linear x 1 {in = 64 : i64, out = 128 : i64}
  }
  mllm.llm @llm : "lm" width 128 frozen recompute full {
    mllm.layers "embed" : token_embedding x 1 {hidden = 128 : i64, vocab = 1000 : i64}
    mllm.layers "blocks" : transformer_block x 2 {ffn = 512 : i64, head_dim = 32 : i64, heads = 4 : i64, hidden = 128 : i64, kv_heads = 2 : i64}
  }
}
