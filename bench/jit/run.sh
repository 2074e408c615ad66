#!/usr/bin/env bash
# Compiled step functions (issue 11), three figures:
#  1. per rank: lowering (plan -> sched IR -> memory plan -> LLVM dialect) and
#     ORC code generation time vs the microbatch count, for the 2-rank
#     examples/tiny_vlm.mllm with its microbatches raised (mllm-run --steps 0
#     compiles and stops);
#  2. seconds per training step, interpreter (--interpret) vs JIT, on the
#     same plans (tiny layers: what is not compute is the runtime's own
#     overhead), median of the steps after the first;
#  3. each example's static memory plan next to the cost model's estimate
#     (mllmc --emit=sched --explain).
#
# Usage: bench/jit/run.sh [build-dir]        (from the repository root)
set -euo pipefail
BUILD=${1:-build}
STEPS=${STEPS:-4}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
MPIRUN="env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_pml=ob1
  OMPI_MCA_btl=self,vader mpirun --timeout 600"

median_ms() { # JSON step lines on stdin, steps after the first
  /usr/bin/python3 -c '
import json, sys, statistics
ms = [json.loads(l)["ms"] for l in sys.stdin
      if l.startswith("{") and "\"event\":\"step\"" in l]
print("%.1f" % statistics.median(ms[1:] or ms))'
}

echo "## JIT compile time per rank and step time (tiny_vlm, 2 ranks)"
echo
echo "| microbatches | actions (rank 0 / 1) | lower ms (0 / 1) | JIT ms (0 / 1) | step ms interpreter | step ms JIT |"
echo "|---|---|---|---|---|---|"
for m in 4 16 64 256 1024; do
  sed "s/microbatches = [0-9]*;/microbatches = $m;/" examples/tiny_vlm.mllm \
    > "$TMP/v$m.mllm"
  "$BUILD/bin/mllmc" "$TMP/v$m.mllm" --emit=plan -o "$TMP/v$m.yaml"
  $MPIRUN -np 2 "$BUILD/bin/mllm-run" "$TMP/v$m.yaml" --steps 0 --threads 1 \
    --json 2> "$TMP/jit.err" > /dev/null
  row=$(/usr/bin/python3 -c '
import json, re, sys
# Ranks write stderr at the same time: lines may interleave.
r = sorted((json.loads(m) for m in
            re.findall(r"\{\"rank\": [^}]*\}", open(sys.argv[1]).read())),
           key=lambda j: j["rank"])
f = lambda k, fmt: " / ".join(fmt % j[k] for j in r)
print("%s | %s | %s" % (f("actions", "%d"), f("lower_ms", "%.1f"),
                        f("jit_ms", "%.1f")))' "$TMP/jit.err")
  int=$($MPIRUN -np 2 "$BUILD/bin/mllm-run" "$TMP/v$m.yaml" --steps "$STEPS" \
    --threads 1 --json --interpret 2> /dev/null | median_ms)
  jit=$($MPIRUN -np 2 "$BUILD/bin/mllm-run" "$TMP/v$m.yaml" --steps "$STEPS" \
    --threads 1 --json 2> /dev/null | median_ms)
  echo "| $m | $row | $int | $jit |"
done

echo
echo "## Static memory plan vs the cost model's estimate (MiB per GPU)"
for ex in examples/*.mllm; do
  echo
  echo "### $(basename "$ex")"
  echo '```'
  "$BUILD/bin/mllmc" "$ex" --emit=sched --explain 2>&1 |
    sed -n '/^static memory plan/,/^  (arena/p' | sed '$d'
  echo '```'
done
