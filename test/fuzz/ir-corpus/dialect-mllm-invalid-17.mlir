mllm.data text 16 packing 1 seq_len 16 microbatch 1 x 1 mask causal {
  mllm.train steps 1 adamw lr 1.0e-4 weight_decay 0.0 precision bf16 seed 0
}
