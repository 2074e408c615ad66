#!/usr/bin/env bash
# The GPU checks of docs/cuda.md §6 as one command, on a GPU machine that
# cannot build the project (bench/gpu/bundle.sh says why): unpacks the
# archives bundle.sh wrote to .gpu/ into .gpu/tree, puts its libraries and
# the machine's CUDA 13 ones (cuBLASLt, NCCL: the toolkit's, or the pip
# wheels' of the machine's Python) on LD_LIBRARY_PATH, points mllmc at the
# repository's stdlib, and runs each part's checks, each with its own time
# limit, within DEADLINE seconds in all (default 480: a check whose limit
# no longer fits is skipped, so a hang cannot take the whole command).
# Prints one line per check (exit status, seconds) and the output's last
# lines; a part's whole output goes to $OUT/PART.log ($OUT: the device
# tool's folder; /tmp/mllm-gpu/out where it is not set).
#
#   probe      the GPU, the driver, the C library, the CUDA libraries found,
#              and which libraries of the archives given (and of the lists
#              .gpu/PART.libs carried) the machine has itself
#              ($OUT/system-libs.txt, for bundle.sh --skip-libs)
#   kernels    (the kernels archive) gpu-tests: MLLMCUDAGpuTests (every
#              kernel against the CPU backend, both attention kernels);
#              cpu-tests: MLLMCUDATests; bench-staged, bench-registers:
#              mllm-bench-attention-gpu at 4k and 16k, every mask family,
#              against the dense reference; bench-long-staged,
#              bench-long-registers: at 64k, causal and multimodal_packed,
#              the flash kernels alone
#   executor   (the executor archive) plans: gpu_plan_vs_cpu.sh (CTest's
#              CUDA.DevicePlanAgainstCpu: the device test models against
#              the CPU backend, both kernels); e2e-staged, e2e-registers:
#              bench/gpu/e2e.sh; generate: bench/gpu/generate.sh
#
# CHECKS="gpu-tests bench-registers" runs only the checks named. Exits 1
# when a check failed, passed its limit or did not fit the deadline, or a
# part's files are missing; else 0. A check that says "no CUDA device" (or
# exits 77, gpu_plan_vs_cpu.sh's skip) counts as skipped where nvidia-smi
# lists no GPU, and as failed where it lists one. One call per part:
#
#   carry .gpu/kernels.tar.xz:   bench/gpu/device-check.sh probe kernels
#   carry .gpu/executor.tar.xz:  bench/gpu/device-check.sh executor
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
source "$root/bench/gpu/env.sh"
out=${OUT:-/tmp/mllm-gpu/out}
# The archives and their tree (MLLM_GPU_DIR: elsewhere, for the script's
# test).
gpu_dir=${MLLM_GPU_DIR:-$root/.gpu}
tree=$gpu_dir/tree
deadline=${DEADLINE:-480}
mkdir -p "$out" "$tree"
failed=0
have_gpu=0
nvidia-smi -L 2> /dev/null | grep -q '^GPU' && have_gpu=1
# What the loader finds by itself (ldconfig is in sbin, off some PATHs).
known_libs=$(PATH=$PATH:/usr/sbin:/sbin ldconfig -p 2> /dev/null)

# The folders of the CUDA libraries the archives leave out that the loader
# does not find by itself.
cuda_dirs=()
for lib in libcublasLt.so.13 libnccl.so.2; do
  grep -q "^[[:space:]]*$lib " <<< "$known_libs" && continue
  found=$(find /usr/local /usr/lib /opt -name "$lib" -print -quit 2> /dev/null)
  [[ -n $found ]] && cuda_dirs+=("$(dirname "$found")")
done

# check NAME SECONDS [--cpu] COMMAND...: runs it with its limit when CHECKS
# names it (or is empty) and the deadline leaves the time; --cpu: it needs
# no GPU (so "no CUDA device" in its output is no skip).
check() {
  local name=$1 limit=$2 rc start note="" gpu=1
  shift 2
  [[ $1 == --cpu ]] && gpu=0 && shift
  if [[ -n ${CHECKS:-} && " $CHECKS " != *" $name "* ]]; then
    return
  fi
  if ((SECONDS + limit > deadline)); then
    echo "$name: not run (its ${limit} s do not fit the ${deadline} s" \
      "deadline; $SECONDS s spent)"
    failed=1
    return
  fi
  start=$SECONDS
  timeout --kill-after=5 "$limit" "$@" > "$out/check.log" 2>&1
  rc=$?
  if ((rc == 124 || rc == 137)); then
    note=", past its $limit s"
  elif ((gpu)) && { ((rc == 77)) || grep -q "no CUDA device" "$out/check.log"; }; then
    if ((have_gpu)); then
      note=", but nvidia-smi lists a GPU: the CUDA runtime did not start"
      rc=1
    else
      note=", skipped: no GPU"
      rc=0
    fi
  fi
  echo "$name: exit $rc ($((SECONDS - start)) s)$note"
  { echo "== $name: exit $rc$note"; cat "$out/check.log"; } >> "$log"
  rm -f "$out/check.log"
  ((rc == 0)) || failed=1
}

