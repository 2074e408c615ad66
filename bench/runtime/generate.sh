#!/usr/bin/env bash
# Greedy generation (mllm-run --generate) on this machine's CPU, one
# thread per rank: bench/runtime/small_vlm.mllm (512-token sequences, 64x64
# images, 4 microbatches a step) in one process and as its plan's two
# stages under mpirun (encoder | LLM: 4 samples at once, one per
# microbatch), from the same initial weights, each with the key cache
# (KeyCache.h) and again without (--no-kv-cache). Prints the generated
# tokens per second of the whole command (start-up included).
#
#   bench/runtime/generate.sh [BUILD_DIR] [PROMPTS] [TOKENS]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="${1:-$root/build}"
prompts="${2:-8}"
tokens="${3:-16}"
bin="$build/bin"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
python="/usr/bin/python3"
[[ -x $python ]] || python=python3
"$python" "$root/examples/data/make_dataset.py" "$tmp/d" --samples 1 \
  --eval "$prompts" --prompts --image 64 > /dev/null
"$bin/mllmc" "$here/small_vlm.mllm" --emit=plan -o "$tmp/pp.yaml"
# Every sample runs --max-tokens: no end id from untrained weights.
run() { # label ranks command...
  local label="$1" ranks="$2"
  shift 2
  local start end
  start=$(date +%s.%N)
  "$@" "$tmp/pp.yaml" --generate "$tmp/d/prompts.jsonl" \
    --max-tokens "$tokens" --threads 1 --json > "$tmp/out.jsonl" 2> /dev/null
  end=$(date +%s.%N)
  local n
  n=$(grep '"event":"generate"' "$tmp/out.jsonl" |
      sed -E 's/.*"tokens":\[([0-9,]*)\].*/\1/' | tr ',' '\n' |
      grep -c . || true)
  printf "%-32s %6s %8s %8.2f %10.1f\n" "$label" "$ranks" "$n" \
    "$(awk -v a="$start" -v b="$end" 'BEGIN {print b - a}')" \
    "$(awk -v a="$start" -v b="$end" -v n="$n" 'BEGIN {print n / (b - a)}')"
}
echo "machine: $(nproc) cores; $prompts prompts, $tokens tokens each"
printf "%-32s %6s %8s %8s %10s\n" run ranks tokens seconds "tokens/s"
run "one process" 1 "$bin/mllm-run"
run "one process, --no-kv-cache" 1 "$bin/mllm-run" --no-kv-cache
run "pipeline: encoder | LLM" 2 mpirun -np 2 "$bin/mllm-run"
run "pipeline, --no-kv-cache" 2 mpirun -np 2 "$bin/mllm-run" --no-kv-cache
