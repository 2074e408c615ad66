mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  mllm.module_parallel @llm tp 1099511627776 pp 1 cp 1
}
