# Checks a Chrome trace written by mllm-sim --trace: valid JSON, argv[2]
# named threads (one per stage), and complete ("X") events only on them.
import json
import sys

with open(sys.argv[1]) as f:
    d = json.load(f)
events = d["traceEvents"]
threads = {e["tid"]: e["args"]["name"] for e in events
           if e["ph"] == "M" and e["name"] == "thread_name"}
assert len(threads) == int(sys.argv[2]), threads
used = {e["tid"] for e in events if e["ph"] == "X"}
assert used == set(threads), (used, threads)
names = {e["name"] for e in events if e["ph"] == "X"}
assert "F0" in names, names
