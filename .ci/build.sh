#!/usr/bin/env bash
# Installs what is missing, builds everything, and compiles the default
# example: the README's first command.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/.ci/deps.sh"
build="${MLLM_BUILD_DIR:-$root/build}"
# Line tables, not full debug info: backtraces, sanitizers and profilers
# still name file and line, and the build takes a sixth less time (the MLIR
# headers' types are most of the debug info). For a debugger, configure a
# tree of your own with -DCMAKE_BUILD_TYPE=Debug.
if [[ ! -f "$build/build.ninja" ]]; then
  CC=clang-22 CXX=clang++-22 cmake -G Ninja -S "$root" -B "$build" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O2 -gline-tables-only -DNDEBUG" \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -gline-tables-only -DNDEBUG"
fi
ninja -C "$build" -j "$(nproc)"
example="${1:-$root/examples/vlm_siglip_llama1b.mllm}"
echo "== mllmc $example"
"$build/bin/mllmc" "$example"
