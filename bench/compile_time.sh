#!/usr/bin/env bash
# Compile time at scale: `mllmc --emit=plan` (parse, plan, generate and
# verify the schedule in memory, build and write the plan file) and
# `mllm-sim` (the same without the file, plus the simulation) on
# examples/largest.mllm (3 encoders + an 80-layer LLM, 1024 H100), with the
# microbatch count raised (24 stages) and the LLM's pp raised (24, 48 and 96
# stages at 512 microbatches). Prints, per case, the median wall time of REPS
# runs (default 3), the peak RSS and the plan file's size, for the build
# given and, side by side, for a second build (e.g. one of an older commit)
# when given.
#
# A plan holds at most 2^20 stage x microbatch steps (Bounds.h; a schedule
# in IR, --emit=sched, 65536), so every case runs, the 16384-microbatch one
# (24 x 16384 steps) included, the figure issue 14 names. A build from
# before the schedule was kept out of the IR refuses it ("-").
#
# Usage: bench/compile_time.sh [build-dir] [before-build-dir]   (repo root)
set -euo pipefail
AFTER=${1:-build}
BEFORE=${2:-}
REPS=${REPS:-3}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
EX=examples/largest.mllm
STDLIB=$PWD/stdlib

variant() { # name microbatches llm-line nodes
  sed -e "s/microbatches = 32;/microbatches = $2;/" \
      -e "s/llm { tp = 8; pp = 8; cp = 2; }/$3/" \
      -e "s/nodes = 128;/nodes = $4;/" "$EX" > "$TMP/$1.mllm"
}
LLM24='llm { tp = 8; pp = 8; cp = 2; }'
variant m8 8 "$LLM24" 128
variant m64 64 "$LLM24" 128
variant m512 512 "$LLM24" 128
variant m2048 2048 "$LLM24" 128
variant m2730 2730 "$LLM24" 128
variant m16384 16384 "$LLM24" 128
variant s48 512 'llm { tp = 8; pp = 32; cp = 1; }' 48
variant s96 512 'llm { tp = 8; pp = 80; cp = 1; }' 96
# Every stage count the partitioner's: colocated encoders (one joint exact
# search per encoder stage count), pp = auto on every part, one replica.
sed -e 's/dp = auto;/dp = 1;/' -e 's/layout = encoders_parallel;/layout = encoders_colocated;/' \
    -e 's/pp = [0-9]*;/pp = auto;/' -e 's/cp = 2;/cp = 1;/' "$EX" > "$TMP/auto.mllm"
CASES="m8 m64 m512 m2048 m2730 m16384 s48 s96 auto"

# median wall seconds, peak RSS MiB, output bytes of one command; "-" when
# the tool refuses the case.
measure() { # out-file command...
  local out=$1; shift
  : > "$TMP/runs"
  for _ in $(seq "$REPS"); do
    local t0 t1
    t0=$(date +%s.%N)
    if ! /usr/bin/time -f "rss %M" "$@" > /dev/null 2> "$TMP/err"; then
      echo "- - -"
      return
    fi
    t1=$(date +%s.%N)
    echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}') \
$(sed -n 's/^rss //p' "$TMP/err")" >> "$TMP/runs"
  done
  local k=$(( (REPS + 1) / 2 )) size=0
  [ -f "$out" ] && size=$(stat -c %s "$out")
  sort -g "$TMP/runs" | sed -n "${k}p" |
    awk -v s="$size" '{printf "%.3f %.0f %s\n", $1, $2 / 1024, s}'
}

row() { # build-dir case
  local b=$1/bin c=$2
  rm -f "$TMP/plan.yaml"
  read -r pw prss psize < <(measure "$TMP/plan.yaml" "$b/mllmc" \
    "$TMP/$c.mllm" --stdlib "$STDLIB" --emit=plan -o "$TMP/plan.yaml")
  read -r sw srss _ < <(measure /nonexistent "$b/mllm-sim" "$TMP/$c.mllm" \
    --stdlib "$STDLIB")
  echo "$pw | $prss | $psize | $sw | $srss"
}

head='| case | stages | microbatches | mllmc --emit=plan s | RSS MiB | plan bytes | mllm-sim s | RSS MiB |'
sep='|---|---|---|---|---|---|---|---|'
if [ -n "$BEFORE" ]; then
  head="$head before: plan s | RSS MiB | plan bytes | sim s | RSS MiB |"
  sep="$sep---|---|---|---|---|"
fi
echo "$head"
echo "$sep"
for c in $CASES; do
  mb=$(sed -n 's/.*microbatches = \([0-9]*\);.*/\1/p' "$TMP/$c.mllm")
  pp=$(sed -n 's/.*llm { tp = 8; pp = \([0-9]*\);.*/\1/p' "$TMP/$c.mllm")
  stages=auto
  [ -n "$pp" ] && stages=$((16 + pp))
  line="| $c | $stages | $mb | $(row "$AFTER" "$c")"
  [ -n "$BEFORE" ] && line="$line | $(row "$BEFORE" "$c")"
  echo "$line |"
done
