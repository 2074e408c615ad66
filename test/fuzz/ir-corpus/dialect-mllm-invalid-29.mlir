mllm.parallel dp 1 encoders_parallel partition explicit cp_balance lpt {
  mllm.module_parallel @llm tp 1 pp 2 cp 1 stages [8, 0]
}
