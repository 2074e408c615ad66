mllm.parallel dp 1 encoders_parallel partition uniform cp_balance lpt {
  mllm.module_parallel @llm tp 1 pp 1 cp 1
  mllm.module_parallel @llm tp 2 pp 1 cp 1
}
