#!/usr/bin/env bash
# Builds (installing what is missing) and runs every test through CTest:
# the README's second command, and what CI runs.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/.ci/build.sh" > /dev/null
build="${MLLM_BUILD_DIR:-$root/build}"
"$root/.ci/format.sh"
ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
