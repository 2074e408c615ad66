mllm.train steps 4611686018427387904 adamw lr 1.0e-4 weight_decay 0.0 precision bf16 seed 0
