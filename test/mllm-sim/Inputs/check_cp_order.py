"""Checks mllm-sim --compare --json on a spec with cp > 1: the CP policy
rows are ordered lpt ~ ilp < zigzag < uniform in both the simulated
iteration and mllmc's estimate."""
import json
import sys

rows = {r["variant"]: r for r in json.load(sys.stdin)["compare"]}
lpt = rows["frozen-aware"]  # the spec's own policy
assert lpt["cp_balance"] == "lpt", lpt
for key in ("iteration_ms", "estimate_ms"):
    order = [lpt[key], rows["cp-ilp"][key], rows["cp-zigzag"][key],
             rows["cp-uniform"][key]]
    assert abs(order[1] - order[0]) <= 1e-3 * order[0], (key, order)
    assert order[0] < order[2] < order[3], (key, order)
    assert order[3] > 1.3 * order[0], (key, order)
print("cp order ok")
