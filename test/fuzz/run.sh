#!/usr/bin/env bash
# run.sh FUZZER SCRATCH SECONDS ARGS... : fuzzes for SECONDS, failing on any
# crash, sanitizer report, timeout or out-of-memory. ARGS are libFuzzer flags
# (-max_len=..., -dict=...) and corpus directories, in any order. A failing
# input is left in SCRATCH/artifacts; minimise it (-minimize_crash=1) and
# add it to the target's regressions directory.
set -euo pipefail
fuzzer=$1 scratch=$2 seconds=$3
shift 3
flags=() corpora=()
for arg in "$@"; do
  case $arg in
  -*) flags+=("$arg") ;;
  *) corpora+=("$arg") ;;
  esac
done
rm -rf "$scratch"
mkdir -p "$scratch/new" "$scratch/artifacts"
exec "$fuzzer" "$scratch/new" "${corpora[@]}" -max_total_time="$seconds" \
  -timeout=10 -rss_limit_mb=4096 -malloc_limit_mb=4096 -seed=1 \
  -print_final_stats=1 -artifact_prefix="$scratch/artifacts/" "${flags[@]}"
