#!/usr/bin/env bash
# mllm-sim's speed: events (actions executed, a send and its receive count 2)
# per second of `simulate` alone (`--speed`), and the wall time of the whole
# process (parse, plan, schedule generation, verification, simulation,
# report). Cases: examples/largest.mllm as it is (3 encoders + 80-layer LLM,
# 1024 H100, 24 stages, 32 microbatches), the same with 1024 and 2730
# microbatches, and a deep variant (LLM pp 48 -> 64 stages) with 1024: a
# schedule holds at most 65536 stage x microbatch steps (the front end's
# bound, Bounds.h). Median of REPS runs (default 5; 3 for the biggest).
# Usage: bench/paper/simspeed.sh [build-dir]      (from the repo root)
set -euo pipefail
SIM=${1:-build}/bin/mllm-sim
REPS=${REPS:-5}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
EX=examples/largest.mllm

variant() { # name microbatches llm-pp-line
  sed "s/microbatches = 32;/microbatches = $2;/; s/llm { tp = 8; pp = 8; cp = 2; }/$3/" "$EX" > "$TMP/$1.mllm"
}
variant largest 32 'llm { tp = 8; pp = 8; cp = 2; }'
variant m1k 1024 'llm { tp = 8; pp = 8; cp = 2; }'
variant m2730 2730 'llm { tp = 8; pp = 8; cp = 2; }'
variant deep1k 1024 'llm { tp = 8; pp = 48; cp = 1; }'

echo "| case | stages | microbatches | events | simulate ms | M events/s | process wall s | peak RSS MiB |"
echo "|---|---|---|---|---|---|---|---|"
for c in largest m1k m2730 deep1k; do
  reps=$REPS; [ "$c" = m2730 ] && reps=$(( REPS < 3 ? REPS : 3 ))
  : > "$TMP/runs"
  for _ in $(seq "$reps"); do
    t0=$(date +%s.%N)
    if command -v /usr/bin/time > /dev/null; then
      /usr/bin/time -f "rss %M" "$SIM" "$TMP/$c.mllm" --speed -o "$TMP/out.txt" 2> "$TMP/err"
    else
      "$SIM" "$TMP/$c.mllm" --speed -o "$TMP/out.txt" 2> "$TMP/err"
    fi
    t1=$(date +%s.%N)
    # "mllm-sim: N events in X ms (Y M events/s)"
    ev=$(sed -n 's/^mllm-sim: \([0-9]*\) events in \([0-9.]*\) ms.*/\1 \2/p' "$TMP/err")
    rss=$(sed -n 's/^rss \([0-9]*\)/\1/p' "$TMP/err"); rss=${rss:-0}
    echo "$ev $(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}') $rss" >> "$TMP/runs"
  done
  head=$(head -1 "$TMP/out.txt")
  stages=$(sed -n 's/.*, \([0-9]*\) stages,.*/\1/p' <<< "$head")
  mb=$(sed -n 's/.*stages, \([0-9]*\) microbatches.*/\1/p' <<< "$head")
  k=$(( (reps + 1) / 2 ))
  wall=$(sort -k3 -g "$TMP/runs" | sed -n "${k}p" | awk '{print $3}')
  sort -k2 -g "$TMP/runs" | sed -n "${k}p" | awk -v c="$c" -v s="$stages" -v m="$mb" -v w="$wall" '
    { printf "| %s | %s | %s | %d | %.3f | %.1f | %.3f | %.0f |\n", c, s, m, $1, $2, $1/$2/1000, w, $4/1024 }'
done
