mllm.model @m {
  mllm.encoder @vision : "v" modality image width 8 recompute none {
    mllm.layers "blocks" : transformer_block x 1 {hidden = 8, ffn = 8, heads = 1, kv_heads = 1, head_dim = 8}
  }
  mllm.projector @p1 linear @vision -> @llm merge 1 {
    mllm.layers "proj" : linear x 1 {in = 8, out = 16}
  }
  mllm.projector @p2 linear @vision -> @llm merge 1 {
    mllm.layers "proj" : linear x 1 {in = 8, out = 16}
  }
  mllm.llm @llm : "d" width 16 recompute none {
    mllm.layers "embed" : token_embedding x 1 {vocab = 10, hidden = 16}
  }
}
