"""Checks that a tiny model learned what only its media can tell
(test/mllm-run/learning.test).

  check_learning.py --eval EVAL.jsonl --untrained RUN0.jsonl
                    --trained RUN.jsonl [--generated GEN.jsonl
                    --answers ANSWERS.txt] [--eos] [--min-exact F]

The bar is computed here from the held-out captions alone, never from what
mllm-run printed: the *blind bound* is the token accuracy of the best
predictor that sees only the caption's text before each target (for every
prefix, the most frequent next token of the held-out set itself), an upper
bound for any model that ignores the image or clip, since packed samples
never see each other. The trained model must close at least half of the gap
between that bound and 1, the untrained one (step 0) must stay below the
bound, and (with --generated) greedy captions of the held-out media must be
exactly right for at least --min-exact of them (chance: one in the number
of distinct captions).
"""

import argparse
import collections
import json
import sys


def events(path, kind):
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                e = json.loads(line)
                if e.get("event") == kind:
                    out.append(e)
    return out


def blind_bound(captions, eos):
    """Best accuracy of any function of the text prefix (byte tokens)."""
    by_prefix = collections.defaultdict(collections.Counter)
    for c in captions:
        ids = list(c.encode("utf-8")) + ([256] if eos else [])
        # A text token's target is the next token of the same run.
        for i in range(len(ids) - 1):
            by_prefix[tuple(ids[:i + 1])][ids[i + 1]] += 1
    total = sum(sum(c.values()) for c in by_prefix.values())
    best = sum(max(c.values()) for c in by_prefix.values())
    return best / total, total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--eval", required=True)
    ap.add_argument("--untrained", required=True)
    ap.add_argument("--trained", required=True)
    ap.add_argument("--generated")
    ap.add_argument("--answers")
    ap.add_argument("--eos", action="store_true",
                    help="the vocabulary has the end id 256")
    ap.add_argument("--min-exact", type=float, default=0.75)
    args = ap.parse_args()

    captions = [json.loads(l)["text"] for l in open(args.eval) if l.strip()]
    bound, targets = blind_bound(captions, args.eos)
    first = events(args.untrained, "eval")
    last = events(args.trained, "eval")
    if not first or not last:
        sys.exit("no eval event in %s or %s" % (args.untrained, args.trained))
    a0, a1 = first[-1]["accuracy"], last[-1]["accuracy"]
    bar = bound + 0.5 * (1 - bound)
    ok = True
    print("held-out targets %d (mllm-run counted %d); blind bound %.4f; "
          "bar %.4f" % (targets, last[-1]["tokens"], bound, bar))
    print("token accuracy: untrained %.4f (loss %.4f), trained %.4f "
          "(loss %.4f)" % (a0, first[-1]["loss"], a1, last[-1]["loss"]))
    if last[-1]["tokens"] != targets:
        print("FAIL: mllm-run counted another number of targets")
        ok = False
    if a0 >= bound:
        print("FAIL: the untrained model is not below the blind bound")
        ok = False
    if a1 < bar:
        print("FAIL: the trained model does not close half the gap between "
              "the blind bound and 1")
        ok = False

    if args.generated:
        answers = [l.rstrip("\n") for l in open(args.answers)]
        gens = events(args.generated, "generate")
        if len(gens) != len(answers):
            sys.exit("%d generations for %d answers" % (len(gens),
                                                        len(answers)))
        exact = sum(1 for g, a in zip(gens, answers)
                    if g["prompt"] + g["text"] == a)
        distinct = len(set(answers))
        print("greedy captions exactly right: %d of %d (chance about 1 in "
              "%d)" % (exact, len(answers), distinct))
        for g, a in list(zip(gens, answers))[:4]:
            print("  %-20s -> %s" % (a, g["prompt"] + g["text"]))
        if exact < args.min_exact * len(answers):
            print("FAIL: fewer than %.0f%% exactly right" %
                  (100 * args.min_exact))
            ok = False
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