probe() {
  echo "GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total \
    --format=csv,noheader 2> /dev/null || echo "none (no nvidia-smi)")"
  echo "C library: $(ldd --version | head -1)"
  echo "CUDA library folders added: ${cuda_dirs[*]:-none}"
  for lib in libcublasLt.so.13 libnccl.so.2 libcudart.so.13; do
    echo "$lib: $(find /usr/local /usr/lib /opt -name "$lib" 2> /dev/null |
      head -3 | tr '\n' ' ')"
  done
  cat "$tree"/*.libs "$gpu_dir"/*.libs 2> /dev/null | sort -u |
    while read -r soname; do
      if grep -q "^[[:space:]]*$soname " <<< "$known_libs"; then
        echo "$soname"
      fi
    done > "$out/system-libs.txt"
  echo "libraries of the archives the machine has: $(wc -l \
    < "$out/system-libs.txt") (system-libs.txt)"
}

# Unpacks the archives newer than the tree's copy of them (xz, or Python's
# tarfile where the machine has no xz).
for archive in "$gpu_dir"/*.tar.xz; do
  [[ -f $archive ]] || continue
  stamp=$tree/.$(basename "$archive").stamp
  [[ $stamp -nt $archive ]] && continue
  if command -v xz > /dev/null; then
    tar -C "$tree" -xJf "$archive"
  else
    gpu_python tarfile lzma &&
      "$python" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
        "$archive" "$tree"
  fi && touch "$stamp" || echo "could not unpack $archive"
done
paths=("$tree/lib" "${cuda_dirs[@]}")
[[ -n ${LD_LIBRARY_PATH:-} ]] && paths+=("$LD_LIBRARY_PATH")
LD_LIBRARY_PATH=$(IFS=:; echo "${paths[*]}")
export LD_LIBRARY_PATH MLLM_BIN=$tree/bin MLLM_STDLIB=$root/stdlib

# ready PART BINARY...: whether the tree has the binaries and everything
# they load (symbols included: a library of the machine may be older).
ready() {
  local part=$1 b missing=""
  shift
  for b in "$@"; do
    if [[ ! -x $MLLM_BIN/$b ]]; then
      missing+=" $b"
    else
      missing+=$(ldd -r "$MLLM_BIN/$b" 2>&1 |
        awk '/not found|undefined symbol/ {printf " %s", $0}')
    fi
  done
  [[ -z $missing ]] && return 0
  echo "$part: missing:$missing (carry .gpu/$part.tar.xz from" \
    "bench/gpu/bundle.sh $part)"
  failed=1
  return 1
}

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
    check gpu-tests 150 "$MLLM_BIN/MLLMCUDAGpuTests" --gtest_brief=1
    check cpu-tests 30 --cpu "$MLLM_BIN/MLLMCUDATests" --gtest_brief=1
    check bench-staged 100 "$MLLM_BIN/mllm-bench-attention-gpu" "${bench[@]}"
    check bench-registers 100 "$MLLM_BIN/mllm-bench-attention-gpu" \
      "${bench[@]}" --kernel=registers
    # shellcheck disable=SC2054
    long=(--sizes=65536 --families=causal,multimodal_packed --reps=3 --no-dense)
    check bench-long-staged 50 "$MLLM_BIN/mllm-bench-attention-gpu" "${long[@]}"
    check bench-long-registers 50 "$MLLM_BIN/mllm-bench-attention-gpu" \
      "${long[@]}" --kernel=registers
    ;;
  executor)
    ready executor mllmc mllm-run || continue
    log=$out/executor.log
    : > "$log"
    # The MFU against this GPU's peak (the hardware library's profiles).
    if [[ -z ${GPU:-} ]] && nvidia-smi -L 2> /dev/null | grep -q H200; then
      export GPU=h200
    fi
    check plans 180 "$root/test/unit/Device/gpu_plan_vs_cpu.sh" "$MLLM_BIN" \
      "$root"
    check e2e-staged 80 "$root/bench/gpu/e2e.sh"
    check e2e-registers 80 env KERNEL=registers "$root/bench/gpu/e2e.sh"
    check generate 80 "$root/bench/gpu/generate.sh"
    ;;
  *)
    echo "device-check.sh: no part '$part' (probe, kernels, executor)" >&2
    exit 2
    ;;
  esac
  if [[ $part != probe ]]; then
    echo "--- the end of $out/$part.log:"
    tail -n 40 "$out/$part.log"
  fi
done
exit $failed
