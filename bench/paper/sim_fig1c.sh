#!/usr/bin/env bash
# Cornstarch Fig. 1c (brief §E.3) simulated with mllm-sim: SigLIP so400m +
# Llama-3.2-1B on one node of 4 A40 (dp 1, pp = auto for both parts), 64
# microbatches of one 1024-text + 384x384-image sequence, recompute = full,
# projector trainable; the setup of fig1c.sh. For each freeze setting:
#   1. `mllm-sim --compare --json`: the simulated iteration of the partition
#      balanced as if everything trained (frozen_unaware, the paper's
#      "actual") against the frozen-aware optimum, and the overhead; the
#      uniform and Megatron-like rows of --compare for reference;
#   2. every encoder/LLM split the 4 GPUs allow (vision pp N, llm pp 4 - N,
#      frozen-aware within each part), simulated: what choosing the wrong
#      split would cost in mllmc's model.
# IMAGE=... overrides the image size (default 384, i.e. 729 tokens).
# Usage: bench/paper/sim_fig1c.sh [build-dir]      (from the repo root)
set -euo pipefail
BUILD=${1:-build}
MLLMC=$BUILD/bin/mllmc
SIM=$BUILD/bin/mllm-sim
HERE=$(dirname "$0")
source "$HERE/lib.sh"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

name() { [ "$1" = true ] && echo frozen || echo train; }
iter_s() { python3 -c 'import json,sys; print("%.3f" % (json.load(open(sys.argv[1]))["iteration_ms"] / 1000))' "$1"; }

echo "Simulated iteration (s) of one training iteration, 64 microbatches. overhead = unaware / aware - 1."
echo
echo "| (encoder, LLM) | stages enc/LLM unaware / aware | unaware (s) | aware (s) | overhead | uniform (s) | Megatron-like (s) | paper actual / optimal (s) | paper overhead |"
echo "|---|---|---|---|---|---|---|---|---|"
while read -r enc llm paper po; do
  fig1c_spec "$enc" "$llm" frozen_aware > "$TMP/s.mllm"
  "$SIM" "$TMP/s.mllm" --compare --json -o "$TMP/c.json"
  for mode in unaware aware; do
    fig1c_spec "$enc" "$llm" frozen_$mode > "$TMP/$mode.mllm"
    "$MLLMC" "$TMP/$mode.mllm" --emit=plan -o "$TMP/$mode.yaml"
    eval "$(python3 "$HERE/planstats.py" "$TMP/$mode.yaml")"
    declare "${mode}_pp=$pp"
  done
  python3 - "$TMP/c.json" "($(name "$enc"), $(name "$llm"))" "$unaware_pp / $aware_pp" "$paper" "$po" <<'PY'
import json, sys
rows = {r["variant"]: r["iteration_ms"] / 1000 for r in json.load(open(sys.argv[1]))["compare"]}
a, u = rows["frozen-aware"], rows["frozen-unaware"]
print("| %s | %s | %.3f | %.3f | %+.1f%% | %.3f | %.3f | %s | %s |" % (
    sys.argv[2], sys.argv[3], u, a, 100 * (u / a - 1), rows["uniform"], rows["megatron-like"],
    sys.argv[4], sys.argv[5]))
PY
done <<'ROWS'
true true 5.98/4.85 +23.4%
true false 7.08/5.75 +23.0%
false true 6.31/6.11 +3.1%
false false 7.36/7.04 +4.6%
ROWS

echo
echo "Every encoder/LLM split of the 4 GPUs, simulated (s); in parentheses: vs the best split."
echo
echo "| (encoder, LLM) | enc 1 / LLM 3 | enc 2 / LLM 2 | enc 3 / LLM 1 |"
echo "|---|---|---|---|"
for enc in true false; do for llm in true false; do
  declare -a t=()
  for n in 1 2 3; do
    fig1c_spec "$enc" "$llm" frozen_aware |
      sed "s/vision { pp = auto; }/vision { pp = $n; }/; s/llm { pp = auto; }/llm { pp = $((4 - n)); }/" > "$TMP/p$n.mllm"
    if "$SIM" "$TMP/p$n.mllm" --json -o "$TMP/p$n.json" 2> /dev/null; then
      t+=("$(iter_s "$TMP/p$n.json")")
    else
      t+=("n/a")
    fi
  done
  python3 - "($(name "$enc"), $(name "$llm"))" "${t[@]}" <<'PY'
import sys
ts = sys.argv[2:]
best = min(float(x) for x in ts if x != "n/a")
print("| %s | %s |" % (sys.argv[1], " | ".join(
    "n/a" if x == "n/a" else "%.3f (%+.1f%%)" % (float(x), 100 * (float(x) / best - 1)) for x in ts)))
PY
done; done
