mllm.model @m {
  mllm.llm @llm : "d" width 16 recompute none {
    mllm.layers "blocks" : transformer_block x 5000 {hidden = 16, ffn = 16, heads = 1, kv_heads = 1, head_dim = 16}
  }
}
