#!/usr/bin/env bash
# Fails if clang-format-22 would change any of our C++ sources.
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files '*.cpp' '*.h' '*.cu' '*.cuh' 2>/dev/null || true)
[[ -z "$files" ]] && exit 0
bad=$(for f in $files; do
  [[ -f "$f" ]] && ! clang-format-22 --dry-run -Werror "$f" >/dev/null 2>&1 && echo "$f"
done || true)
if [[ -n "$bad" ]]; then
  echo "clang-format-22 would change:"; echo "$bad"
  echo "run: clang-format-22 -i <files>"
  exit 1
fi
