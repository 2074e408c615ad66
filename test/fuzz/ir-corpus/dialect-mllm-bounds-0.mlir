mllm.parallel dp 4611686018427387904 encoders_parallel partition frozen_aware cp_balance lpt {
}
