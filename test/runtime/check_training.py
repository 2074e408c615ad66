"""Trains the model of a plan in PyTorch on the batches mllm-run trained on,
from the same initial weights, and checks mllm-run's losses step by step.

  check_training.py PLAN.yaml CKPT_DIR RUN.jsonl [--rtol 1e-5]

CKPT_DIR holds mllm-run's step-00000000 (initial) and final checkpoints and
batches.safetensors (--dump-batches); RUN.jsonl is its --json output.
Exit status 0: every loss within rtol, the frozen parameters of the final
checkpoint bit-identical to the initial ones, and every trained parameter's
update (final - initial) within --update-rtol of torch's, relative to the
largest element of torch's update; 77: torch or PyYAML is missing (reported
as skipped); 1: a mismatch, printed.

The losses alone do not check the last step's update (no loss reads it).
Relative to the update, not the weight: a wrong gradient changes an update
by its own size, which is 1e-2 of the weights after a few steps at lr 1e-4.
Adam normalises each element's gradient, so elements with near-zero
gradients (embedding rows of unseen tokens) amplify rounding: the observed
spread is below 3e-3 at 5 steps. The key bias is exempt: softmax ignores a
constant added to every key's score, so its exact gradient is zero and its
Adam update is rounding noise scaled to lr in both frameworks.
"""

import argparse
import glob
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    import torch
    import yaml
except ImportError as e:  # pragma: no cover
    print("skipped: %s" % e)
    sys.exit(77)

import torch_model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("plan")
    ap.add_argument("ckpt_dir")
    ap.add_argument("run")
    ap.add_argument("--rtol", type=float, default=1e-5)
    ap.add_argument("--update-rtol", type=float, default=2e-2)
    args = ap.parse_args()
    torch.set_num_threads(1)

    with open(args.plan) as f:
        plan = yaml.safe_load(f)
    ckpts = sorted(glob.glob(os.path.join(args.ckpt_dir, "step-*.safetensors")))
    init, _ = torch_model.load_safetensors(ckpts[0])
    final, meta = torch_model.load_safetensors(ckpts[-1])
    batches, _ = torch_model.load_safetensors(
        os.path.join(args.ckpt_dir, "batches.safetensors"))
    with open(args.run) as f:
        runtime = [json.loads(l) for l in f]
    runtime = [e["loss"] for e in runtime if e.get("event") == "step"]
    steps = int(meta["step"])
    assert steps == len(runtime), (steps, len(runtime))

    losses, model = torch_model.train(plan, init, batches, steps)
    ok = True
    for i, (a, b) in enumerate(zip(runtime, losses)):
        rel = abs(a - b) / max(abs(b), 1e-30)
        print("step %d: mllm-run %.8f  torch %.8f  rel %.2e" % (i + 1, a, b,
                                                              rel))
        if rel > args.rtol:
            ok = False
    # Frozen parameters never move, in either framework.
    frozen = trained = 0
    worst = worst_update = 0.0
    for name, p, trains in model.parameters():
        key = "model." + name
        if not trains:
            frozen += 1
            if not torch.equal(final[key], init[key]):
                print("frozen parameter %s changed in mllm-run" % name)
                ok = False
            if not torch.equal(p.detach().to(init[key].dtype), init[key]):
                print("frozen parameter %s changed in torch" % name)
                ok = False
        else:
            trained += 1
            diff = (p.detach().double() - final[key].double()).abs().max()
            scale = final[key].double().abs().max().clamp(min=1e-12)
            worst = max(worst, float(diff / scale))
            if name.endswith(".bk"):
                continue
            ours = final[key].double() - init[key].double()
            theirs = p.detach().double() - init[key].double()
            size = float(theirs.abs().max())
            rel = float((ours - theirs).abs().max()) / max(size, 1e-30)
            worst_update = max(worst_update, rel)
            if rel > args.update_rtol:
                print("trained parameter %s: its update differs from torch's "
                      "by %.2e of torch's largest (%.2e)" % (name, rel, size))
                ok = False
    print("%d frozen parameters bit-identical, %d trained (largest relative "
          "difference from torch after %d steps: %.2e of the weights, %.2e "
          "of the updates)" % (frozen, trained, steps, worst, worst_update))
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
