#!/usr/bin/env bash
# One command for the GPU attention figures: builds the bench (configuring
# the build tree if needed) and runs it with any flags given, e.g.
#   bench/gpu/run.sh --sizes=4096,16384 --families=causal
# On a machine without a GPU the bench says so and exits 0.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${MLLM_BUILD_DIR:-$root/build}"
if [[ ! -f "$build/build.ninja" ]]; then
  CC=clang-22 CXX=clang++-22 cmake -G Ninja -S "$root" -B "$build" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
ninja -C "$build" mllm-bench-attention-gpu
exec "$build/bin/mllm-bench-attention-gpu" "$@"
