"""Checks the arena line of mllm-device-twin's output.

  check_device_arena.py RUN.out

The device executor keeps everything in one arena laid out by the static
memory plan of the one-process program: the highest byte its steps used
must be the planned size, and, since one microbatch is in flight at a time
and each workspace lives for one action, the arena must be exactly one
buffer of each kind (weights, gradients, moments, one microbatch's saved
activations, one workspace) while allocating every buffer on its own would
take more. Exit status 0 when all hold, 1 (with the line) otherwise.
"""

import json
import sys


def main():
    lines = [json.loads(l) for l in open(sys.argv[1])
             if l.startswith("{") and '"event":"arena"' in l]
    if len(lines) != 1:
        print("expected one arena line, found %d" % len(lines))
        return 1
    a = lines[0]
    one_of_each = sum(a[k] for k in
                      ("weights", "grads", "optimizer", "saved", "workspace"))
    ok = (a["measured_bytes"] == a["arena_bytes"] == one_of_each and
          a["arena_bytes"] < a["unshared_bytes"])
    print("arena %d bytes, measured %d, one of each kind %d, unshared %d" %
          (a["arena_bytes"], a["measured_bytes"], one_of_each,
           a["unshared_bytes"]))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
