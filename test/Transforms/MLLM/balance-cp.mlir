// RUN: mllm-opt %s --split-input-file --mllm-balance-cp --verify-diagnostics | FileCheck %s

// Workloads by hand. Blocks are 128 tokens and key tiles 32, so in a causal
// text sequence block b computes key tiles 0 .. 4b+3: 4(b + 1) tiles. For
// 768 tokens the six blocks weigh [4, 8, 12, 16, 20, 24], 84 in all, mean 42
// over two ranks (every block is a multiple of 4, so 44/40 is optimal).
//
// lpt: 24 -> r0, 20 -> r1, 16 -> r1 (36), 12 -> r0 (36), 8 -> r0 (tie: equal
// block counts, lower id; 44), 4 -> r1 (40).
// CHECK-LABEL: mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt
// CHECK: mllm.cp_assignment @llm cp 2 lpt tokens 768 tile 128 x 32
// CHECK-SAME: ranks {{\[}}[128:384, 640:768], [0:128, 384:640]]
// CHECK-SAME: workload [44, 40] imbalance 1.047600e+00
// CHECK-NEXT: mllm.train
mllm.data text 768 packing 1 seq_len 768 microbatch 1 x 4 mask causal {
}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  mllm.module_parallel @llm tp 1 pp 1 cp 2
}
mllm.train steps 1 adamw lr 1.0e-4 weight_decay 0.0 precision bf16 seed 0

// -----

// zigzag: 2cp = 4 chunks of the 6 blocks, [0,1) [1,3) [3,4) [4,6); rank 0
// gets chunks 0 and 3 (4 + 20 + 24), rank 1 chunks 1 and 2 (8 + 12 + 16).
// CHECK-LABEL: cp_balance zigzag
// CHECK: mllm.cp_assignment @llm cp 2 zigzag tokens 768 tile 128 x 32
// CHECK-SAME: ranks {{\[}}[0:128, 512:768], [128:512]]
// CHECK-SAME: workload [48, 36] imbalance 1.142900e+00
mllm.data text 768 packing 1 seq_len 768 microbatch 1 x 4 mask causal {
}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance zigzag {
  mllm.module_parallel @llm tp 1 pp 1 cp 2
}

// -----

// uniform: blocks 0-2 (4 + 8 + 12) and 3-5 (16 + 20 + 24).
// CHECK-LABEL: cp_balance uniform
// CHECK: mllm.cp_assignment @llm cp 2 uniform tokens 768 tile 128 x 32
// CHECK-SAME: ranks {{\[}}[0:384], [384:768]]
// CHECK-SAME: workload [24, 60] imbalance 1.428600e+00
mllm.data text 768 packing 1 seq_len 768 microbatch 1 x 4 mask causal {
}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance uniform {
  mllm.module_parallel @llm tp 1 pp 1 cp 2
}

// -----

// ilp: 44/40 is optimal, so CBC proves it. (A build without CBC warns and
// uses lpt, which finds the same makespan.)
// CHECK-LABEL: cp_balance ilp
// CHECK: mllm.cp_assignment @llm cp 2 {{ilp optimal|lpt}} tokens 768 tile 128 x 32
// CHECK-SAME: workload [{{44, 40|40, 44}}] imbalance 1.047600e+00
mllm.data text 768 packing 1 seq_len 768 microbatch 1 x 4 mask causal {
}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance ilp {
  mllm.module_parallel @llm tp 1 pp 1 cp 2
}

// -----

// ilp on SigLIP's 729 tokens in the middle of 2100 text tokens: 23 blocks
// over 2 ranks. LPT's split already meets ceil(total / 2) = 517, so the ILP
// proves it optimal at once (it used to spend CBC's whole 5 s limit and
// report no proof: its makespan was continuous with the bound total / 2).
// CHECK-LABEL: cp_balance ilp
// CHECK: mllm.cp_assignment @llm cp 2 {{ilp optimal|lpt}} tokens 2829 tile 128 x 32
// CHECK-SAME: workload [517, 516] imbalance 1.001000e+00
mllm.data text 2100 packing 1 seq_len 2829 microbatch 1 x 4 mask causal {
  mllm.input @vision tokens 729 x 1 at [5.000000e-01] mask bidirectional
}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance ilp {
  mllm.module_parallel @llm tp 1 pp 1 cp 2
}

// -----

