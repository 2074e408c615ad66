"""Compares two training runs of the same plan (e.g. one process vs mpirun).

  compare_runs.py losses A.jsonl B.jsonl [--rtol R] [--common]
      every step's loss of B within R (relative) of A's, same steps
      (--common: the steps both have, at least one; a resumed run).
  compare_runs.py eval A.jsonl B.jsonl [--rtol R] [--accuracy-atol T]
      every --eval line's loss of B within R of A's, the same steps,
      counted tokens and samples, and with T its accuracy within T of A's.
  compare_runs.py generate A.jsonl B.jsonl
      every --generate event of B has A's prompt line, tokens and stop.
  compare_runs.py params A B [--rtol R] [--atol T]
      checkpoints A and B (.safetensors files or directories of shards)
      hold the same tensors, at least one, with the same shapes and finite
      values of B within tolerance of A's (|a - b| <= atol + rtol |a|).
  compare_runs.py frozen INITIAL FINAL
      the parameters without optimizer moments (frozen) are bit-identical
      between two checkpoints, and at least one exists.

Exit status 0 on agreement, 1 on a mismatch (printed). Needs numpy only.
"""

import argparse
import json
import os
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64,
          "BF16": np.uint16, "F16": np.float16}


def read_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        arr = np.frombuffer(data[begin:end], dtype=DTYPES[info["dtype"]])
        if info["dtype"] == "BF16":  # the high half of a float32
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        out[name] = arr.reshape(info["shape"])
    return out


def read_checkpoint(path):
    if not os.path.isdir(path):
        return read_safetensors(path)
    out = {}
    for name in sorted(os.listdir(path)):
        if name.endswith(".safetensors"):
            for k, v in read_safetensors(os.path.join(path, name)).items():
                out.setdefault(k, v)
    return out


def losses(path):
    steps = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            ev = json.loads(line)
            if ev.get("event") == "step":
                steps[ev["step"]] = ev["loss"]
    return steps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what",
                    choices=["losses", "eval", "generate", "params", "frozen"])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--rtol", type=float, default=1e-5)
    ap.add_argument("--atol", type=float, default=0.0)
    ap.add_argument("--common", action="store_true")
    ap.add_argument("--accuracy-atol", type=float, default=None,
                    help="eval: also each accuracy within this of A's")
    args = ap.parse_args()
    bad = []
    if args.what == "losses":
        a, b = losses(args.a), losses(args.b)
        if args.common:
            a = {s: a[s] for s in a if s in b}
            b = {s: b[s] for s in a}
        if not a or sorted(a) != sorted(b):
            print("steps differ: %s vs %s" % (sorted(a), sorted(b)))
            return 1
        for s in sorted(a):
            if a[s] is None or b[s] is None:  # not finite: null in JSON
                bad.append("step %d: loss %s vs %s" % (s, a[s], b[s]))
            elif abs(a[s] - b[s]) > args.rtol * abs(a[s]):
                bad.append("step %d: loss %.9g vs %.9g" % (s, a[s], b[s]))
        print("%d steps compared" % len(a))
    elif args.what == "eval":
        def evals(path):
            with open(path) as f:
                return [json.loads(line) for line in f
                        if line.startswith("{") and '"event":"eval"' in line]
        a, b = evals(args.a), evals(args.b)
        if not a or [e["step"] for e in a] != [e["step"] for e in b]:
            print("evaluations differ: steps %s vs %s" %
                  ([e["step"] for e in a], [e["step"] for e in b]))
            return 1
        for x, y in zip(a, b):
            for key in ("tokens", "samples"):
                if x[key] != y[key]:
                    bad.append("eval at step %d: %d %s vs %d" %
                               (x["step"], x[key], key, y[key]))
            if x["loss"] is None or y["loss"] is None:  # not finite
                bad.append("eval at step %d: loss %s vs %s" %
                           (x["step"], x["loss"], y["loss"]))
            elif abs(x["loss"] - y["loss"]) > args.rtol * abs(x["loss"]):
                bad.append("eval at step %d: loss %.9g vs %.9g" %
                           (x["step"], x["loss"], y["loss"]))
            if (args.accuracy_atol is not None and
                    abs(x["accuracy"] - y["accuracy"]) > args.accuracy_atol):
                bad.append("eval at step %d: accuracy %.6g vs %.6g" %
                           (x["step"], x["accuracy"], y["accuracy"]))
        print("%d evaluations compared" % len(a))
    elif args.what == "generate":
        def generated(path):
            with open(path) as f:
                return [json.loads(line) for line in f
                        if line.startswith("{") and
                        '"event":"generate"' in line]
        a, b = generated(args.a), generated(args.b)
        if not a or len(a) != len(b):
            print("generations differ: %d vs %d" % (len(a), len(b)))
            return 1
        for x, y in zip(a, b):
            for key in ("line", "tokens", "stop"):
                if x[key] != y[key]:
                    bad.append("prompt line %d: %s %s vs %s" %
                               (x["line"], key, x[key], y[key]))
        print("%d generations compared" % len(a))
    elif args.what == "params":
        a, b = read_checkpoint(args.a), read_checkpoint(args.b)
        if not a:
            bad.append("%s holds no tensor" % args.a)
        for name in sorted(set(b) - set(a)):
            bad.append("%s: only in %s" % (name, args.b))
        for name, x in a.items():
            y = b.get(name)
            if y is None or y.shape != x.shape:
                bad.append("%s: missing or another shape" % name)
                continue
            x64, y64 = x.astype(np.float64), y.astype(np.float64)
            if not (np.isfinite(x64).all() and np.isfinite(y64).all()):
                bad.append("%s: values that are not finite" % name)
                continue
            # Written so that NaN counts as a mismatch, not a pass.
            close = np.abs(x64 - y64) <= args.atol + args.rtol * np.abs(x64)
            if not close.all():
                bad.append("%s: max difference %.3g" %
                           (name, np.abs(x64 - y64).max()))
        print("%d tensors compared" % len(a))
    else:
        a, b = read_checkpoint(args.a), read_checkpoint(args.b)
        trained = {n[len("optim."):].rsplit(".", 1)[0]
                   for n in b if n.startswith("optim.")}
        frozen = [n for n in a if n.startswith("model.") and
                  n[len("model."):] not in trained]
        if not frozen:
            bad.append("no frozen parameter to compare")
        for n in frozen:
            if n not in b or not np.array_equal(a[n], b[n]):
                bad.append("%s changed" % n)
        print("%d frozen tensors compared" % len(frozen))
    for line in bad[:20]:
        print(line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
