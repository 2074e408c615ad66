#!/usr/bin/env bash
# Packs the GPU checks' binaries with the shared libraries they load, for a
# GPU machine that cannot build the project: the device machines lent to
# this project have a driver and the CUDA 13 toolkit but none of the Debian
# libraries (LLVM/MLIR, OpenBLAS, OpenMPI, ...) and no package registry.
# Builds the targets here (the build tree of bench/gpu/env.sh), strips them
# and writes one archive per part to .gpu/ (ignored by git), each complete
# on its own, so that each call of the device tool carries one:
#
#   kernels    MLLMCUDAGpuTests, MLLMCUDATests, mllm-bench-attention-gpu
#              and their libraries (about 14 MiB)
#   executor   mllmc, mllm-run (gpu_plan_vs_cpu.sh, e2e.sh, generate.sh) and
#              their libraries, libLLVM's included (about 58 MiB)
#
# A call carries at most 64 MiB with the repository's files (about 5): the
# script prints each archive's total against that. Left out, to be the
# machine's own: the C library and its loader (the binaries need glibc 2.36
# or later), cuBLASLt and NCCL (hundreds of MB; device-check.sh finds the
# CUDA 13 ones there). libcudart goes along. With --skip-libs FILE, the
# sonames listed in FILE are left out too (those the machine has:
# `device-check.sh probe` writes the list of the archives it was given),
# should an archive outgrow the limit.
#
# MLLM_BIN names a folder whose binaries are packed as they are (no build).
#
#   bench/gpu/bundle.sh kernels executor
#   bench/gpu/bundle.sh --skip-libs system-libs.txt executor
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
source "$root/bench/gpu/env.sh"
skip_file=""
if [[ ${1:-} == --skip-libs ]]; then
  skip_file=$2
  shift 2
fi
if (($# == 0)); then
  echo "usage: bench/gpu/bundle.sh [--skip-libs FILE] kernels|executor..." >&2
  exit 2
fi
# MLLM_GPU_DIR: elsewhere (the script's test).
out=${MLLM_GPU_DIR:-$root/.gpu}
mkdir -p "$out"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
# The C library's own and the CUDA libraries the machine brings.
system='^(libc|libm|libdl|librt|libpthread|libresolv|libutil|ld-linux-x86-64)\.so|^libcuda\.so|^libcublas(Lt)?\.so|^libnccl\.so'
# What travels besides a part: the repository's files (not the ignored ones).
repo_bytes=$(cd "$root" &&
  { git ls-files -z --cached --others --exclude-standard |
    xargs -0 stat -c %s 2> /dev/null || :; } |
  awk '{s += $1} END {print s + 0}')
for part in "$@"; do
  case $part in
  kernels) targets=(MLLMCUDAGpuTests MLLMCUDATests mllm-bench-attention-gpu) ;;
  executor) targets=(mllmc mllm-run) ;;
  *)
    echo "bundle.sh: no part '$part' (kernels, executor)" >&2
    exit 2
    ;;
  esac
  gpu_bin "${targets[@]}"
  rm -rf "${stage:?}"/*
  mkdir -p "$stage/bin" "$stage/lib"
  for t in "${targets[@]}"; do
    strip -o "$stage/bin/$t" "$bin/$t"
  done
  ldd "${targets[@]/#/$bin/}" > "$stage/ldd"
  if grep -q "not found" "$stage/ldd"; then
    echo "bundle.sh: $part: libraries not found here:" \
      "$(awk '/not found/ {print $1}' "$stage/ldd" | sort -u | tr '\n' ' ')" >&2
    exit 1
  fi
  # One path per soname (OpenBLAS's are reached through two).
  awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' "$stage/ldd" | sort -u -k1,1 |
    while read -r soname path; do
      if [[ $soname =~ $system && $soname != libcudart.so* ]] ||
        { [[ -n $skip_file ]] && grep -qxF "$soname" "$skip_file"; }; then
        continue
      fi
      cp -L "$path" "$stage/lib/$soname"
      echo "$soname"
    done > "$stage/$part.libs"
  rm "$stage/ldd"
  # The list goes along: device-check.sh probe says which the machine has.
  cp "$stage/$part.libs" "$out/"
  # x86 code compresses better behind xz's BCJ filter; the large dictionary
  # takes libLLVM (150 MB) whole.
  tar -C "$stage" -cf - bin lib "$part.libs" |
    xz -T1 --x86 --lzma2=preset=9e,dict=256MiB > "$out/$part.tar.xz"
  bytes=$(stat -c %s "$out/$part.tar.xz")
  awk -v part="$part" -v archive="${out#"$root"/}/$part.tar.xz" \
    -v b="$bytes" -v r="$repo_bytes" \
    -v n="$(wc -l < "$out/$part.libs")" 'BEGIN {
    m = 1048576
    printf "%s: %s, %.1f MiB (%d libraries); with the repository (%.1f MiB) %.1f MiB of the 64 a call carries%s\n",
      part, archive, b / m, n, r / m, (b + r) / m,
      (b + r > 64 * m ? ": too much, use --skip-libs" : "")
  }'
done
