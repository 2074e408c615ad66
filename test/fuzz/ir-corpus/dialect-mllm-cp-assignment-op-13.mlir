mllm.model @m {
  mllm.llm @lm : "tiny" width 64 recompute none {
    mllm.layers "blocks" : transformer_block x 2 {hidden = 64, ffn = 256, heads = 4, kv_heads = 4, head_dim = 16}
  }
}
mllm.cp_assignment @llm cp 2 lpt tokens 256 tile 128 x 32 ranks [[0:128], [128:256]] workload [4, 8] imbalance 1.3333
