"""Times the PyTorch reference model (test/runtime/torch_model.py) on the
batches and initial weights mllm-run used, with the same thread count, and
prints its tokens/s per step. Used by bench/runtime/run.sh."""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "test", "runtime"))

import torch
import yaml

import torch_model


def main():
    plan_path, ckpt_dir, steps, threads = sys.argv[1:5]
    steps, threads = int(steps), int(threads)
    torch.set_num_threads(threads)
    with open(plan_path) as f:
        plan = yaml.safe_load(f)
    init, _ = torch_model.load_safetensors(
        os.path.join(ckpt_dir, "step-00000000.safetensors"))
    batches, _ = torch_model.load_safetensors(
        os.path.join(ckpt_dir, "batches.safetensors"))
    d = plan["data"]
    tokens = (plan["job"]["dp"] * d["microbatches"] * d["microbatch_size"] *
              d["seq_len"])
    times = []
    start = time.perf_counter()
    last = start

    # torch_model.train runs all steps; time them one by one.
    def hook():
        nonlocal last
        now = time.perf_counter()
        times.append(now - last)
        last = now

    torch_model.train(plan, init, batches, steps, on_step=hook)
    for i, t in enumerate(times):
        print("torch step %d: %.1f ms, %.0f tokens/s" % (i + 1, t * 1e3,
                                                          tokens / t))


if __name__ == "__main__":
    main()
