"""Trains the model of a plan in PyTorch on the batches mllm-run trained on,
from the same initial weights, and checks mllm-run's losses step by step.

  check_training.py PLAN.yaml CKPT_DIR RUN.jsonl [--rtol 1e-5]

CKPT_DIR holds mllm-run's step-00000000 (initial) and final checkpoints and
batches.safetensors (--dump-batches); RUN.jsonl is its --json output.
Exit status 0: the dump's targets and loss scales are those derived here
from its token ids and layout, every loss within rtol, the frozen
parameters of the final checkpoint bit-identical to the initial ones, and
every trained parameter's update (final - initial) within --update-rtol of
torch's, in the 2-norm: |ours - torch's| <= update_rtol |torch's|; 77:
torch or PyYAML is missing (reported as skipped); 1: a mismatch, printed.

The losses alone do not check the last step's update (no loss reads it),
nor the optimizer's details: AdamW without its weight decay moves the
losses by 1e-6 relative. Relative to the update, not the weight: an update
is 1e-2 of a weight after a few steps at lr 1e-4. In the 2-norm, because
Adam normalises each element's gradient: an element whose gradient is
near zero (an embedding row of an unseen token) turns rounding into a
sizeable update, which dominates an element-wise maximum (up to 9e-3 of
the largest element) but not the norm. Measured: honest runs at most
1.5e-4 (dp 2 at lr 3e-3), a run without its weight decay of 0.01 2.5e-2.
The key bias is held to Adam's bound instead: softmax ignores a constant
added to every key's score, so its exact gradient is zero and its update
is rounding noise, at most lr (1 - beta1) / sqrt(1 - beta2) a step.
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

import torch_layers as L
import torch_model


def next_token_targets(ids, words, segments):
    """Each position's target, from the layout alone: the next token, where
    both are text of one sample and the query cannot see that next token
    (the attention predicate's mirror); -100 elsewhere."""
    T = words.shape[0]
    ids = ids.reshape(-1, T)
    sees = L.attend_mask(words, segments)
    text = (words & L.TEXT_BIT) != 0
    sample = (segments & L.SEGMENT_ID_MASK) >> L.ITEM_BITS
    out = torch.full_like(ids, -100)
    for i in range(T - 1):
        if (text[i] and text[i + 1] and sample[i] == sample[i + 1] and
                not sees[i, i + 1]):
            out[:, i] = ids[:, i + 1]
    return out.reshape(-1)


def check_targets(plan, batches, steps):
    """The dump's targets and loss scales, which torch trains on, against
    ones derived here: 1 / the step's target count over its replicas and
    microbatches. Returns the problems found."""
    problems = []
    shared = {k: batches.get("layout." + k) for k in ("words", "segments")}
    dp, microbatches = plan["job"]["dp"], plan["data"]["microbatches"]
    for step in range(steps):
        keys = ["s%d.d%d.m%d" % (step, d, m) for d in range(dp)
                for m in range(microbatches)]
        count = 0
        for key in keys:
            own = {k: batches.get("%s.layout.%s" % (key, k), shared[k])
                   for k in ("words", "segments")}
            want = next_token_targets(batches[key + ".token_ids"],
                                      own["words"], own["segments"])
            got = batches[key + ".targets"]
            if not torch.equal(want, got):
                problems.append("%s: targets differ from the next text token "
                                "at %d positions" %
                                (key, int((want != got).sum())))
            count += int((want >= 0).sum())
        for key in keys:
            scale = float(batches[key + ".loss_scale"][0])
            if count == 0 or abs(scale * count - 1) > 1e-12:
                problems.append("%s: loss scale %.9g, not 1/%d" %
                                (key, scale, count))
    return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("plan")
    ap.add_argument("ckpt_dir")
    ap.add_argument("run")
    ap.add_argument("--rtol", type=float, default=1e-5)
    ap.add_argument("--update-rtol", type=float, default=1e-3)
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
    if steps == 0 or steps != len(runtime):
        print("FAIL: the final checkpoint is of step %d, the run has %d "
              "steps" % (steps, len(runtime)))
        return 1

    ok = True
    for problem in check_targets(plan, batches, steps)[:10]:
        print(problem)
        ok = False
    losses, model = torch_model.train(plan, init, batches, steps)
    names = {"model." + name for name, _, _ in model.parameters()}
    for side, tensors in (("initial", init), ("final", final)):
        have = {k for k in tensors if k.startswith("model.")}
        if have != names:
            print("the %s checkpoint's parameters are not torch's: %s" %
                  (side, sorted(have ^ names)[:5]))
            ok = False
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
        if key not in final or key not in init:
            continue
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
            ours = final[key].double() - init[key].double()
            theirs = p.detach().double() - init[key].double()
            if name.endswith(".bk"):
                bound = steps * plan["train"]["lr"] * 0.1 / 0.001 ** 0.5
                if not (float(ours.abs().max()) <= bound * 1.01):
                    print("key bias %s moved %.3g, past Adam's bound %.3g" %
                          (name, float(ours.abs().max()), bound))
                    ok = False
                continue
            size = float(theirs.norm())
            rel = float((ours - theirs).norm()) / max(size, 1e-30)
            worst_update = max(worst_update, rel)
            if not (rel <= args.update_rtol):
                print("trained parameter %s: its update differs from torch's "
                      "by %.2e of its norm (%.2e)" % (name, rel, size))
                ok = False
    if trained == 0:
        print("no trained parameter to compare")
        ok = False
    print("%d frozen parameters bit-identical, %d trained (largest relative "
          "difference from torch after %d steps: %.2e of the weights, %.2e "
          "of the updates)" % (frozen, trained, steps, worst, worst_update))
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
