#!/usr/bin/env bash
# run.sh FUZZER SCRATCH SECONDS CORPUS... : fuzzes for SECONDS, failing on any
# crash, sanitizer report, timeout or out-of-memory. A failing input is left
# in SCRATCH/artifacts; minimise it and add it to test/fuzz/regressions.
set -euo pipefail
fuzzer=$1 scratch=$2 seconds=$3
shift 3
rm -rf "$scratch"
mkdir -p "$scratch/new" "$scratch/artifacts"
exec "$fuzzer" "$scratch/new" "$@" -max_total_time="$seconds" -max_len=4096 \
  -timeout=10 -rss_limit_mb=4096 -seed=1 -print_final_stats=1 \
  -dict="$(dirname "$0")/mllm.dict" -artifact_prefix="$scratch/artifacts/"
