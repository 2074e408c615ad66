#!/usr/bin/env bash
# Parallel runs on this machine (mllm-run under mpirun, one thread per rank):
#  1. scaling: bench/runtime/small_vlm.mllm as one process (1 rank), as its
#     plan's two stages (2 ranks: encoder | LLM), and with dp 2 (4 ranks);
#     tokens/s per step, median of the steps after the first.
#  2. measured vs predicted: per CPU-sized example, the iteration measured
#     under mpirun (median ms/step) next to mllm-sim's with the profile
#     mllm-run --profile-out measured on this machine.
# Ranks beyond the machine's cores share them; the figures say how many.
#
#   bench/runtime/parallel.sh [BUILD_DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="${1:-$root/build}"
bin="$build/bin"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
field() { grep '"event":"step"' "$1" | tail -n +2 | sed -E "s/.*\"$2\":([0-9.e+]+).*/\\1/" | median; }
ranks() { grep rank_program "$1" | tr -cd ',' | wc -c | awk '{print $1 + 1}'; }
echo "machine: $(nproc) cores"

echo
echo "1. scaling, small_vlm, 1 thread per rank"
printf "%-34s %6s %12s\n" run ranks "tokens/s"
"$bin/mllmc" "$here/small_vlm.mllm" --emit=plan -o "$tmp/pp.yaml"
sed -e 's/parallel { /parallel { dp = 2; /' -e 's/gpus_per_node = 2/gpus_per_node = 4/' \
  "$here/small_vlm.mllm" > "$tmp/dp2.mllm"
"$bin/mllmc" "$tmp/dp2.mllm" --emit=plan -o "$tmp/dp2.yaml"
"$bin/mllm-run" "$tmp/pp.yaml" --steps 6 --threads 1 --json > "$tmp/one.jsonl"
printf "%-34s %6s %12.0f\n" "one process (2 stages)" 1 "$(field "$tmp/one.jsonl" tokens_per_s)"
mpirun -np 2 "$bin/mllm-run" "$tmp/pp.yaml" --steps 6 --threads 1 --json > "$tmp/pp.jsonl"
printf "%-34s %6s %12.0f\n" "pipeline: encoder | LLM" 2 "$(field "$tmp/pp.jsonl" tokens_per_s)"
"$bin/mllm-run" "$tmp/dp2.yaml" --steps 6 --threads 1 --json > "$tmp/one2.jsonl"
printf "%-34s %6s %12.0f\n" "one process, dp 2 batch" 1 "$(field "$tmp/one2.jsonl" tokens_per_s)"
mpirun -np 4 "$bin/mllm-run" "$tmp/dp2.yaml" --steps 6 --threads 1 --json > "$tmp/dp2.jsonl"
printf "%-34s %6s %12.0f\n" "dp 2 x (encoder | LLM)" 4 "$(field "$tmp/dp2.jsonl" tokens_per_s)"

echo
echo "2. measured iteration vs mllm-sim with the measured profile, 1 thread per rank"
printf "%-24s %6s %12s %12s %8s\n" spec ranks "measured ms" "predicted ms" ratio
for spec in "$here/small_vlm.mllm" "$root/examples/tiny_vlm.mllm" \
            "$root/examples/tiny_audio_lm.mllm" \
            "$root/examples/tiny_three_modality.mllm"; do
  name="$(basename "$spec" .mllm)"
  "$bin/mllmc" "$spec" --emit=plan -o "$tmp/$name.yaml"
  "$bin/mllm-run" "$tmp/$name.yaml" --steps 0 --threads 1 \
    --profile-out "$tmp/$name.prof.yaml" > /dev/null
  predicted=$("$bin/mllm-sim" "$spec" --profile "$tmp/$name.prof.yaml" |
              sed -nE 's/^iteration ([0-9.]+) ms.*/\1/p')
  n=$(ranks "$tmp/$name.yaml")
  mpirun -np "$n" "$bin/mllm-run" "$tmp/$name.yaml" --steps 8 --threads 1 \
    --json > "$tmp/$name.jsonl"
  measured=$(field "$tmp/$name.jsonl" ms)
  printf "%-24s %6s %12.2f %12.2f %7.2fx\n" "$name" "$n" "$measured" \
    "$predicted" "$(awk -v a="$measured" -v b="$predicted" 'BEGIN {print a / b}')"
done
