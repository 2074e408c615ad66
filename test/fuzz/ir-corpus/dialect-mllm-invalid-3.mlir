mllm.model @m {
  mllm.llm @a : "d" width 16 recompute none {
    mllm.layers "embed" : token_embedding x 1 {vocab = 10, hidden = 16}
  }
  mllm.llm @b : "d" width 16 recompute none {
    mllm.layers "embed" : token_embedding x 1 {vocab = 10, hidden = 16}
  }
}
