mllm.model @m {
  mllm.llm @llm : "d" width 16 recompute none {
    mllm.layers "embed" : token_embedding x 1 {vocab = 10, hidden = 16}
  }
  mllm.train steps 1 adamw lr 1.0e-4 weight_decay 0.0 precision bf16 seed 0
}
