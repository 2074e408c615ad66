#!/usr/bin/env bash
# End-to-end training on one GPU: tokens/s and MFU of mllm-run
# --backend=cuda (the device executor, docs/cuda.md §9) on a small
# Llama-shaped model. MFU is the plan's model FLOPs per iteration (the cost
# model's, `flops_per_iteration` in the plan file) over the median step time
# after the first, divided by the GPU's peak (the plan's `peak_flops`: pick
# the profile with GPU=). Without a GPU it prints why and exits 0.
#
# VISION=1 adds a frozen ViT-B/16-shaped encoder (224 x 224 images, 196
# tokens each, one per sequence before the text) with a trainable MLP
# projector: the paper's recipe. Its plan places the encoder on a GPU of
# its own; the device executor runs the whole replica on one GPU, which is
# what the MFU is measured against.
#
# PP=N runs the plan with the LLM in N pipeline stages (and, with VISION=1,
# the encoder on a stage of its own) under mpirun, one GPU per rank
# (DeviceRankRunner over NCCL); the MFU is then over all of their peaks.
# TP=N splits each LLM stage in N tensor-parallel shards, one GPU each
# (HEADS, KV, FFN and VOCAB must divide by N); CP=N its sequences in N
# context-parallel shares. KERNEL=registers runs the register-tile
# attention kernels (mllm-run --attention-kernel, docs/cuda.md §2).
#
#   bench/gpu/e2e.sh                      # defaults below, 10 steps
#   LAYERS=24 HIDDEN=2048 HEADS=16 SEQ=4096 GPU=h200 bench/gpu/e2e.sh
#   VISION=1 bench/gpu/e2e.sh
#   PP=2 VISION=1 bench/gpu/e2e.sh        # 3 GPUs
#   TP=2 bench/gpu/e2e.sh                 # 2 GPUs
#   PP=2 TP=4 bench/gpu/e2e.sh            # 8 GPUs
#   CP=2 SEQ=8192 bench/gpu/e2e.sh        # 2 GPUs
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
source "$root/bench/gpu/env.sh"
LAYERS=${LAYERS:-12} HIDDEN=${HIDDEN:-768} HEADS=${HEADS:-12}
KV=${KV:-4} FFN=${FFN:-2048} VOCAB=${VOCAB:-32000} SEQ=${SEQ:-2048}
MBS=${MBS:-4} MICRO=${MICRO:-4} STEPS=${STEPS:-10} GPU=${GPU:-h100_sxm}
VISION=${VISION:-0} PP=${PP:-0} TP=${TP:-1} CP=${CP:-1}
KERNEL=${KERNEL:-staged}
gpu_bin mllmc mllm-run
gpu_python yaml
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
encoder="" media="" gpus=1 parallel="" ranks=1
if [[ $VISION == 1 ]]; then
  encoder="encoder vision : bench_vit { frozen = true; projector mlp { hidden = $HIDDEN; } }"
  media="vision { image = 224; placement = prepend; }"
  gpus=2
fi
if (( PP > 0 || TP > 1 || CP > 1 )); then
  vision_stage=""
  if [[ $VISION == 1 ]]; then vision_stage="vision { pp = 1; }"; fi
  parallel="parallel { llm { pp = $((PP > 0 ? PP : 1)); tp = $TP; cp = $CP; } $vision_stage }"
  gpus=$(((PP > 0 ? PP : 1) * TP * CP + VISION))
  ranks=$gpus
fi
cat > "$tmp/e2e.mllm" <<SPEC
import hardware;
instance bench_llm : decoder {
  layers = $LAYERS; hidden = $HIDDEN; ffn = $FFN; heads = $HEADS;
  kv_heads = $KV; vocab = $VOCAB; max_positions = $((SEQ + 256)); norm = rmsnorm;
  activation = swiglu; position = rope;
}
instance bench_vit : vision_encoder {
  layers = 12; hidden = 768; ffn = 3072; heads = 12; patch = 16; image = 224;
}
model e2e { $encoder llm : bench_llm { } }
data { text_tokens = $SEQ; microbatch_size = $MBS; microbatches = $MICRO; $media }
cluster { nodes = 1; gpus_per_node = $gpus; gpu = $GPU; }
$parallel
train { steps = $STEPS; optimizer = adamw; lr = 1e-4; precision = bf16; }
SPEC
"$bin/mllmc" "$tmp/e2e.mllm" --emit=plan -o "$tmp/plan.yaml"
launch=()
if (( ranks > 1 )); then
  have=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
  if (( have < ranks )); then
    echo "PP=$PP TP=$TP CP=$CP needs $ranks GPUs (one per rank); $have here"
    exit 0
  fi
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  launch=(mpirun --timeout 1800 -np "$ranks")
fi
if ! "${launch[@]}" "$bin/mllm-run" "$tmp/plan.yaml" --backend=cuda \
    --attention-kernel="$KERNEL" --steps "$STEPS" --json > "$tmp/run.out" \
    2> "$tmp/run.err"; then
  if grep -q "no CUDA device" "$tmp/run.err"; then
    grep -o "no CUDA device.*" "$tmp/run.err" | head -1
    exit 0
  fi
  cat "$tmp/run.err" >&2
  exit 1
fi
"$python" - "$tmp/plan.yaml" "$tmp/run.out" "$ranks" <<'PY'
import json, statistics, sys, yaml
plan = yaml.safe_load(open(sys.argv[1]))
ranks = int(sys.argv[3])
sched = plan["schedule"]
ms = [json.loads(l)["ms"] for l in open(sys.argv[2])
      if l.startswith("{") and '"event":"step"' in l]
step = statistics.median(ms[1:] or ms) / 1e3
tokens = sched["tokens_per_iteration"]
mfu = sched["flops_per_iteration"] / step / (sched["peak_flops"] * ranks)
print("| GPUs | tokens/iteration | step ms (median) | tokens/s | model TFLOP/s | MFU |")
print("|---|---|---|---|---|---|")
print("| %d | %d | %.1f | %.0f | %.1f | %.1f%% |" % (
    ranks, tokens, step * 1e3, tokens / step,
    sched["flops_per_iteration"] / step / 1e12, 100 * mfu))
PY
