#!/usr/bin/env bash
# Packs the GPU checks' binaries with the shared libraries they load, for a
# GPU machine that cannot build the project: the device machines lent to
# this project have a driver and the CUDA 13 toolkit but none of the Debian
# libraries (LLVM/MLIR, OpenBLAS, OpenMPI, ...) and no package registry.
# Builds the targets here (the build tree of bench/gpu/env.sh), strips them
# and writes one archive per part to .gpu/ (ignored by git):
#
#   kernels    MLLMCUDAGpuTests, MLLMCUDATests, mllm-bench-attention-gpu
#              and their libraries (about 15 MiB)
#   executor   mllmc, mllm-run (gpu_plan_vs_cpu.sh, e2e.sh, generate.sh) and
#              their libraries but LLVM's (about 18 MiB)
#   llvm       libLLVM and the libraries it loads (about 44 MiB): mllm-run's
#              JIT and mllmc need it
#
# A call of the device tool carries at most 64 MiB with the repository's
# files (about 5), so the executor's checks take two calls on the same warm
# machine: kernels + executor with the kernels' checks, then llvm with the
# executor's (device-check.sh unpacks every archive it is given into one
# tree under .gpu/, which stays between calls while the machine is warm).
#
# Left out, to be the machine's own: the C library and its loader (the
# binaries need glibc 2.36 or later), cuBLASLt and NCCL (hundreds of MB;
# device-check.sh finds the CUDA 13 ones there). libcudart goes along. With
# --skip-libs FILE, the sonames listed in FILE are left out too (those the
# machine has: `device-check.sh probe` writes the list).
#
#   bench/gpu/bundle.sh kernels executor llvm
#   bench/gpu/bundle.sh --skip-libs system-libs.txt llvm
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
source "$root/bench/gpu/env.sh"
skip_file=""
if [[ ${1:-} == --skip-libs ]]; then
  skip_file=$2
  shift 2
fi
if (($# == 0)); then
  echo "usage: bench/gpu/bundle.sh [--skip-libs FILE] kernels|executor|llvm..." >&2
  exit 2
fi
out="$root/.gpu"
mkdir -p "$out"
# The C library's own and the CUDA libraries the machine brings.
system='^(libc|libm|libdl|librt|libpthread|libresolv|libutil|ld-linux-x86-64)\.so|^libcuda\.so|^libcublas(Lt)?\.so|^libnccl\.so'
# What travels besides a part: the repository's files (not the ignored ones).
repo_bytes=$(cd "$root" &&
  git ls-files -z --cached --others --exclude-standard |
  xargs -0 stat -c %s 2> /dev/null | awk '{s += $1} END {print s + 0}')
llvm_lib=$(llvm-config-22 --libdir)/libLLVM.so.$(llvm-config-22 --version |
  cut -d. -f1,2)
# "soname path" for every library the arguments load (ldd's closure, one
# path per soname), but the system's and the skipped ones.
libraries() {
  ldd "$@" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | sort -u -k1,1 |
    while read -r soname path; do
      if [[ $soname =~ $system && $soname != libcudart.so* ]] ||
        { [[ -n $skip_file ]] && grep -qxF "$soname" "$skip_file"; }; then
        continue
      fi
      echo "$soname $path"
    done
}
for part in "$@"; do
  objects=()
  case $part in
  kernels) targets=(MLLMCUDAGpuTests MLLMCUDATests mllm-bench-attention-gpu) ;;
  executor) targets=(mllmc mllm-run) ;;
  llvm) targets=() objects=("$llvm_lib") ;;
  *)
    echo "bundle.sh: no part '$part' (kernels, executor, llvm)" >&2
    exit 2
    ;;
  esac
  stage=$(mktemp -d)
  mkdir -p "$stage/bin" "$stage/lib"
  if ((${#targets[@]})); then
    gpu_bin "${targets[@]}"
    for t in "${targets[@]}"; do
      strip -o "$stage/bin/$t" "$bin/$t"
      objects+=("$bin/$t")
    done
  fi
  missing=$(ldd "${objects[@]}" | awk '/not found/ {print $1}' | sort -u)
  if [[ -n $missing ]]; then
    echo "bundle.sh: $part: libraries not found here: $missing" >&2
    exit 1
  fi
  # The executor's libraries but those of the llvm part.
  leave=()
  [[ $part == executor ]] && mapfile -t leave < <(
    echo "${llvm_lib##*/}"
    libraries "$llvm_lib" | cut -d' ' -f1)
  [[ $part == llvm ]] && cp -L "$llvm_lib" "$stage/lib/"
  : > "$out/$part.libs"
  libraries "${objects[@]}" | while read -r soname path; do
    if [[ " ${leave[*]} " == *" $soname "* ]]; then
      continue
    fi
    cp -L "$path" "$stage/lib/$soname"
    echo "$soname" >> "$out/$part.libs"
  done
  [[ $part == llvm ]] && echo "${llvm_lib##*/}" >> "$out/$part.libs"
  # The list goes along: device-check.sh probe says which the machine has.
  cp "$out/$part.libs" "$stage/"
  tar -C "$stage" -cf - bin lib "$part.libs" | xz -T0 -9 > "$out/$part.tar.xz"
  rm -rf "$stage"
  bytes=$(stat -c %s "$out/$part.tar.xz")
  awk -v part="$part" -v b="$bytes" -v r="$repo_bytes" \
    -v n="$(wc -l < "$out/$part.libs")" 'BEGIN {
    m = 1048576
    printf "%s: .gpu/%s.tar.xz, %.1f MiB (%d libraries); with the repository (%.1f MiB) %.1f MiB of the 64 a call carries%s\n",
      part, part, b / m, n, r / m, (b + r) / m,
      (b + r > 64 * m ? ": too much, use --skip-libs" : "")
  }'
done
