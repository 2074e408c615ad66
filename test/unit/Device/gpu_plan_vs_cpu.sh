#!/usr/bin/env bash
# CTest `CUDA.DevicePlanAgainstCpu` (label gpu): mllm-run --backend=cuda
# trains the device test models' plans on the GPU (text, vision, audio,
# three encoders: test/mllm-run/Inputs/device_*.mllm) and the CPU backend
# trains them too; the losses of four steps must agree within 1% (the
# gradients are compared tensor by tensor on the host twin,
# test/mllm-run/device/*.test). Without a usable GPU it prints why and
# exits 77, which CTest reports as skipped.
# Usage: gpu_plan_vs_cpu.sh BUILD_BIN SOURCE_ROOT
set -euo pipefail
bin=$1 root=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python=/usr/bin/python3
[[ -x $python ]] || python=python3
for model in device_llm device_vlm device_audio device_three_modality; do
  "$bin/mllmc" "$root/test/mllm-run/Inputs/$model.mllm" --emit=plan \
    -o "$tmp/$model.yaml"
  if ! "$bin/mllm-run" "$tmp/$model.yaml" --backend=cuda --steps 4 --json \
      > "$tmp/$model.gpu" 2> "$tmp/$model.err"; then
    if grep -q "no CUDA device" "$tmp/$model.err"; then
      echo "skipped: $(grep -o 'no CUDA device.*' "$tmp/$model.err" | head -1)"
      exit 77
    fi
    echo "$model:" >&2
    cat "$tmp/$model.err" >&2
    exit 1
  fi
  "$bin/mllm-run" "$tmp/$model.yaml" --steps 4 --json > "$tmp/$model.cpu"
  echo -n "$model: "
  "$python" "$root/test/runtime/compare_runs.py" losses "$tmp/$model.cpu" \
    "$tmp/$model.gpu" --rtol 1e-2
done
