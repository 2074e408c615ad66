# Reads mllm-sim --json from stdin; checks that it parses, that the
# iteration is argv[1] ms (to 1e-3 ms) and that there are argv[2] stages.
import json
import sys

d = json.load(sys.stdin)
expected, stages = float(sys.argv[1]), int(sys.argv[2])
assert abs(d["iteration_ms"] - expected) < 1e-3, d["iteration_ms"]
assert len(d["stages"]) == stages, d["stages"]
for key in ["schedule", "partition", "microbatches", "gpus", "tokens_per_s",
            "mfu", "bubble", "peak_memory_bytes", "events"]:
    assert key in d, key
for s in d["stages"]:
    for key in ["name", "part", "fwd_ms", "bwd_weight_ms", "bwd_input_ms",
                "recompute_ms",
                "busy_ms", "comm_ms", "bubble", "max_in_flight",
                "peak_memory_bytes"]:
        assert key in s, key
