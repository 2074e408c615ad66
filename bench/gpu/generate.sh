#!/usr/bin/env bash
# Greedy generation on GPUs (mllm-run --backend=cuda --generate, docs/cuda.md
# §9 "Generation"): a VLM of a Llama-shaped decoder and a small frozen ViT
# (64 x 64 images, 64 tokens each, before the text), from its initial
# weights, with the key cache and again with --no-kv-cache. Prints, per run,
# the rounds (one token of one sample each), the seconds of the generation
# (mllm-run's generate_work: the prompts read, the encoders and the LLM run;
# the process's start and the weights' initialisation excluded; the GPU's
# first-use costs, module loading and cuBLASLt's set-up, fall in the first
# round), rounds per second and the LLM's rows. Without a GPU it prints
# why and exits 0.
#
# PP=N runs the plan with the LLM in N pipeline stages and the encoder on a
# stage of its own under mpirun, one GPU per rank (N + 1 GPUs; a sample per
# microbatch at once). TP=N splits each LLM stage in N shards. RUN=path
# runs another mllm-run (the tests' host twin, build/bin/mllm-run-twin,
# runs it on the CPU: the figures then say nothing of a GPU).
#
#   bench/gpu/generate.sh                        # 12 x 768, 2048 tokens, 8 prompts x 64 tokens
#   SEQ=4096 TOKENS=256 bench/gpu/generate.sh
#   PP=2 bench/gpu/generate.sh                   # 3 GPUs
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
source "$root/bench/gpu/env.sh"
LAYERS=${LAYERS:-12} HIDDEN=${HIDDEN:-768} HEADS=${HEADS:-12}
KV=${KV:-4} FFN=${FFN:-2048} VOCAB=${VOCAB:-32000} SEQ=${SEQ:-2048}
PROMPTS=${PROMPTS:-8} TOKENS=${TOKENS:-64} GPU=${GPU:-h100_sxm}
PP=${PP:-0} TP=${TP:-1}
gpu_bin mllmc mllm-run
gpu_python json
RUN=${RUN:-$bin/mllm-run}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
parallel="" ranks=1 micro=1
if (( PP > 0 || TP > 1 )); then
  parallel="parallel { vision { pp = 1; } llm { pp = $((PP > 0 ? PP : 1)); tp = $TP; } }"
  ranks=$(((PP > 0 ? PP : 1) * TP + 1))
  micro=$((PP > 0 ? PP : 1))
fi
cat > "$tmp/generate.mllm" <<SPEC
import hardware;
instance bench_llm : decoder {
  layers = $LAYERS; hidden = $HIDDEN; ffn = $FFN; heads = $HEADS;
  kv_heads = $KV; vocab = $VOCAB; max_positions = $((SEQ + 128));
  norm = rmsnorm; activation = swiglu; position = rope;
}
instance bench_vit : vision_encoder {
  layers = 4; hidden = 768; ffn = 3072; heads = 12; patch = 8; image = 64;
}
model generate {
  encoder vision : bench_vit { frozen = true; projector mlp { hidden = $HIDDEN; } }
  llm : bench_llm { }
}
data {
  text_tokens = $SEQ; microbatch_size = 1; microbatches = $micro;
  vision { image = 64; placement = prepend; }
}
cluster { nodes = 1; gpus_per_node = $((ranks > 1 ? ranks : 2)); gpu = $GPU; }
$parallel
train { steps = 1; optimizer = adamw; lr = 1e-4; precision = bf16; }
SPEC
"$bin/mllmc" "$tmp/generate.mllm" --emit=plan -o "$tmp/plan.yaml"
"$python" "$root/examples/data/make_dataset.py" "$tmp/d" --samples 1 \
  --eval "$PROMPTS" --prompts --image 64 > /dev/null
launch=()
if (( ranks > 1 )); then
  if [[ $RUN != *twin* ]]; then
    have=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
    if (( have < ranks )); then
      echo "PP=$PP TP=$TP needs $ranks GPUs (one per rank); $have here"
      exit 0
    fi
  fi
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  export OMPI_MCA_rmaps_base_oversubscribe=1
  launch=(mpirun --timeout 3600 -np "$ranks")
fi
rows=()
for cache in "" --no-kv-cache; do
  if ! "${launch[@]}" "$RUN" "$tmp/plan.yaml" --backend=cuda \
      --generate "$tmp/d/prompts.jsonl" --max-tokens "$TOKENS" --json \
      $cache > "$tmp/run.out" 2> "$tmp/run.err"; then
    if grep -q "no CUDA device" "$tmp/run.err"; then
      grep -o "no CUDA device.*" "$tmp/run.err" | head -1
      exit 0
    fi
    cat "$tmp/run.err" >&2
    exit 1
  fi
  rows+=("$("$python" - "$tmp/run.out" "${cache:-key cache}" "$ranks" <<'PY'
import json, sys
w = [json.loads(l) for l in open(sys.argv[1])
     if l.startswith("{") and '"event":"generate_work"' in l][0]
print("| %s | %s | %d | %.2f | %.1f | %d |" % (
    sys.argv[2], sys.argv[3], w["rounds"], w["seconds"], w["rounds_per_s"],
    w["llm_rows"]))
PY
)")
done
echo "| run | ranks | rounds | seconds | rounds/s | LLM rows |"
echo "|---|---|---|---|---|---|"
printf "%s\n" "${rows[@]}"
