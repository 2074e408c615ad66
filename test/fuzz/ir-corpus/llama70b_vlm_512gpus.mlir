module {
  mllm.model @internvl_70b {
    mllm.encoder @vision : "internvit_6b" modality image width 3200 recompute full {
      mllm.layers "patch_embed" : patch_embedding x 1 {bias, channels = 3 : i64, class_token, hidden = 3200 : i64, image_height = 448 : i64, image_width = 448 : i64, patch = 14 : i64, position = "learned", positions = 1025 : i64} {needs_weight_grad, recomputes}
      mllm.layers "blocks" : transformer_block x 45 {activation = "gelu", bias, ffn = 12800 : i64, head_dim = 128 : i64, heads = 25 : i64, hidden = 3200 : i64, kv_heads = 25 : i64} {needs_input_grad, needs_weight_grad, recomputes}
      mllm.layers "post_norm" : norm x 1 {hidden = 3200 : i64} {needs_input_grad, needs_weight_grad, recomputes}
    }
    mllm.projector @vision_projector mlp @vision -> @llm merge 4 {
      mllm.layers "mlp" : mlp x 1 {activation = "gelu", hidden = 8192 : i64, in = 12800 : i64, out = 8192 : i64} {needs_input_grad, needs_weight_grad}
    }
    mllm.llm @llm : "llama3_1_70b" width 8192 recompute full {
      mllm.layers "embed" : token_embedding x 1 {hidden = 8192 : i64, vocab = 128256 : i64} {needs_weight_grad, recomputes}
      mllm.layers "blocks" : transformer_block x 80 {activation = "swiglu", ffn = 28672 : i64, gated, head_dim = 128 : i64, heads = 64 : i64, hidden = 8192 : i64, kv_heads = 8 : i64, position = "rope", rope_theta = 5.000000e+05 : f64} {needs_input_grad, needs_weight_grad, recomputes}
      mllm.layers "final_norm" : norm x 1 {hidden = 8192 : i64} {needs_input_grad, needs_weight_grad, recomputes}
      mllm.layers "lm_head" : lm_head x 1 {hidden = 8192 : i64, vocab = 128256 : i64} {needs_input_grad, needs_weight_grad, recomputes}
    }
  }
  mllm.data text 16384 packing 1 seq_len 17920 microbatch 1 x 28 mask causal {
    mllm.input @vision tokens 1536 x 1 prepend mask bidirectional
  }
  mllm.cluster 64 x 8 "h100_sxm" {inter_node_bandwidth = 4.000000e+11 : f64, intra_node_bandwidth = 4.500000e+11 : f64, memory = 80000000000 : i64, memory_bandwidth = 3.350000e+12 : f64, peak_flops = 9.890000e+14 : f64}
  mllm.parallel dp 4 encoders_parallel partition explicit cp_balance lpt {
    mllm.module_parallel @vision tp 1 pp 16 cp 1 stages [2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 2]
    mllm.module_parallel @llm tp 8 pp 7 cp 2 stages [10, 12, 12, 12, 12, 12, 10]
  }
  mllm.cp_assignment @llm cp 2 lpt tokens 17920 tile 128 x 32 ranks [[0:128, 256:384, 512:640, 768:896, 1024:1152, 1280:1408, 1536:1664, 1920:2176, 2432:2688, 2944:3200, 3456:3712, 3968:4224, 4480:4736, 4992:5248, 5504:5760, 6016:6272, 6528:6784, 7040:7296, 7552:7808, 8064:8320, 8576:8832, 9088:9344, 9600:9856, 10112:10368, 10624:10880, 11136:11392, 11648:11904, 12160:12416, 12672:12928, 13184:13440, 13696:13952, 14208:14464, 14720:14976, 15232:15488, 15744:16000, 16256:16512, 16768:17024, 17280:17536, 17792:17920], [128:256, 384:512, 640:768, 896:1024, 1152:1280, 1408:1536, 1664:1920, 2176:2432, 2688:2944, 3200:3456, 3712:3968, 4224:4480, 4736:4992, 5248:5504, 5760:6016, 6272:6528, 6784:7040, 7296:7552, 7808:8064, 8320:8576, 8832:9088, 9344:9600, 9856:10112, 10368:10624, 10880:11136, 11392:11648, 11904:12160, 12416:12672, 12928:13184, 13440:13696, 13952:14208, 14464:14720, 14976:15232, 15488:15744, 16000:16256, 16512:16768, 17024:17280, 17536:17792]] workload [19872, 19872] imbalance 1.000000e+00
  mllm.train steps 2000 adamw lr 2.000000e-05 weight_decay 5.000000e-02 precision bf16 seed 42
  mllm.pipeline explicit encoders_parallel microbatches 28 gpus 128 bottleneck 249.881 ms iteration 9161.430 ms {
    mllm.stage @vision_s0 part @vision layers [0, 2) with ["patch_embed"] fwd 8.108 ms bwd_w 6.154 ms bwd_d 10.015 ms recompute 8.108 ms memory 6196 MiB = weights 479 + grads 958 + optimizer 2873 + activations 82 x 23 ranks [0, 4) strides dp 1 cp 1 tp 1
    mllm.stage @vision_s1 part @vision layers [2, 5) fwd 12.092 ms bwd_w 9.160 ms bwd_d 15.023 ms recompute 12.092 ms memory 8817 MiB = weights 704 + grads 1407 + optimizer 4220 + activations 113 x 22 ranks [4, 8) strides dp 1 cp 1 tp 1
    mllm.stage @vision_s2 part @vision layers [5, 8) fwd 12.092 ms bwd_w 9.160 ms bwd_d 15.023 ms recompute 12.092 ms memory 8704 MiB = weights 704 + grads 1407 + optimizer 4220 + activations 113 x 21 ranks [8, 12) strides dp 1 cp 1 tp 1
    mllm.stage @vision_s3 part @vision layers [8, 11) fwd 12.092 ms bwd_w 9.160 ms bwd_d 15.023 ms recompute 12.092 ms memory 8591 MiB = weights 704 + grads 1407 + optimizer 4220 + activations 113 x 20 ranks [12, 16) strides dp 1 cp 1 tp 1
    mllm.stage @vision_s4 part @vision layers [11, 14) fwd 12.092 ms bwd_w 9.160 ms bwd_d 15.023 ms recompute 12.092 ms memory 8478 MiB = weights 704 + grads 1407 + optimizer 4220 + activations 113 x 19 ranks [16, 20) strides dp 1 cp 1 tp 1
    mllm.stage @vision_s5 part @vision layers [14, 17) fwd 12.092 ms bwd_w 9.160 ms bwd_d 15.023 ms recompute 12.092 ms memory 8365 MiB = weights 704 + grads 1407 + optimizer 4220 + activations 113 x 18 ranks [20, 24) strides dp 1 cp 1 tp 1
    mllm.stage @vision_s6 part @vision layers [17, 20) fwd 12.092 ms bwd_w 9.160 ms bwd_d 15.023 ms recompute 12.092 ms memory 8252 MiB = weights 704 + grads 1407 + optimizer 4220 + activations 113 x 17 ranks [24, 28) strides dp 1 cp 1 tp 1
    mllm.stage @vision_s7 part @vision layers [20, 23) fwd 12.092 ms bwd_w 9.160 ms bwd_d 15.023 ms recompute 12.092 ms memory 8139 MiB = weights 704 + grads 1407 + optimizer 4220 + activations 113 x 16 ranks [28, 32) strides dp 1 cp 1 tp 1
    mllm.stage @vision_s8 part @vision layers [23, 26) fwd 12.092 ms bwd_w 9.160 ms bwd_d 15.023 ms recompute 12.092 ms memory 8026 MiB = weights 704 + grads 1407 + optimizer 4220 + activations 113 x 15 ranks [32, 36) strides dp 1 cp 1 tp 1
    mllm.stage @vision_s9 part @vision layers [26, 29) fwd 12.092 ms bwd_w 9.160 ms bwd_d 15.023 ms recompute 12.092 ms memory 7913 MiB = weights 704 + grads 1407 + optimizer 4220 + activations 113 x 14 ranks [36, 40) strides dp 1 cp 1 tp 1
    mllm.stage @vision_s10 part @vision layers [29, 32) fwd 12.092 ms bwd_w 9.160 ms bwd_d 15.023 ms recompute 12.092 ms memory 7800 MiB = weights 704 + grads 1407 + optimizer 4220 + activations 113 x 13 ranks [40, 44) strides dp 1 cp 1 tp 1
    mllm.stage @vision_s11 part @vision layers [32, 35) fwd 12.092 ms bwd_w 9.160 ms bwd_d 15.023 ms recompute 12.092 ms memory 7687 MiB = weights 704 + grads 1407 + optimizer 4220 + activations 113 x 12 ranks [44, 48) strides dp 1 cp 1 tp 1
    mllm.stage @vision_s12 part @vision layers [35, 38) fwd 12.092 ms bwd_w 9.160 ms bwd_d 15.023 ms recompute 12.092 ms memory 7574 MiB = weights 704 + grads 1407 + optimizer 4220 + activations 113 x 11 ranks [48, 52) strides dp 1 cp 1 tp 1
    mllm.stage @vision_s13 part @vision layers [38, 41) fwd 12.092 ms bwd_w 9.160 ms bwd_d 15.023 ms recompute 12.092 ms memory 7461 MiB = weights 704 + grads 1407 + optimizer 4220 + activations 113 x 10 ranks [52, 56) strides dp 1 cp 1 tp 1
    mllm.stage @vision_s14 part @vision layers [41, 43) fwd 8.061 ms bwd_w 6.107 ms bwd_d 10.015 ms recompute 8.061 ms memory 4896 MiB = weights 469 + grads 938 + optimizer 2814 + activations 75 x 9 ranks [56, 60) strides dp 1 cp 1 tp 1
    mllm.stage @vision_s15 part @vision layers [43, 45) with ["post_norm", "vision_projector.mlp"] fwd 9.165 ms bwd_w 7.199 ms bwd_d 11.119 ms recompute 8.096 ms memory 8757 MiB = weights 797 + grads 1594 + optimizer 4782 + activations 198 x 8 ranks [60, 64) strides dp 1 cp 1 tp 1
    mllm.stage @llm_s0 part @llm layers [0, 10) with ["embed"] fwd 52.146 ms bwd_w 38.847 ms bwd_d 65.358 ms recompute 52.146 ms memory 30425 MiB = weights 2291 + grads 4582 + optimizer 13745 + activations 1401 x 7 ranks [64, 128) strides dp 16 cp 8 tp 1
    mllm.stage @llm_s1 part @llm layers [10, 22) fwd 62.470 ms bwd_w 46.511 ms bwd_d 78.430 ms recompute 62.470 ms memory 32117 MiB = weights 2449 + grads 4897 + optimizer 14691 + activations 1680 x 6 ranks [128, 192) strides dp 16 cp 8 tp 1
    mllm.stage @llm_s2 part @llm layers [22, 34) fwd 62.470 ms bwd_w 46.511 ms bwd_d 78.430 ms recompute 62.470 ms memory 30437 MiB = weights 2449 + grads 4897 + optimizer 14691 + activations 1680 x 5 ranks [192, 256) strides dp 16 cp 8 tp 1
    mllm.stage @llm_s3 part @llm layers [34, 46) fwd 62.470 ms bwd_w 46.511 ms bwd_d 78.430 ms recompute 62.470 ms memory 28757 MiB = weights 2449 + grads 4897 + optimizer 14691 + activations 1680 x 4 ranks [256, 320) strides dp 16 cp 8 tp 1
    mllm.stage @llm_s4 part @llm layers [46, 58) fwd 62.470 ms bwd_w 46.511 ms bwd_d 78.430 ms recompute 62.470 ms memory 27077 MiB = weights 2449 + grads 4897 + optimizer 14691 + activations 1680 x 3 ranks [320, 384) strides dp 16 cp 8 tp 1
    mllm.stage @llm_s5 part @llm layers [58, 70) fwd 62.470 ms bwd_w 46.511 ms bwd_d 78.430 ms recompute 62.470 ms memory 25397 MiB = weights 2449 + grads 4897 + optimizer 14691 + activations 1680 x 2 ranks [384, 448) strides dp 16 cp 8 tp 1
    mllm.stage @llm_s6 part @llm layers [70, 80) with ["final_norm", "lm_head"] fwd 56.949 ms bwd_w 43.606 ms bwd_d 70.249 ms recompute 56.949 ms memory 22298 MiB = weights 2291 + grads 4582 + optimizer 13745 + activations 1680 x 1 ranks [448, 512) strides dp 16 cp 8 tp 1
  }
}

