# Shared spec generators for the bench/paper/ scripts (sourced, not run).
#
# table2_spec VISION AUDIO LLM PARTITION  Cornstarch Table 2 (brief §E.1/E.3):
#   one of the 27 V-A-L synthetic MLLMs (stdlib/synthetic.mllm) on 6 nodes x
#   4 A40, encoders colocated, encoders and LLM frozen, projectors train,
#   recompute = full, 1k text + one 1280x720 image + one 2-min audio, pp =
#   auto everywhere. Reads $DP and $MB (microbatches per replica).
# fig1c_spec ENC_FROZEN LLM_FROZEN PARTITION  Cornstarch Fig. 1c: SigLIP
#   so400m + Llama-3.2-1B on one node of 4 A40, dp 1, 64 microbatches,
#   projector trainable. Reads $IMAGE (default 384).

table2_spec() { # vision audio llm partition
  local vh; vh=$(case $1 in s) echo 1280;; m) echo 2560;; l) echo 3840;; esac)
  cat <<SPEC
import synthetic;
import hardware;
model ${1}${2}${3} {
  recompute = full;
  encoder vision : vision_$1 { frozen = true; projector mlp { merge = 4; hidden = $((4 * vh)); } }
  encoder audio : audio_$2 { frozen = true; projector mlp { } }
  llm : llm_$3 { frozen = true; }
}
data {
  text_tokens = 1k;
  microbatch_size = 4;
  microbatches = $MB;
  vision { image = [1280, 720]; placement = prepend; }
  audio { duration = 2min; placement = at(0.5); }
}
cluster { nodes = 6; gpus_per_node = 4; gpu = a40; }
parallel {
  dp = $DP;
  layout = encoders_colocated;
  partition = $4;
  vision { pp = auto; }
  audio { pp = auto; }
  llm { pp = auto; }
}
train { optimizer = adamw; precision = bf16; }
SPEC
}

fig1c_spec() { # encoder-frozen llm-frozen partition
  cat <<SPEC
import siglip;
import llama;
import hardware;
model siglip_llama1b {
  recompute = full;
  encoder vision : siglip_so400m {
    frozen = $1;
    pooling_head = false;
    projector mlp { frozen = false; hidden = 2048; activation = gelu; }
  }
  llm : llama3_2_1b { frozen = $2; }
}
data {
  text_tokens = 1k;
  microbatch_size = 1;
  microbatches = 64;
  vision { image = ${IMAGE:-384}; placement = prepend; }
}
cluster { nodes = 1; gpus_per_node = 4; gpu = a40; }
parallel { dp = 1; partition = $3; vision { pp = auto; } llm { pp = auto; } }
train { optimizer = adamw; precision = bf16; }
SPEC
}
