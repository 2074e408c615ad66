#!/usr/bin/env bash
# run-fuzz.sh FUZZER SCRATCH SECONDS CORPUS : fuzzes SafeTensorsFile::openBuffer
# for SECONDS (CTest SafeTensors.fuzz, label `fuzz`), failing on any crash,
# sanitizer report, broken round-trip invariant, timeout or out-of-memory.
# The seed corpus is replayed first, so a failing input saved in
# SCRATCH/artifacts and copied into CORPUS stays a regression test.
set -euo pipefail
fuzzer=$1 scratch=$2 seconds=$3 corpus=$4
rm -rf "$scratch"
mkdir -p "$scratch/new" "$scratch/artifacts"
exec "$fuzzer" "$scratch/new" "$corpus" -max_total_time="$seconds" \
  -max_len=4096 -timeout=10 -rss_limit_mb=2048 -seed=1 -print_final_stats=1 \
  -dict="$(dirname "$0")/safetensors.dict" \
  -artifact_prefix="$scratch/artifacts/"
