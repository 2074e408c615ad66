#!/usr/bin/env bash
# Cornstarch Table 2 (brief §E.1-E.3) simulated with mllm-sim: the 27 V-A-L
# synthetic MLLMs with the setup of table2.sh (6 nodes x 4 A40, encoders
# colocated, encoders and LLM frozen, projectors train, recompute = full,
# dp 2 x 6 microbatches x 4 sequences, pp = auto). For each configuration:
#   * `mllm-sim --compare --json`: frozen-aware, frozen-unaware and uniform
#     partitions (multimodal 1F1B) and the tool's Megatron-like row (1F1B
#     on the frozen-unaware partition, encoders as the first stages);
#   * "Megatron*": the paper's baseline as Megatron-LM would run it, the
#     colocated encoders as ONE first stage (pp 1), the LLM in the remaining
#     11 stages with equal layers per stage (partition = uniform), 1F1B;
#   * `mllmc --emit=plan` for the stage split and the planner's estimate.
# Usage: bench/paper/sim_table2.sh [build-dir]      (from the repo root)
# DP=1|2|3|4|6 overrides dp (microbatches = 12 / dp), as in table2.sh.
set -euo pipefail
BUILD=${1:-build}
MLLMC=$BUILD/bin/mllmc
SIM=$BUILD/bin/mllm-sim
HERE=$(dirname "$0")
source "$HERE/lib.sh"
DP=${DP:-2}
MB=$((12 / DP))
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

for v in s m l; do for a in s m l; do for l in s m l; do
  c=$v$a$l
  table2_spec $v $a $l frozen_aware > "$TMP/$c.mllm"
  "$SIM" "$TMP/$c.mllm" --compare --json -o "$TMP/$c.compare.json" 2> "$TMP/$c.compare.err" ||
    { echo "$c: mllm-sim --compare failed" >&2; cat "$TMP/$c.compare.err" >&2; }
  for mode in aware unaware; do
    table2_spec $v $a $l frozen_$mode > "$TMP/$c.$mode.mllm"
    if "$MLLMC" "$TMP/$c.$mode.mllm" --emit=plan -o "$TMP/$c.$mode.yaml" 2> /dev/null; then
      python3 "$HERE/planstats.py" "$TMP/$c.$mode.yaml" > "$TMP/$c.$mode.stats"
    fi
  done
  # Megatron*: encoders in one stage, LLM uniform over the other 11 GPUs.
  table2_spec $v $a $l uniform |
    sed 's/vision { pp = auto; }/vision { pp = 1; }/; s/audio { pp = auto; }/audio { pp = 1; }/;
         s/llm { pp = auto; }/llm { pp = '$((24 / DP - 1))'; }/' > "$TMP/$c.megstar.mllm"
  "$SIM" "$TMP/$c.megstar.mllm" --schedule=linear_1f1b --json -o "$TMP/$c.megstar.json" \
    2> "$TMP/$c.megstar.err" || true
done; done; done

python3 - "$TMP" "$DP" "$MB" <<'PY'
import json, math, os, re, sys
tmp, dp, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
# Table 2 of the paper (brief §E.3): aware iter, unaware iter, speed-up.
PAPER = {"sss": (21.81, 25.67, 1.18), "mms": (40.34, 41.21, 1.02),
         "lls": (66.14, 66.20, 1.00), "ssm": (66.56, 73.94, 1.11),
         "mmm": (70.37, 173.01, 2.46), "llm": (87.43, 177.39, 2.03),
         "ssl": (138.45, 137.62, 1.00), "mml": (138.97, 180.28, 1.30),
         "lll": (143.76, 247.79, 1.72)}

def stats(c, mode):
    p = os.path.join(tmp, "%s.%s.stats" % (c, mode))
    if not os.path.exists(p):
        return {}
    return dict(kv.split("=") for kv in open(p).read().split())

def first_error(path):
    for line in open(path):
        m = re.search(r"error: (.*)", line)
        if m:
            return m.group(1)
    return "failed"