// ilp above ilp-max-blocks (512 blocks) falls back to lpt with a warning.
// 65664 causal tokens are 513 blocks.
// CHECK-LABEL: cp_balance ilp
// CHECK: mllm.cp_assignment @llm cp 2 lpt tokens 65664 tile 128 x 32
mllm.data text 65664 packing 1 seq_len 65664 microbatch 1 x 4 mask causal {
}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance ilp {
  // expected-warning-re @below {{the ilp CP balancer {{.*}}; balancing {{.*}}'llm' with lpt}}
  mllm.module_parallel @llm tp 1 pp 1 cp 2
}

// -----

// An image item sees only itself: a prepended 128-token image is one block
// of 4 key tiles; the text blocks see the image and earlier text (8, 12).
// lpt: 12 -> r0, 8 -> r1, 4 -> r1. The attention is even, the tokens are
// not (128 and 256), but no split of three whole blocks does better:
// nothing is said.
// CHECK-LABEL: mllm.parallel
// CHECK: mllm.cp_assignment @llm cp 2 lpt tokens 384 tile 128 x 32
// CHECK-SAME: ranks {{\[}}[256:384], [0:256]]
// CHECK-SAME: workload [12, 12] imbalance 1.000000e+00
mllm.data text 256 packing 1 seq_len 384 microbatch 1 x 4 mask causal {
  mllm.input @vision tokens 128 x 1 prepend mask bidirectional
}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  mllm.module_parallel @llm tp 1 pp 1 cp 2
}

// -----

// 288 tokens (a 16-token image, 256 text, 16 audio tokens): blocks of
// 128, 128 and 32 tokens weigh 4, 8 and 9 key tiles. lpt: 9 -> r0, 8 -> r1,
// 4 -> r1: tiles [9, 12], but tokens [32, 256]. The contiguous split gives
// [128, 160], and the matmuls follow the tokens: said.
// CHECK-LABEL: mllm.parallel
// CHECK: mllm.cp_assignment @llm cp 2 lpt tokens 288 tile 128 x 32
// CHECK-SAME: ranks {{\[}}[256:288], [0:256]]
mllm.data text 256 packing 1 seq_len 288 microbatch 1 x 4 mask causal {
  mllm.input @vision tokens 16 x 1 prepend mask bidirectional
  mllm.input @audio tokens 16 x 1 append mask bidirectional
}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  // expected-warning @below {{cp_balance lpt balances the attention of 'llm' but gives its CP ranks [32, 256] of 288 tokens (3 blocks of 128): the matmuls run at the largest share, 1.78x the mean; with so few blocks, cp_balance = uniform gives at most 160 tokens a rank}}
  mllm.module_parallel @llm tp 1 pp 1 cp 2
}

// -----

// The same blocks (288 causal text tokens weigh 4, 8 and 9 tiles) with the
// LLM's blocks in the module: lpt balances tiles + token_weight x tokens,
// the token weight from the cost model's FLOPs. A textbook block (h = 64,
// plain 4h FFN) spends M = 24 h^2 per token outside attention and A =
// 4 s^2 h in the dense attention of s = 288 tokens, which the cost model
// spreads over the mask's 21 tiles; a step runs the forward (M + A) of
// both blocks, their weight gradients (M) and the second block's input
// gradient (M + 2A; the first needs none): 5 M per token against 4 A, so
// 5/4 x 6 x 64 x 21 / 288^2 = 0.1215 tiles per token. Blocks cost
// 4 + 15.6, 8 + 15.6 and 9 + 3.9: lpt puts 23.6 on r0, 19.6 then 12.9 on
// r1: tokens [128, 160], no warning.
// CHECK-LABEL: mllm.parallel
// CHECK: mllm.cp_assignment @llm cp 2 lpt tokens 288 tile 128 x 32 token_weight 0.121527{{[0-9]*}}
// CHECK-SAME: ranks {{\[}}[128:256], [0:128, 256:288]]
// CHECK-SAME: workload [8, 13]
mllm.model @lm {
  mllm.llm @llm : "tiny" width 64 recompute none {
    mllm.layers "blocks" : transformer_block x 2 {hidden = 64, ffn = 256, heads = 4, kv_heads = 4, head_dim = 16}
  }
}
mllm.data text 288 packing 1 seq_len 288 microbatch 1 x 4 mask causal {
}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  mllm.module_parallel @llm tp 1 pp 1 cp 2
}

// -----

