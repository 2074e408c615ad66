# Checks a Chrome trace written by mllm-sim --trace: valid JSON, argv[3]
# processes (one per stage, named), argv[2] named threads in them, and
# complete ("X") events only on those threads, in their process. argv[4]:
# "ranks" when every thread is one rank ("rank R", tid R, every rank once),
# "stages" when each process has one thread named after its rank range.
import json
import sys

with open(sys.argv[1]) as f:
    d = json.load(f)
events = d["traceEvents"]
threads, expected_processes = int(sys.argv[2]), int(sys.argv[3])
layout = sys.argv[4] if len(sys.argv) > 4 else None
processes = {e["pid"]: e["args"]["name"] for e in events
             if e["ph"] == "M" and e["name"] == "process_name"}
assert len(processes) == expected_processes, processes
names = {(e["pid"], e["tid"]): e["args"]["name"] for e in events
         if e["ph"] == "M" and e["name"] == "thread_name"}
assert len(names) == threads, names
assert {pid for pid, _ in names} == set(processes), (names, processes)
used = {(e["pid"], e["tid"]) for e in events if e["ph"] == "X"}
assert used == set(names), (used, names)
if layout == "ranks":
    tids = sorted(tid for _, tid in names)
    assert tids == list(range(threads)), tids
    for (pid, tid), name in names.items():
        assert name == "rank %d" % tid, (pid, tid, name)
    # Every rank of a stage shows the same events.
    per_thread = {}
    for e in events:
        if e["ph"] == "X":
            per_thread.setdefault((e["pid"], e["tid"]), []).append(
                (e["name"], e["ts"], e["dur"]))
    for pid in processes:
        lists = [v for (p, _), v in per_thread.items() if p == pid]
        assert all(l == lists[0] for l in lists), pid
elif layout == "stages":
    assert len(names) == len(processes), names
    for name in names.values():
        assert name.startswith("rank") or " ranks in " in name, name
x_names = {e["name"] for e in events if e["ph"] == "X"}
assert "F0" in x_names, x_names
