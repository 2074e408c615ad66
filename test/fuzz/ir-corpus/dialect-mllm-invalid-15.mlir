mllm.model @m {
  mllm.llm @llm : "d" width 16 recompute none {
    mllm.layers "norm" : norm x 1 {hidden = 0}
  }
}