// Packed samples never see each other: each 256-token sample weighs
// [4, 8], so the second sample's blocks weigh 4 and 8, not 12 and 16.
// lpt: 8 -> r0, 8 -> r1, 4 -> r0 (tie, lower id), 4 -> r1.
// CHECK-LABEL: mllm.parallel
// CHECK: mllm.cp_assignment @llm cp 2 lpt tokens 512 tile 128 x 32
// CHECK-SAME: ranks {{\[}}[0:256], [256:512]]
// CHECK-SAME: workload [12, 12] imbalance 1.000000e+00
mllm.data text 256 packing 2 seq_len 512 microbatch 1 x 4 mask causal {
}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  mllm.module_parallel @llm tp 1 pp 1 cp 2
}

// -----

// cp 4 with a short last block: blocks 0-6 weigh 4, 8, ..., 28 and block 7
// (tokens 896-999) sees all 32 key tiles: 144 in all, 36 per rank. Each
// rank's ranges are ascending, adjacent blocks merged.
// CHECK-LABEL: mllm.parallel
// CHECK: mllm.cp_assignment @llm cp 4 lpt tokens 1000 tile 128 x 32
// CHECK-SAME: ranks {{\[}}[0:128, 896:1000], [128:256, 768:896], [256:384, 640:768], [384:640]]
// CHECK-SAME: workload [36, 36, 36, 36] imbalance 1.000000e+00
mllm.data text 1000 packing 1 seq_len 1000 microbatch 1 x 4 mask causal {
}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  mllm.module_parallel @llm tp 1 pp 1 cp 4
}

// -----

// cp 1: nothing to balance, nothing recorded.
// CHECK-LABEL: mllm.parallel
// CHECK-NOT: mllm.cp_assignment
mllm.data text 768 packing 1 seq_len 768 microbatch 1 x 4 mask causal {
}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  mllm.module_parallel @llm tp 1 pp 1 cp 1
}

// -----

// A second run replaces the first assignment of a part.
// CHECK-LABEL: mllm.parallel
// CHECK: mllm.cp_assignment @llm cp 2 lpt tokens 256
// CHECK-NOT: mllm.cp_assignment
mllm.data text 256 packing 1 seq_len 256 microbatch 1 x 4 mask causal {
}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  mllm.module_parallel @llm tp 1 pp 1 cp 2
}
mllm.cp_assignment @llm cp 2 uniform tokens 256 tile 128 x 32 ranks [[0:128], [128:256]] workload [4, 8] imbalance 1.3333

// -----

// Errors: too few tokens for the CP degree.
mllm.data text 200 packing 1 seq_len 200 microbatch 1 x 4 mask causal {
}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  // expected-error @below {{cannot balance the tokens of 'llm' over 2 CP ranks: CP degree 2 is too large for 200 tokens: every rank needs at least one block of 128 tokens (256 tokens)}}
  mllm.module_parallel @llm tp 1 pp 1 cp 2
}

// -----

// Errors: zigzag cuts 5 blocks into 8 chunks, and rank 2's two are empty.
mllm.data text 640 packing 1 seq_len 640 microbatch 1 x 4 mask causal {
}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance zigzag {
  // expected-error @below {{cannot balance the tokens of 'llm' over 4 CP ranks: the zigzag policy left rank 2 of 4 without tokens (5 blocks)}}
  mllm.module_parallel @llm tp 1 pp 1 cp 4
}

// -----

// Errors: context parallelism on an encoder (the front end rejects it too).
mllm.model @vlm {
  mllm.encoder @vision : "vit" modality image width 64 recompute none {
    mllm.layers "blocks" : transformer_block x 2 {hidden = 64, ffn = 256, heads = 4, kv_heads = 4, head_dim = 16}
  }
  mllm.projector @vision_projector linear @vision -> @llm merge 1 {
    mllm.layers "proj" : linear x 1 {in = 64, out = 64}
  }
  mllm.llm @llm : "tiny" width 64 recompute none {
    mllm.layers "blocks" : transformer_block x 2 {hidden = 64, ffn = 256, heads = 4, kv_heads = 4, head_dim = 16}
  }
}
mllm.data text 512 packing 1 seq_len 768 microbatch 1 x 4 mask causal {
  mllm.input @vision tokens 256 x 1 prepend mask bidirectional
}
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  // expected-error @below {{context parallelism applies to the LLM only; remove cp from encoder 'vision' (it has cp 2)}}
  mllm.module_parallel @vision tp 1 pp 1 cp 2
  mllm.module_parallel @llm tp 1 pp 1 cp 1
}

// -----

// Errors: no data layout to balance.
mllm.parallel dp 1 encoders_parallel partition frozen_aware cp_balance lpt {
  // expected-error @below {{balancing the tokens of 'llm' over 2 CP ranks needs an 'mllm.data'}}
  mllm.module_parallel @llm tp 1 pp 1 cp 2
}
