mllm.model @m {
  mllm.encoder @vision : "v" modality image width 8 recompute none {
    mllm.train steps 1 adamw lr 1.0e-4 weight_decay 0.0 precision bf16 seed 0
  }
  mllm.projector @p linear @vision -> @llm merge 1 {
    mllm.layers "proj" : linear x 1 {in = 8, out = 16}
  }
  mllm.llm @llm : "d" width 16 recompute none {
    mllm.layers "embed" : token_embedding x 1 {vocab = 10, hidden = 16}
  }
}
