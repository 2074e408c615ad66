#!/usr/bin/env bash
# mllm-run vs the same model in PyTorch (Debian's torch 1.13, CPU), same
# batches, same initial weights, same threads: tokens/s per step (median of
# the steps after the first).
#
#   bench/runtime/run.sh [BUILD_DIR] [THREADS]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="${1:-$root/build}"
threads="${2:-1}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
printf "%-22s %7s %14s %14s %8s\n" spec threads "mllm-run tok/s" "torch tok/s" ratio
for spec in "$root/examples/tiny_vlm.mllm" "$root/examples/tiny_audio_lm.mllm" \
            "$root/examples/tiny_three_modality.mllm" "$here/small_vlm.mllm"; do
  name="$(basename "$spec" .mllm)"
  steps=6
  "$build/bin/mllmc" "$spec" --emit=plan -o "$tmp/$name.yaml"
  "$build/bin/mllm-run" "$tmp/$name.yaml" --steps "$steps" --threads "$threads" \
    --json --checkpoint-dir "$tmp/$name" --save-initial \
    --dump-batches "$tmp/$name/batches.safetensors" > "$tmp/$name.jsonl"
  ours=$(grep '"event":"step"' "$tmp/$name.jsonl" | tail -n +2 |
         sed -E 's/.*"tokens_per_s":([0-9.e+]+).*/\1/' | median)
  theirs=$(/usr/bin/python3 "$here/torch_speed.py" "$tmp/$name.yaml" \
             "$tmp/$name" "$steps" "$threads" | tail -n +2 |
           sed -E 's/.* ([0-9]+) tokens\/s/\1/' | median)
  printf "%-22s %7s %14.0f %14.0f %7.2fx\n" "$name" "$threads" "$ours" \
    "$theirs" "$(awk -v a="$ours" -v b="$theirs" 'BEGIN {print a / b}')"
done
