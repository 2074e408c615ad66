mllm.model @m {
  mllm.llm @llm : "d" width 16 recompute none {
    mllm.layers "blocks" : transformer_block x 2 {hidden = 16, ffn = 64, heads = 4, kv_heads = 4, head_dim = 4, activation = 3}
  }
}
