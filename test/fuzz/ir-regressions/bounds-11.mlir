mllm.model @m {
  mllm.llm @llm : "d" width 2097152 recompute none {
    mllm.layers "embed" : token_embedding x 1 {vocab = 10, hidden = 16}
  }
}
