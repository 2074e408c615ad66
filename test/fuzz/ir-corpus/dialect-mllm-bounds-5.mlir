mllm.data text 256 packing 1 seq_len 256 microbatch 1 x 4 mask causal {
  mllm.input @vision tokens 1099511627776 x 1024 prepend mask bidirectional
}
