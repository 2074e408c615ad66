#!/usr/bin/env bash
# Cornstarch Fig. 1c (brief §E.3): SigLIP so400m + Llama-3.2-1B, PP over one
# node of 4 A40 (dp 1, pp = auto for both parts), 64 microbatches of one
# 1024-text + 384x384-image sequence, recompute = full, projector trainable.
# For each freeze setting: the estimated iteration time of the partition
# balanced as if everything trained (frozen_unaware, the "actual" of the
# paper) against the frozen-aware optimum, and the overhead.
# IMAGE=... overrides the image size (default 384, i.e. 729 tokens), e.g.
# IMAGE="[1280, 720]" for a heavier encoder.
# Usage: bench/paper/fig1c.sh [build-dir]      (from the repo root)
set -euo pipefail
MLLMC=${1:-build}/bin/mllmc
HERE=$(dirname "$0")
IMAGE=${IMAGE:-384}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

source "$HERE/lib.sh" # fig1c_spec: the spec of one point

echo "| (encoder, LLM) | unaware stages enc/LLM | unaware iter (s) | aware stages enc/LLM | aware iter (s) | overhead | paper actual / optimal (s) | paper overhead |"
echo "|---|---|---|---|---|---|---|---|"
while read -r enc llm paper po; do
  for mode in unaware aware; do
    fig1c_spec "$enc" "$llm" frozen_$mode > "$TMP/s.mllm"
    "$MLLMC" "$TMP/s.mllm" --emit=plan -o "$TMP/$mode.yaml"
    eval "$(python3 "$HERE/planstats.py" "$TMP/$mode.yaml")"
    declare "${mode}_iter=$iter_ms" "${mode}_pp=$pp"
  done
  name() { [ "$1" = true ] && echo frozen || echo train; }
  awk -v n="($(name "$enc"), $(name "$llm"))" -v up="$unaware_pp" -v u="$unaware_iter" \
      -v ap="$aware_pp" -v a="$aware_iter" -v p="$paper" -v po="$po" \
      'BEGIN { printf "| %s | %s | %.2f | %s | %.2f | %+.1f%% | %s | %s |\n", n, up, u/1000, ap, a/1000, 100*(u/a-1), p, po }'
done <<'ROWS'
true true 5.98/4.85 +23.4%
true false 7.08/5.75 +23.0%
false true 6.31/6.11 +3.1%
false false 7.36/7.04 +4.6%
ROWS
