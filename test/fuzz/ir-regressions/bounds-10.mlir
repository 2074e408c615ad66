mllm.model @m {
  mllm.llm @llm : "d" width 16 recompute none {
    mllm.layers "embed" : token_embedding x 1 {vocab = 100000000000000000000000 : i128, hidden = 16}
  }
}
