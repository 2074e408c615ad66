mllm.train steps 1 adamw lr 0.0 weight_decay 0.0 precision bf16 seed 0
