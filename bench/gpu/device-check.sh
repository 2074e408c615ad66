#!/usr/bin/env bash
# The GPU checks of docs/cuda.md §6 as one command, on a GPU machine that
# cannot build the project (bench/gpu/bundle.sh says why): unpacks the
# archives bundle.sh wrote to .gpu/ into one tree, .gpu/tree (it stays
# between the calls of a warm machine, so parts carried by successive calls
# add up), puts its libraries and the machine's CUDA 13 ones (cuBLASLt,
# NCCL: the toolkit's, or the pip wheels' of the machine's Python) on
# LD_LIBRARY_PATH, and runs each part's checks, each with its own time
# limit. Prints one line per check (its exit status and seconds) and the
# output's last lines; the whole output of a part goes to $OUT/PART.log
# ($OUT: the device tool's folder; /tmp/mllm-gpu/out where it is not set).
#
#   probe      the GPU, the driver, the C library, the CUDA libraries found,
#              and which of the bundles' libraries the machine has itself
#              ($OUT/system-libs.txt, for bundle.sh --skip-libs)
#   kernels    (the kernels archive) gpu-tests: MLLMCUDAGpuTests (every
#              kernel against the CPU backend, both attention kernels);
#              cpu-tests: MLLMCUDATests; bench-staged, bench-registers:
#              mllm-bench-attention-gpu at 4k and 16k, every mask family,
#              against the dense reference
#   executor   (the executor and llvm archives) plans: gpu_plan_vs_cpu.sh
#              (CTest's CUDA.DevicePlanAgainstCpu: the device test models
#              against the CPU backend, both kernels); e2e-staged,
#              e2e-registers: bench/gpu/e2e.sh; generate: bench/gpu/generate.sh
#
# CHECKS="gpu-tests bench-registers" runs only the checks named. Exits 1
# when a check failed (or passed its limit) or a part's files are missing,
# else 0; a check that exits 77 was skipped (gpu_plan_vs_cpu.sh without a
# GPU). Two calls of the device tool, back to back (bench/gpu/README.md):
#
#   carry .gpu/kernels.tar.xz .gpu/executor.tar.xz:
#     bench/gpu/device-check.sh probe kernels
#   carry .gpu/llvm.tar.xz:
#     bench/gpu/device-check.sh executor
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
source "$root/bench/gpu/env.sh"
out=${OUT:-/tmp/mllm-gpu/out}
tree=$root/.gpu/tree
mkdir -p "$out" "$tree"
failed=0

# The directories holding the CUDA libraries the bundles leave out, unless
# the loader finds them already.
cuda_dirs() {
  local lib dirs=() found
  for lib in libcublasLt.so.13 libnccl.so.2; do
    ldconfig -p 2> /dev/null | grep -q "^[[:space:]]*$lib " && continue
    found=$(find /usr/local /usr/lib /opt -name "$lib" -print -quit 2> /dev/null)
    [[ -n $found ]] && dirs+=("$(dirname "$found")")
  done
  (IFS=:; echo "${dirs[*]}")
}

# check NAME SECONDS COMMAND...: runs it with its limit when CHECKS allows.
check() {
  local name=$1 limit=$2 start rc
  shift 2
  if [[ -n ${CHECKS:-} && " $CHECKS " != *" $name "* ]]; then
    return
  fi
  start=$(date +%s)
  echo "== $name" >> "$log"
  timeout --kill-after=10 "$limit" "$@" >> "$log" 2>&1
  rc=$?
  echo "$name: exit $rc ($(($(date +%s) - start)) s)$(
    ((rc == 124)) && echo ", past its ${limit} s"
    ((rc == 77)) && echo ", skipped")"
  ((rc == 0 || rc == 77)) || failed=1
}

