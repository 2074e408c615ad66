#!/usr/bin/env python3
"""Summarise an `mllmc --emit=plan` YAML file (docs/plan-format.md, versions 1 to 3).

Prints one line of key=value pairs:
  iter_ms, bottleneck_ms, gpus, pp (encoder stages/LLM stages),
  enc_f, enc_b  max over encoder stage indices of the colocated stage's
                F and B (summed over the encoders that share it),
  llm_f, llm_b  max over LLM stages of F and B,
  mem_mib       largest per-GPU memory of any stage.
B = bwd_weight + bwd_input + recompute (a measured backward with activation
checkpointing includes the recompute). Standard library only.
"""
import re
import sys
from collections import defaultdict

text = open(sys.argv[1]).read()
if not re.search(r"^version: [123]$", text, re.M):
    sys.exit("planstats: not a version-1, -2 or -3 plan")
num = lambda key: float(re.search(r"^\s*%s: ([0-9.]+)" % key, text, re.M).group(1))

kinds = {}  # part name -> encoder | llm
for name, kind in re.findall(r'^  - name: "([^"]+)"\n    kind: (encoder|llm)$', text, re.M):
    kinds[name] = kind

layout = re.search(r"^  layout: (\w+)", text, re.M).group(1)
stages = []
for block in re.split(r"^  - name: ", text.split("\nstages:\n", 1)[1], flags=re.M)[1:]:
    get = lambda k: re.search(r"^    %s: (.+)$" % k, block, re.M).group(1)
    f = float(get("fwd_ms"))
    b = float(get("bwd_weight_ms")) + float(get("bwd_input_ms")) + float(get("recompute_ms"))
    mem = int(re.search(r"total: (\d+)", get("memory_mib")).group(1))
    stages.append((get("part").strip('"'), int(get("index")), f, b, mem))

enc = defaultdict(lambda: [0.0, 0.0])  # colocated stage index -> [F, B]
llm_f = llm_b = 0.0
pp_llm = 0
for part, idx, f, b, _ in stages:
    if kinds[part] == "llm":
        llm_f, llm_b, pp_llm = max(llm_f, f), max(llm_b, b), pp_llm + 1
    else:
        key = idx if layout == "encoders_colocated" else (part, idx)
        enc[key][0] += f
        enc[key][1] += b
print("iter_ms=%.1f bottleneck_ms=%.1f gpus=%d pp=%d/%d enc_f=%.1f enc_b=%.1f "
      "llm_f=%.1f llm_b=%.1f mem_mib=%d" % (
          num("iteration_ms"), num("bottleneck_ms"), num("gpus_per_replica"),
          len(enc), pp_llm,
          max((v[0] for v in enc.values()), default=0),
          max((v[1] for v in enc.values()), default=0),
          llm_f, llm_b, max(s[4] for s in stages)))
