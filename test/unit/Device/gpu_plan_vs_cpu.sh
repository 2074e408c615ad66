#!/usr/bin/env bash
# CTest `CUDA.DevicePlanAgainstCpu` (label gpu): mllm-run --backend=cuda
# trains the device test models' plans on the GPU (text, vision, audio,
# three encoders: test/mllm-run/Inputs/device_*.mllm), with each attention
# kernel, and the CPU backend
# trains them too; the losses of four steps must agree within 1% (the
# gradients are compared tensor by tensor on the host twin,
# test/mllm-run/device/*.test). With two GPUs or more and mpirun, the
# text LM's plan with two pipeline stages runs one rank per GPU
# (DeviceRankRunner over NCCL) against the CPU backend's pipeline the same
# way, and with three the vision LM's (an encoder stage and two LLM
# stages), and the text LM split in two tensor-parallel shards or two
# context-parallel shares; with fewer it says so. Without a usable GPU it prints why and
# exits 77, which CTest reports as skipped.
# Usage: gpu_plan_vs_cpu.sh BUILD_BIN SOURCE_ROOT
set -euo pipefail
bin=$1 root=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# compare_runs.py needs numpy: Debian's Python here, the one that holds
# PyTorch on a GPU machine (bench/gpu/env.sh).
source "$root/bench/gpu/env.sh"
gpu_python numpy
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
# The register-tile attention kernels (docs/cuda.md §2) on the same plans.
for model in device_llm device_vlm device_audio device_three_modality; do
  "$bin/mllm-run" "$tmp/$model.yaml" --backend=cuda \
    --attention-kernel=registers --steps 4 --json > "$tmp/$model.registers"
  echo -n "$model, register-tile attention: "
  "$python" "$root/test/runtime/compare_runs.py" losses "$tmp/$model.cpu" \
    "$tmp/$model.registers" --rtol 1e-2
done

# Pipeline stages, one rank per GPU.
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
pipeline() { # NAME SOURCE RANKS SED...
  local name=$1 source=$2 ranks=$3
  shift 3
  if (( gpus < ranks )) || ! command -v mpirun > /dev/null; then
    echo "$name: skipped (needs $ranks GPUs and mpirun; $gpus GPU(s) here)"
    return
  fi
  sed "$@" "$root/test/mllm-run/Inputs/$source.mllm" > "$tmp/$name.mllm"
  "$bin/mllmc" "$tmp/$name.mllm" --emit=plan -o "$tmp/$name.yaml"
  mpirun --timeout 600 -np "$ranks" "$bin/mllm-run" "$tmp/$name.yaml" \
    --backend=cuda --steps 4 --json > "$tmp/$name.gpu"
  mpirun --timeout 600 -np "$ranks" "$bin/mllm-run" "$tmp/$name.yaml" \
    --steps 4 --json > "$tmp/$name.cpu"
  echo -n "$name: "
  "$python" "$root/test/runtime/compare_runs.py" losses "$tmp/$name.cpu" \
    "$tmp/$name.gpu" --rtol 1e-2
}
pipeline llm_pp2 device_llm 2 -e 's/gpus_per_node = 1;/gpus_per_node = 2;/' \
  -e 's/^train {/parallel { llm { pp = 2; } }\ntrain {/'
pipeline vlm_pp3 device_vlm 3 -e 's/gpus_per_node = 2;/gpus_per_node = 3;/' \
  -e 's/^train {/parallel { vision { pp = 1; } llm { pp = 2; } }\ntrain {/'
# Tensor parallelism: the text LM's two shards (heads, feed-forward and
# vocabulary halved), one per GPU, the all-reduces over NCCL.
pipeline llm_tp2 device_llm 2 \
  -e 's/hidden = 128; ffn = 256; heads = 2; kv_heads = 1;/hidden = 256; ffn = 512; heads = 4; kv_heads = 2;/' \
  -e 's/gpus_per_node = 1;/gpus_per_node = 2;/' \
  -e 's/^train {/parallel { llm { tp = 2; } }\ntrain {/'
# Context parallelism: the text LM's sequences in two CP shares, K and V
# gathered over NCCL.
pipeline llm_cp2 device_llm 2 -e 's/gpus_per_node = 1;/gpus_per_node = 2;/' \
  -e 's/text_tokens = 64;/text_tokens = 256;/' \
  -e 's/^train {/parallel { llm { cp = 2; } }\ntrain {/'