print("dp %d x %d microbatches x 4 sequences = global batch %d; %d GPUs per replica."
      % (dp, mb, dp * mb * 4, 24 // dp))
print("Simulated iteration times in s (mllm-sim, one iteration). aware/unaware/uniform: "
      "multimodal 1F1B on that partition; Megatron-like: mllm-sim --compare's 1F1B on the "
      "frozen-unaware partition; Megatron*: encoders in one stage + LLM uniform, 1F1B. "
      "Speed-ups are X / aware. est: mllmc's planner estimate (W - B + m x B).")
print()
print("| config | stages aware / unaware | aware | unaware | uniform | Megatron-like | Megatron* "
      "| vs unaware sim (est) | vs Megatron-like | vs Megatron* | paper aware / unaware | paper speed-up |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
sp_u, sp_m, sp_ms, sp_est = [], [], [], []
paper_pairs = []
for v in "sml":
    for a in "sml":
        for l in "sml":
            c = v + a + l
            cp = os.path.join(tmp, c + ".compare.json")
            if not os.path.exists(cp) or not os.path.getsize(cp):
                print("| %s | mllm-sim --compare failed: %s |" % (c.upper(), first_error(os.path.join(tmp, c + ".compare.err"))))
                continue
            cmp = {r["variant"]: r for r in json.load(open(cp))["compare"]}
            it = {k: (r["iteration_ms"] / 1000 if "iteration_ms" in r else None) for k, r in cmp.items()}
            ms_path = os.path.join(tmp, c + ".megstar.json")
            if os.path.exists(ms_path) and os.path.getsize(ms_path):
                ms = json.load(open(ms_path))["iteration_ms"] / 1000
                ms_txt = "%.2f" % ms
            else:
                ms = None
                err = first_error(os.path.join(tmp, c + ".megstar.err"))
                m = re.search(r"needs ([0-9.]+ GiB) per GPU but .* has ([0-9.]+ GiB)", err)
                ms_txt = "OOM (%s > %s)" % m.groups() if m else "error"
            sa, su = stats(c, "aware"), stats(c, "unaware")
            aw, un = it["frozen-aware"], it["frozen-unaware"]
            f = lambda x: "%.2f" % x if x is not None else "n/a"
            r = lambda x: "%.2fx" % (x / aw) if x is not None and aw else "n/a"
            est = (float(su["iter_ms"]) / float(sa["iter_ms"])) if sa and su else None
            if aw and un: sp_u.append(un / aw)
            if aw and it.get("megatron-like"): sp_m.append(it["megatron-like"] / aw)
            if est: sp_est.append(est)
            if ms: sp_ms.append(ms / aw)
            pa = PAPER.get(c)
            if pa and aw and un:
                paper_pairs.append((c, un / aw, pa[2]))
            print("| %s | %s / %s | %s | %s | %s | %s | %s | %s (%s) | %s | %s | %s | %s |" % (
                c.upper(), sa.get("pp", "?"), su.get("pp", "?"), f(aw), f(un), f(it["uniform"]),
                f(it["megatron-like"]), ms_txt, r(un), "%.2fx" % est if est else "n/a",
                r(it["megatron-like"]), r(ms), "%.2f / %.2f" % pa[:2] if pa else "",
                "%.2fx" % pa[2] if pa else ""))

gm = lambda xs: math.exp(sum(map(math.log, xs)) / len(xs))
print()
print("Geometric mean over the 27 configurations: aware vs unaware %.2fx (est %.2fx, max %.2fx); "
      "vs Megatron-like %.2fx; vs Megatron* %.2fx (arithmetic mean %.2fx) over the %d that fit (max %.2fx)."
      % (gm(sp_u), gm(sp_est), max(sp_u), gm(sp_m), gm(sp_ms), sum(sp_ms) / len(sp_ms), len(sp_ms), max(sp_ms)))
print("On the paper's 9 rows: ours %.2fx vs the paper's %.2fx (geometric means of aware vs unaware)."
      % (gm([p[1] for p in paper_pairs]), gm([p[2] for p in paper_pairs])))
PY
