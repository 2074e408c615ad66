#!/usr/bin/env bash
# Checks the include rules between the top-level folders (design.md §3):
#   compiler -> dialects, runtime, kernels
#   runtime  -> kernels
#   dialects -> (nothing of ours)
#   kernels  -> (nothing of ours)
# Every `#include "mllm/..."` in a folder's sources must name a header of the
# folder itself or of one it may depend on. Tests, benchmarks and tools'
# sources follow the rule of the folder their target links into; they are
# free to include anything (they sit on top).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

# Which top-level folder owns a header path "mllm/..."; generated headers
# (.inc, .h.inc) sit next to their sources in the build tree.
owner() {
  local header="$1"
  for dir in compiler dialects runtime kernels; do
    if [[ -e "$dir/include/$header" ]]; then
      echo "$dir"
      return
    fi
  done
  case "$header" in
    mllm/Dialect/*) echo dialects ;;
    mllm/Transforms/*) echo compiler ;;
    *) echo unknown ;;
  esac
}

allowed() {
  local from="$1" to="$2"
  [[ "$from" == "$to" ]] && return 0
  case "$from:$to" in
    compiler:dialects | compiler:runtime | compiler:kernels) return 0 ;;
    runtime:kernels) return 0 ;;
  esac
  return 1
}

status=0
for dir in compiler dialects runtime kernels; do
  while IFS= read -r line; do
    file="${line%%:*}"
    rest="${line#*:}"
    lineno="${rest%%:*}"
    header="$(sed -E 's/.*#include "([^"]+)".*/\1/' <<<"$rest")"
    to="$(owner "$header")"
    if [[ "$to" == unknown ]]; then
      echo "$file:$lineno: includes '$header', which no folder provides" >&2
      status=1
    elif ! allowed "$dir" "$to"; then
      echo "$file:$lineno: $dir/ may not include '$header' (from $to/)" >&2
      status=1
    fi
  done < <(grep -rnE '^#include "mllm/' "$dir" --include='*.h' \
             --include='*.cpp' --include='*.cu' --include='*.cuh' || true)
done
if [[ $status -eq 0 ]]; then
  echo "layers: every #include \"mllm/...\" follows the dependency rules"
fi
exit $status
