#!/usr/bin/python3
"""Cross-check of every CPU layer against its PyTorch mirror.

Usage: torch_layers_check.py DRIVER OUTDIR

Runs MLLMRuntimeCPUTorchDriver, which writes one safetensors file per layer
case (float32 parameters, inputs, outputs and gradients of the C++ layer),
then for each case builds the module of test/runtime/torch_layers.py, loads
the parameters by name (strictly: every name and shape must match), and
recomputes the output and, with autograd, the input and parameter
gradients. Also checks that the Python port of initParam gives the C++
values bit for bit.

The reference runs in float64 on the float32 values, so the difference is
the C++ float32 rounding alone: max |cpp - ref| / max |ref| per tensor must
stay under 1e-5 (measured: a few 1e-7). The key bias gradient is zero in
exact arithmetic (softmax ignores a shift shared by a query's scores), so
it is held to 1e-5 of the key weight gradient's magnitude instead.

Exit codes: 0 pass, 1 mismatch, 77 torch missing (reported as a skip).
"""

import json
import os
import struct
import subprocess
import sys

try:
    import torch
except ImportError:
    print("SKIP: torch is not importable by %s" % sys.executable)
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "runtime"))
import torch_layers as tl  # noqa: E402

TOLERANCE = 1e-5
DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}
# Gradients that are zero in exact arithmetic, and the gradient whose
# magnitude scales their rounding noise.
ZERO_GRADIENTS = {"bk": "wk"}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    tensors = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        raw = bytearray(data[base + b:base + e])
        t = torch.frombuffer(raw, dtype=DTYPES[info["dtype"]]) if raw else \
            torch.zeros(0, dtype=DTYPES[info["dtype"]])
        tensors[name] = t.reshape(info["shape"])
    return tensors, meta


def rel_error(got, ref, scale=None):
    got, ref = got.double(), ref.double()
    if got.shape != ref.shape:
        return float("inf")
    denom = scale if scale is not None else ref.abs().max().item()
    diff = (got - ref).abs().max().item()
    return diff / denom if denom > 0 else diff


def check_case(path):
    t, meta = read_safetensors(path)
    name, kind = meta["name"], meta["kind"]
    config = json.loads(meta["config"])
    problems, worst = [], 0.0

    def compare(what, got, ref, scale=None, tol=TOLERANCE):
        nonlocal worst
        err = rel_error(got, ref, scale)
        worst = max(worst, err)
        if not err <= tol:
            problems.append("%s: relative error %.3g > %g" % (what, err, tol))

    # initParam's Python port, bit for bit (float32 rounding of float64).
    fresh = tl.make_layer(kind, config)
    tl.init_module(fresh, meta["init_prefix"], int(meta["init_seed"]))
    state = fresh.state_dict()
    for key, value in t.items():
        if key.startswith("init."):
            pname = key[len("init."):]
            if not torch.equal(state[pname].float(), value):
                problems.append("init of %s differs from the Python port" %
                                pname)

    module = tl.make_layer(kind, config).double()
    params = {k[len("param."):]: v.double() for k, v in t.items()
              if k.startswith("param.")}
    if "pos_weight" in params and config.get("position") == "sinusoidal":
        compare("sinusoidal table", params["pos_weight"],
                tl.sinusoids(config["positions"], config["hidden"]), tol=1e-7)
    try:
        module.load_state_dict(params, strict=True)
    except RuntimeError as e:
        return name, ["parameter names or shapes differ: %s" % e], worst
    tied = None
    if "tied.weight" in t:
        tied = t["tied.weight"].double().requires_grad_()
        module.bind_tied_weight(tied)

    batch = tl.Batch(sequences=int(meta["sequences"]),
                     tokens=int(meta["tokens"]),
                     loss_scale=float(meta["loss_scale"]))
    batch.words = t.get("batch.words")
    batch.segments = t.get("batch.segments")
    batch.positions = t.get("batch.positions")
    batch.token_ids = t.get("batch.token_ids")
    batch.targets = t.get("batch.targets")
    if "batch.media" in t:
        batch.media = t["batch.media"].double()
    x = t["in"].double().requires_grad_() if "in" in t else None

    out = module(x, batch)
    compare("out", t["out"], out)
    dout = t["dout"].double()
    loss = out.sum() if kind == "lm_head" else (out * dout).sum()
    loss.backward()
    if x is not None:
        compare("din", t["din"], x.grad)
    elif "din" in t:
        problems.append("an input layer wrote an input gradient")
    named = dict(module.named_parameters())
    for key, value in t.items():
        if not key.startswith("grad."):
            continue
        pname = key[len("grad."):]
        ref = tied.grad if pname == "tied.weight" else named[pname].grad
        scale = None
        if pname in ZERO_GRADIENTS:
            scale = named[ZERO_GRADIENTS[pname]].grad.abs().max().item()
        compare(key, value, ref, scale)
    trained = {k[len("grad."):] for k in t if k.startswith("grad.")}
    for pname, p in named.items():
        if pname not in trained:
            problems.append("no gradient written for %s" % pname)
    return name, problems, worst


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    driver, outdir = sys.argv[1], sys.argv[2]
    os.makedirs(outdir, exist_ok=True)
    for f in os.listdir(outdir):
        if f.endswith(".safetensors"):
            os.remove(os.path.join(outdir, f))
    torch.set_num_threads(2)
    names = subprocess.run([driver, outdir], check=True, capture_output=True,
                           text=True).stdout.split()
    if not names:
        print("FAIL: the driver wrote no case")
        return 1
    failed = 0
    for case in names:
        name, problems, worst = check_case(
            os.path.join(outdir, case + ".safetensors"))
        print("%-40s max relative error %.2e %s" %
              (name, worst, "FAIL" if problems else "ok"))
        for p in problems:
            print("    " + p)
        failed += bool(problems)
    print("%d of %d cases match PyTorch" % (len(names) - failed, len(names)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
