#!/usr/bin/env bash
# Cornstarch Table 2 (brief §E.3): frozen-aware vs frozen-unaware pipeline
# partitioning for the 27 V-A-L synthetic MLLMs (stdlib/synthetic.mllm) on
# 6 nodes x 4 A40. Encoders colocated, encoders and LLM frozen, projectors
# train, recompute = full; 1k text + one 1280x720 image + one 2-min audio.
# Global batch 48 = dp 2 x 6 microbatches x microbatch 4 (DP=1|2|3|4|6
# overrides dp; microbatches = 12 / dp). pp = auto everywhere.
# Usage: bench/paper/table2.sh [build-dir]      (from the repo root)
set -euo pipefail
MLLMC=${1:-build}/bin/mllmc
HERE=$(dirname "$0")
DP=${DP:-2}
MB=$((12 / DP))
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

declare -A PAPER=( # aware iter (s) | unaware iter (s) | speed-up, Table 2
  [sss]="21.81|25.67|1.18x" [mms]="40.34|41.21|1.02x" [lls]="66.14|66.20|1.00x"
  [ssm]="66.56|73.94|1.11x" [mmm]="70.37|173.01|2.46x" [llm]="87.43|177.39|2.03x"
  [ssl]="138.45|137.62|1.00x" [mml]="138.97|180.28|1.30x" [lll]="143.76|247.79|1.72x")

source "$HERE/lib.sh" # table2_spec: the spec of one point

echo "dp $DP x $MB microbatches x 4 sequences = global batch $((DP * MB * 4)); $((24 / DP)) GPUs per replica."
echo "F/B: ms per microbatch, the largest over stages (encoder stage = vision + audio sharing a GPU);"
echo "B = Bw + Bd + recompute. mem: largest stage, GiB per GPU. iter: estimated iteration time."
echo "speed-up: unaware / aware iteration time (in parentheses: of the bottleneck stage's F+B)."
echo
echo "| config | mode | stages enc/LLM | enc F | enc B | LLM F | LLM B | mem GiB | iter (s) | speed-up iter (bottleneck) | paper iter (s) | paper speed-up |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for v in s m l; do for a in s m l; do for l in s m l; do
  c=$v$a$l
  declare -A it=() bn=()
  for mode in aware unaware; do
    table2_spec $v $a $l frozen_$mode > "$TMP/$c.mllm"
    if "$MLLMC" "$TMP/$c.mllm" --emit=plan -o "$TMP/$c.$mode.yaml" 2> "$TMP/err"; then
      eval "$(python3 "$HERE/planstats.py" "$TMP/$c.$mode.yaml")"
      it[$mode]=$iter_ms bn[$mode]=$bottleneck_ms
      row="${pp} | ${enc_f} | ${enc_b} | ${llm_f} | ${llm_b} | $(awk -v m="$mem_mib" 'BEGIN{printf "%.1f", m/1024}') | $(awk -v t="$iter_ms" 'BEGIN{printf "%.2f", t/1000}')"
    else
      it[$mode]= bn[$mode]=
      row="compile error: $(grep -m1 'error:' "$TMP/err" | sed 's/^[^ ]* error: //') | | | | | |"
      cat "$TMP/err" >&2
    fi
    IFS='|' read -r pa pu ps <<< "${PAPER[$c]:-||}"
    if [ $mode = aware ]; then
      echo "| ${c^^} | aware | $row | | $pa | |"
    else
      sp=$( [ -n "${it[aware]}" ] && [ -n "${it[unaware]}" ] && awk -v a="${it[aware]}" -v u="${it[unaware]}" -v ba="${bn[aware]}" -v bu="${bn[unaware]}" 'BEGIN{printf "%.2fx (%.2fx)", u/a, bu/ba}' || true)
      echo "| | unaware | $row | $sp | $pu | $ps |"
    fi
  done
done; done; done
