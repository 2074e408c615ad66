"""interop.py - safetensors interop between our C++ code and PyTorch.

Usage: interop.py DRIVER DOC WORKDIR

1. DRIVER writes a file with SafeTensorsWriter; this script reads it with
   nothing but json, struct and torch.frombuffer (on a bytearray copy),
   checks the layout the docs promise (padding, key order, contiguous data)
   and every value, then reads it again with the load_safetensors() printed
   in DOC (docs/checkpoints.md), so the documented snippet is tested.
2. This script writes a file the way the public format says (F32, BF16, I64
   and an empty tensor; unpadded header, metadata last) and DRIVER checks
   it with SafeTensorsFile.

Exit codes: 0 pass, 1 fail, 77 skip (torch is not importable; CTest's
SKIP_RETURN_CODE).
"""

import json
import math
import os
import re
import struct
import subprocess
import sys

SKIP = 77


class Checker:
    def __init__(self):
        self.failures = 0

    def expect(self, ok, what):
        if not ok:
            self.failures += 1
            print("FAIL:", what)


# What DRIVER write produces (InteropDriver.cpp defines the same values).
EXPECTED = {
    "model.weight": ("F32", [2, 3], [i * 0.5 - 1.0 for i in range(6)]),
    "model.bias": ("F64", [3], [1.0 / 3.0, -0.0, 1e300]),
    "optim.step": ("I64", [], [1234567890123]),
    "rng.state": ("I64", [4], [-1, 0, 2**62, -(2**63)]),
    "small": ("I32", [2], [-7, 7]),
    "half": ("F16", [3], [1.0, -2.0, 65504.0]),
    "brain": ("BF16", [3], [1.0, -2.5, 3.140625]),
    "empty": ("F32", [0, 4], []),
    "mask": ("BOOL", [3], [True, False, True]),
    "bytes": ("U8", [2], [0, 255]),
    "signed_bytes": ("I8", [2], [-128, 127]),
    "shorts": ("I16", [2], [-32768, 32767]),
}
EXPECTED_META = {"step": "1234567890123", "plan_hash": "abc123"}


def same_values(got, want):
    if len(got) != len(want):
        return False
    for g, w in zip(got, want):
        if isinstance(w, float):
            # Bitwise for floats: -0.0 must stay negative.
            if struct.pack("<d", float(g)) != struct.pack("<d", w):
                return False
        elif g != w:
            return False
    return True


def check_ours(torch, path, doc, c):
    dtypes = {"F64": torch.float64, "F32": torch.float32,
              "F16": torch.float16, "BF16": torch.bfloat16,
              "I64": torch.int64, "I32": torch.int32, "I16": torch.int16,
              "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    text = blob[8:8 + n].decode("utf-8")
    c.expect(n % 8 == 0, f"header length {n} is a multiple of 8")
    body = text.rstrip(" ")
    c.expect(body.endswith("}") and len(text) - len(body) < 8,
             "header padding is fewer than 8 spaces")
    header = json.loads(text)
    c.expect(json.dumps(header, separators=(",", ":")) == body,
             "compact JSON")
    c.expect(list(header) == ["__metadata__"] + list(EXPECTED),
             f"key order: {list(header)}")
    meta = header.pop("__metadata__", {})
    c.expect(meta == EXPECTED_META, f"metadata {meta}")
    c.expect(list(meta) == sorted(meta), "metadata keys sorted")
    data = blob[8 + n:]
    offset = 0
    for name, info in header.items():
        c.expect(list(info) == ["dtype", "shape", "data_offsets"],
                 f"{name}: entry key order {list(info)}")
        begin, end = info["data_offsets"]
        c.expect(begin == offset, f"{name}: data starts at {offset}")
        offset = end
        dtype_name, shape, values = EXPECTED[name]
        c.expect(info["dtype"] == dtype_name, f"{name}: dtype")
        c.expect(info["shape"] == shape, f"{name}: shape")
        dtype = dtypes[info["dtype"]]
        if begin == end:
            t = torch.empty(shape, dtype=dtype)
        else:
            t = torch.frombuffer(bytearray(data[begin:end]), dtype=dtype)
        t = t.reshape(info["shape"])
        c.expect(list(t.shape) == shape, f"{name}: tensor shape")
        got = t.flatten().tolist()
        c.expect(same_values(got, values), f"{name}: {got} != {values}")
    c.expect(offset == len(data), "data ends with the last tensor")

    # The documented loader must agree.
    load = documented_loader(doc)
    tensors, meta2 = load(path)
    c.expect(meta2 == EXPECTED_META, "documented loader: metadata")
    c.expect(list(tensors) == list(EXPECTED), "documented loader: order")
    for name, (dtype_name, shape, values) in EXPECTED.items():
        t = tensors.get(name)
        ok = (t is not None and t.dtype == dtypes[dtype_name]
              and list(t.shape) == shape
              and same_values(t.flatten().tolist(), values))
        c.expect(ok, f"documented loader: {name}")


def documented_loader(doc):
    """The ```python block of DOC that defines load_safetensors."""
    with open(doc, encoding="utf-8") as f:
        text = f.read()
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        if "def load_safetensors" in block:
            scope = {}
            exec(compile(block, doc, "exec"), scope)
            return scope["load_safetensors"]
    raise SystemExit(f"FAIL: no load_safetensors snippet in {doc}")


def write_theirs(torch, path):
    """A file written from the public format description alone."""
    tensors = {
        "linear.weight":
            torch.arange(12, dtype=torch.float32).reshape(3, 4) * 0.25 - 1.5,
        "linear.bias": torch.tensor([1.0, -2.5, 0.15625, 65536.0, -0.0078125],
                                    dtype=torch.bfloat16),
        "step": torch.tensor(-42, dtype=torch.int64),
        "empty": torch.zeros(0, 3),
    }
    names = {torch.float32: "F32", torch.bfloat16: "BF16",
             torch.int64: "I64"}
    header, chunks, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.contiguous()
        # numpy has no bfloat16: take its bits as int16.
        raw = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t)
        raw = raw.numpy().tobytes()
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        chunks.append(raw)
    # Metadata last, default separators, no padding: unlike our writer.
    header["__metadata__"] = {"producer": "python", "step": "7"}
    text = json.dumps(header).encode("utf-8")
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    driver, doc, work = sys.argv[1:]
    try:
        import torch
    except Exception as e:  # ImportError, or a broken install
        print(f"SKIP: torch is not importable by {sys.executable}: {e}")
        return SKIP
    print(f"torch {torch.__version__} from {sys.executable}")
    os.makedirs(work, exist_ok=True)
    c = Checker()

    ours = os.path.join(work, "ours.safetensors")
    if os.path.exists(ours):
        os.remove(ours)
    subprocess.run([driver, "write", ours], check=True)
    check_ours(torch, ours, doc, c)

    theirs = os.path.join(work, "theirs.safetensors")
    write_theirs(torch, theirs)
    r = subprocess.run([driver, "check", theirs])
    c.expect(r.returncode == 0, f"driver check exit code {r.returncode}")

    if c.failures:
        print(f"{c.failures} failure(s)")
        return 1
    print("interop OK: ours -> torch, torch -> ours")
    return 0


if __name__ == "__main__":
    sys.exit(main())
