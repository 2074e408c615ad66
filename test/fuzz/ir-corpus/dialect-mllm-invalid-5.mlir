mllm.model @m {
  mllm.llm @llm : "d" width 16 recompute none {
  }
}