probe() {
  log=$out/probe.log
  : > "$log"
  {
    if command -v nvidia-smi > /dev/null; then
      nvidia-smi --query-gpu=name,driver_version,memory.total \
        --format=csv,noheader
    else
      echo "no nvidia-smi here"
    fi
    ldd --version | head -1
    echo "CUDA library folders: $(cuda_dirs)"
    for lib in libcublasLt.so.13 libnccl.so.2 libcudart.so.13; do
      echo "$lib: $(find /usr/local /usr/lib /opt -name "$lib" 2> /dev/null |
        head -3 | tr '\n' ' ')"
    done
  } >> "$log" 2>&1
  cat "$log"
  : > "$out/system-libs.txt"
  sort -u "$tree"/*.libs 2> /dev/null | while read -r soname; do
    ldconfig -p | grep -q "^[[:space:]]*$soname " &&
      echo "$soname" >> "$out/system-libs.txt"
  done
  echo "bundled libraries the machine has: $(wc -l < "$out/system-libs.txt")" \
    "(system-libs.txt)"
}

# Unpacks the archives new since the last call into the tree, and puts it
# on the paths.
unpack() {
  local archive stamp
  for archive in "$root"/.gpu/*.tar.xz; do
    [[ -f $archive ]] || continue
    stamp=$tree/.$(basename "$archive").stamp
    if [[ ! $stamp -nt $archive ]]; then
      tar -C "$tree" -xJf "$archive" && touch "$stamp"
    fi
  done
  LD_LIBRARY_PATH="$tree/lib:$(cuda_dirs)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export LD_LIBRARY_PATH MLLM_BIN=$tree/bin
}

# ready PART BINARY...: whether the tree has the binaries and what they
# load.
ready() {
  local part=$1 b missing=""
  shift
  for b in "$@"; do
    if [[ ! -x $MLLM_BIN/$b ]]; then
      missing+=" $b"
    else
      missing+=$(ldd "$MLLM_BIN/$b" | awk '/not found/ {printf " %s", $1}')
    fi
  done
  [[ -z $missing ]] && return 0
  echo "$part: missing:$missing (carry the archives bundle.sh wrote for it;" \
    "those of an earlier call stay only while the machine is warm)"
  failed=1
  return 1
}

unpack
for part in "$@"; do
  case $part in
  probe) probe ;;
  kernels)
    ready kernels MLLMCUDAGpuTests MLLMCUDATests mllm-bench-attention-gpu ||
      continue
    log=$out/kernels.log
    : > "$log"
    # shellcheck disable=SC2054 # the commas are the bench's
    bench=(--sizes=4096,16384 --reps=3 --check-up-to=16384)
    check gpu-tests 180 "$MLLM_BIN/MLLMCUDAGpuTests" --gtest_brief=1
    check cpu-tests 60 "$MLLM_BIN/MLLMCUDATests" --gtest_brief=1
    check bench-staged 150 "$MLLM_BIN/mllm-bench-attention-gpu" "${bench[@]}"
    check bench-registers 150 "$MLLM_BIN/mllm-bench-attention-gpu" \
      "${bench[@]}" --kernel=registers
    ;;
  executor)
    ready executor mllmc mllm-run || continue
    log=$out/executor.log
    : > "$log"
    # The MFU against this GPU's peak (the hardware library's profiles).
    if [[ -z ${GPU:-} ]] && nvidia-smi -L 2> /dev/null | grep -q H200; then
      export GPU=h200
    fi
    check plans 200 "$root/test/unit/Device/gpu_plan_vs_cpu.sh" "$MLLM_BIN" \
      "$root"
    check e2e-staged 100 "$root/bench/gpu/e2e.sh"
    check e2e-registers 100 env KERNEL=registers "$root/bench/gpu/e2e.sh"
    check generate 100 "$root/bench/gpu/generate.sh"
    ;;
  *)
    echo "device-check.sh: no part '$part' (probe, kernels, executor)" >&2
    exit 2
    ;;
  esac
  [[ $part == probe ]] && continue
  echo "--- the end of $out/$part.log:"
  tail -n 40 "$out/$part.log"
done
exit $failed
