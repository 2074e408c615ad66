#!/usr/bin/env bash
# bounds-memory.sh BIN_DIR SCRATCH SOURCE_DIR MEMORY_KB: specs at the
# documented bounds (docs/language.md, "Bounds") are planned within
# MEMORY_KB of address space (0: no limit, as under AddressSanitizer) and a
# minute each (issue 15: 65,536 layers with pp 65,536, dp 2^30 in
# --emit=plan and pp 4,096 x 4,096 microbatches ran out of memory). A
# schedule in IR (--emit=sched) holds 65,536 stage x microbatch steps, a
# plan's (generated in memory) 2^20.
set -uo pipefail
bin=$1 scratch=$2 src=$3 memory=$4
export MLLM_STDLIB=$src/stdlib
rm -rf "$scratch" && mkdir -p "$scratch" && cd "$scratch" || exit 1
failures=0
# spec NAME LAYERS PP MICROBATCHES NODES GPUS_PER_NODE DP
spec() {
  cat > "$1.mllm" <<SPEC
import llama; import hardware;
instance big : llama3_2_1b { layers = $2; }
model m { llm : big { } }
data { text_tokens = 1k; microbatches = $4; }
cluster { nodes = $5; gpus_per_node = $6; gpu = h100_sxm; }
parallel { dp = $7; llm { pp = $3; } }
SPEC
}
# run NAME EMIT: plans NAME.mllm within the limits; it must succeed.
run() {
  (
    if ((memory > 0)); then ulimit -v "$memory"; fi
    timeout 60 "$bin/mllmc" "$1.mllm" --emit="$2" -o "$1.$2" 2> "$1.err"
  )
  local rc=$?
  if [[ $rc != 0 ]]; then
    echo "FAIL: $1 --emit=$2: exit $rc: $(head -c 400 "$1.err")"
    failures=$((failures + 1))
  fi
}
spec layers 4096 4096 4 4096 1 1         # the most blocks, a stage each
run layers summary
spec auto 4096 auto 4 4096 1 1           # ... and the partitioner's choice
run auto summary
spec world 16 1 4 1024 1024 1048576      # the largest cluster, in the plan
run world plan
spec schedule 64 64 1024 64 1 1          # the largest schedule in IR
run schedule sched
spec plan 32 32 32768 32 1 1             # the largest plan's, in memory
run plan plan
if ((failures)); then
  echo "$failures failure(s)"
  exit 1
fi
echo "all specs at the bounds planned"
