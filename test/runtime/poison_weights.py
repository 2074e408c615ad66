#!/usr/bin/env python3
"""Sets tensors of a safetensors file to NaN in place (F32 only): a model
whose logits are all NaN, for the tests of what a run does with one.

  poison_weights.py FILE NAME...
"""
import json
import struct
import sys


def main():
    path, names = sys.argv[1], sys.argv[2:]
    with open(path, "r+b") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
        for name in names:
            info = header.get(name)
            if info is None or info["dtype"] != "F32":
                sys.exit("%s: no F32 tensor '%s'" % (path, name))
            begin, end = info["data_offsets"]
            f.seek(8 + size + begin)
            f.write(struct.pack("<f", float("nan")) * ((end - begin) // 4))
    return 0


if __name__ == "__main__":
    sys.exit(main())
