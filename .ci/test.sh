#!/usr/bin/env bash
# Builds (installing what is missing) and runs every test through CTest:
# the README's second command, and what CI runs. Then the sanitizer
# configuration: the whole suite again in a second tree built with
# AddressSanitizer + UBSan (MLLM_SANITIZE), every report fatal, at -O1 and
# without the benchmarks; only that tree has the fuzz targets (CTest label
# `fuzz`). MLLM_SKIP_SANITIZER=1 skips it (a quicker local run, without
# fuzzing).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# Each phase's wall time, so that CI's 30-minute budget (README,
# "Developing") can be kept an eye on.
phase_start=$SECONDS
phase() {
  echo "== $1: $((SECONDS - phase_start)) s"
  phase_start=$SECONDS
}
"$root/.ci/build.sh" > /dev/null
phase build
build="${MLLM_BUILD_DIR:-$root/build}"
"$root/.ci/format.sh"
# With a CUDA toolkit, the backend and its host twins (which run the GPU
# code paths on the CPU here) must have been built, or their tests would
# silently not exist (unless configured with -DMLLM_ENABLE_CUDA=OFF).
if grep -q '^MLLM_ENABLE_CUDA:BOOL=OFF' "$build/CMakeCache.txt"; then
  echo "note: MLLM_ENABLE_CUDA is OFF: the CUDA backend is not built"
elif [[ -x /usr/local/cuda/bin/nvcc ]] || command -v nvcc > /dev/null; then
  if [[ ! -x "$build/bin/mllm-run-twin" ]]; then
    echo "error: a CUDA toolkit is installed, but $build has no CUDA" \
      "backend (bin/mllm-run-twin); see CMake's 'CUDA backend' message" >&2
    exit 1
  fi
else
  echo "note: no CUDA toolkit here: the CUDA backend and its host-twin" \
    "tests are not built"
fi
ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
phase tests

[[ ${MLLM_SKIP_SANITIZER:-0} == 1 ]] && exit 0
san="${MLLM_SANITIZER_BUILD_DIR:-$root/build-san}"
if [[ ! -f "$san/build.ninja" ]]; then
  CC=clang-22 CXX=clang++-22 cmake -G Ninja -S "$root" -B "$san" \
    -DCMAKE_BUILD_TYPE=Release \
    "-DCMAKE_C_FLAGS_RELEASE=-O1 -gline-tables-only" \
    "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -gline-tables-only" \
    -DMLLM_SANITIZE=ON -DMLLM_BUILD_BENCH=OFF \
    -DMLLM_ENABLE_CUDA=OFF \
    > /dev/null
fi
ninja -C "$san" -j "$(nproc)" > "$san/ninja.log" || {
  tail -50 "$san/ninja.log"
  exit 1
}
phase "sanitizer build"
# Leaks are not checked (the tools keep their MLIRContext to the end); any
# other report aborts the process, so a test that expects a failure (`not`)
# still sees a crash. The fuzz tests set their own options.
ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:abort_on_error=1 \
UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1 \
  ctest --test-dir "$san" --output-on-failure -j "$(nproc)"
phase "sanitizer tests"
