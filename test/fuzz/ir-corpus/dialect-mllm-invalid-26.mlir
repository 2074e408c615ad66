mllm.parallel dp 1 encoders_parallel partition uniform cp_balance lpt {
  mllm.train steps 1 adamw lr 1.0e-4 weight_decay 0.0 precision bf16 seed 0
}
