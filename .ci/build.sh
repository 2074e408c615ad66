#!/usr/bin/env bash
# Installs what is missing, builds everything, and compiles the default
# example: the README's first command.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/.ci/deps.sh"
build="${MLLM_BUILD_DIR:-$root/build}"
if [[ ! -f "$build/build.ninja" ]]; then
  CC=clang-22 CXX=clang++-22 cmake -G Ninja -S "$root" -B "$build" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
ninja -C "$build" -j "$(nproc)"
example="${1:-$root/examples/vlm_siglip_llama1b.mllm}"
echo "== mllmc $example"
"$build/bin/mllmc" "$example"
