#!/usr/bin/env bash
# CTest `CUDA.DevicePlanAgainstCpu` (label gpu): mllm-run --backend=cuda
# trains test/mllm-run/Inputs/device_llm.mllm's plan on the GPU and the CPU
# backend trains it too; the losses of four steps must agree within 1% (the
# device run writes no checkpoint yet; the weights' updates are compared on
# the host twin, test/mllm-run/device/twin.test). Without a usable GPU it
# prints why and exits 77, which CTest reports as skipped.
# Usage: gpu_plan_vs_cpu.sh BUILD_BIN SOURCE_ROOT
set -euo pipefail
bin=$1 root=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin/mllmc" "$root/test/mllm-run/Inputs/device_llm.mllm" --emit=plan \
  -o "$tmp/plan.yaml"
if ! "$bin/mllm-run" "$tmp/plan.yaml" --backend=cuda --steps 4 --json \
    > "$tmp/gpu.out" 2> "$tmp/gpu.err"; then
  if grep -q "no CUDA device" "$tmp/gpu.err"; then
    echo "skipped: $(grep -o 'no CUDA device.*' "$tmp/gpu.err" | head -1)"
    exit 77
  fi
  cat "$tmp/gpu.err" >&2
  exit 1
fi
"$bin/mllm-run" "$tmp/plan.yaml" --steps 4 --json > "$tmp/cpu.out"
python=/usr/bin/python3
[[ -x $python ]] || python=python3
"$python" "$root/test/runtime/compare_runs.py" losses "$tmp/cpu.out" \
  "$tmp/gpu.out" --rtol 1e-2
