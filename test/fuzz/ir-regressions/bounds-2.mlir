mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  mllm.module_parallel @llm tp 1 pp 2 cp 1 stages [4611686018427387904, 4611686018427387904]
}
