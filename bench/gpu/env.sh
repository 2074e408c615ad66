# shellcheck shell=bash disable=SC2034  # bin, python: for the caller
# Sourced by the GPU scripts of bench/gpu (bash): where the binaries are and
# which Python does the figures' arithmetic, here and on a GPU machine that
# cannot build the project (bench/gpu/bundle.sh, device-check.sh).
#
#   gpu_bin TARGET...   sets $bin: $MLLM_BIN as it is when set (a folder of
#                       prebuilt binaries, such as a bundle's bin/), else the
#                       build tree's bin/ ($MLLM_BUILD_DIR or build/, configured
#                       when it is not yet) after building TARGET...
#   gpu_python MODULE...
#                       sets $python: the first of /usr/bin/python3 (Debian's,
#                       where the tests run) and python3 (on the GPU machines,
#                       the interpreter that holds PyTorch) that imports every
#                       MODULE; an error when none does.

gpu_bin() {
  if [[ -n ${MLLM_BIN:-} ]]; then
    bin=$MLLM_BIN
    return
  fi
  local root build
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  build="${MLLM_BUILD_DIR:-$root/build}"
  if [[ ! -f "$build/build.ninja" ]]; then
    CC=clang-22 CXX=clang++-22 cmake -G Ninja -S "$root" -B "$build" \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
  fi
  ninja -C "$build" --quiet "$@"
  bin=$build/bin
}

gpu_python() {
  local candidate imports
  imports=$(printf 'import %s;' "$@")
  for candidate in /usr/bin/python3 python3; do
    if command -v "$candidate" > /dev/null &&
        "$candidate" -c "$imports" 2> /dev/null; then
      python=$candidate
      return
    fi
  done
  echo "no Python here imports $*" >&2
  return 1
}
