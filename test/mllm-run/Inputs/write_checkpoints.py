"""Writes the checkpoints compare-params.test compares (safetensors by hand,
so the test does not depend on the code it checks)."""
import json
import struct
import sys

import numpy as np


def write(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, (dtype, arr) in tensors.items():
        raw = arr.tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def bf16(values):  # the high halves of float32 values exact in bf16
    return (np.array(values, np.float32).view(np.uint32) >> 16).astype(
        np.uint16)


d = sys.argv[1]
w = np.array([[1.0, 2.0], [3.0, 10.0]], np.float32)
b = bf16([1.5, -2.0])
write(d + "/a.safetensors", {"model.w": ("F32", w), "model.b": ("BF16", b)})
write(d + "/same.safetensors", {"model.w": ("F32", w.copy()),
                                "model.b": ("BF16", b)})
nan = w.copy()
nan[0, 1] = np.nan
write(d + "/nan.safetensors", {"model.w": ("F32", nan),
                               "model.b": ("BF16", b)})
write(d + "/extra.safetensors", {"model.w": ("F32", w), "model.b": ("BF16", b),
                                 "model.x": ("F32", w)})
off = w.copy()
off[1, 1] = 10.01  # 1e-3 relative
write(d + "/off.safetensors", {"model.w": ("F32", off),
                               "model.b": ("BF16", b)})
write(d + "/bf16.safetensors", {"model.w": ("F32", w),
                                "model.b": ("BF16", bf16([1.5, -1.5]))})
