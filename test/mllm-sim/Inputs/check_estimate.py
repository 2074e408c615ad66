"""Checks mllm-sim --json: mllmc's estimate within a relative tolerance of
the simulated iteration (argv[1], e.g. 0.03)."""
import json
import sys

tolerance = float(sys.argv[1])
d = json.load(sys.stdin)
sim, est = d["iteration_ms"], d["estimate_ms"]
error = abs(est - sim) / sim
assert error <= tolerance, f"estimate {est} ms vs simulated {sim} ms: {error:.1%}"
print(f"estimate {est:.3f} ms, simulated {sim:.3f} ms: {error:.2%}")
