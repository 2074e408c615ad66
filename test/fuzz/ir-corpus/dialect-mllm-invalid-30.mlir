mllm.model @m {
  mllm.llm @llm : "d" width 16 recompute none {
    mllm.layers "embed" : token_embedding x 1 {vocab = 10, hidden = 16}
  }
}
mllm.parallel dp 1 encoders_parallel partition uniform cp_balance lpt {
  mllm.module_parallel @audio tp 1 pp 1 cp 1
}
