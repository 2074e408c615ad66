"""Reads two mllm-sim --json files: the first plan's simulated iteration
must be shorter than the second's."""
import json
import sys

first, second = (json.load(open(p))["iteration_ms"] for p in sys.argv[1:3])
assert first < second, f"{first} ms is not shorter than {second} ms"
print(f"{first:.3f} ms < {second:.3f} ms")
