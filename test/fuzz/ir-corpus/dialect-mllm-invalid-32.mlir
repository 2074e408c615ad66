mllm.train steps 1 adamw lr 1.0e-4 weight_decay -0.5 precision bf16 seed 0
