#!/usr/bin/env bash
# One command for the GPU attention figures: builds the bench (configuring
# the build tree if needed) and runs it with any flags given, e.g.
#   bench/gpu/run.sh --sizes=4096,16384 --families=causal
# On a machine without a GPU the bench says so and exits 0.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
source "$root/bench/gpu/env.sh"
gpu_bin mllm-bench-attention-gpu
exec "$bin/mllm-bench-attention-gpu" "$@"
