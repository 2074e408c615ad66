mllm.model @vlm {
  mllm.encoder @vision : "siglip_so400m" modality image width 1152 frozen recompute full {
    mllm.layers "patch_embed" : patch_embedding x 1 {channels = 3, hidden = 1152, patch = 14}
    mllm.layers "blocks" : transformer_block x 27 {hidden = 1152, ffn = 4304, heads = 16, kv_heads = 16, head_dim = 72}
  }
  mllm.projector @vision_projector mlp @vision -> @llm merge 1 {
    mllm.layers "mlp" : mlp x 1 {in = 1152, hidden = 2048, out = 2048}
  }
  mllm.llm @llm : "llama3_2_1b" width 2048 frozen recompute none {
    mllm.layers "embed" : token_embedding x 1 {vocab = 128256, hidden = 2048}
    mllm.layers "blocks" : transformer_block x 16 {hidden = 2048, ffn = 8192, heads = 32, kv_heads = 8, head_dim = 64}
  }
}
mllm.data text 1024 packing 1 seq_len 1753 microbatch 1 x 24 mask causal {
  mllm.input @vision tokens 729 x 1 at [0.25] mask bidirectional
}
mllm.cluster 1 x 4 "a40" {peak_flops = 1.497e14, memory = 51539607552, memory_bandwidth = 6.96e11, intra_node_bandwidth = 5.6e10, inter_node_bandwidth = 2.5e10}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  mllm.module_parallel @vision tp 1 pp 1 cp 1
  mllm.module_parallel @llm tp 1 pp 3 cp 1 stages [6, 5, 5]
}
mllm.train steps 10 adamw lr 1.0e-4 weight_decay 0.0 precision bf16 seed 0
