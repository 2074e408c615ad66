mllm.model @m {
  mllm.projector @p linear @llm -> @llm merge 1 {
    mllm.layers "proj" : linear x 1 {in = 16, out = 16}
  }
  mllm.llm @llm : "d" width 16 recompute none {
    mllm.layers "embed" : token_embedding x 1 {vocab = 10, hidden = 16}
  }
}
