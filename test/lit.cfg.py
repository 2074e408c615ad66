# -*- Python -*-
import os

import lit.formats
from lit.llvm import llvm_config

config.name = "MLLM"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".mllm", ".test"]
config.excludes = ["Inputs", "CMakeLists.txt", "README.md", "lit.cfg.py",
                   "lit.site.cfg.py", "corpus", "regressions", "ir-corpus",
                   "ir-regressions", "profile-corpus", "profile-regressions",
                   "plan-corpus", "plan-regressions", "manifest-corpus",
                   "manifest-regressions"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.mllm_obj_root, "test")

# Captures do not leak across CHECK-LABELs.
config.environment["FILECHECK_OPTS"] = "-enable-var-scope"

llvm_config.use_default_substitutions()
config.substitutions.append(("%stdlib", config.mllm_stdlib_dir))
config.substitutions.append(("%examples",
                             os.path.join(config.mllm_src_root, "examples")))
config.substitutions.append(("%mllm_src", config.mllm_src_root))

# Debian's interpreter, which has PyYAML and torch (the first python3 on PATH
# may be another one).
if os.path.exists("/usr/bin/python3"):
    config.substitutions.append(("%debian_python", "/usr/bin/python3"))
    config.available_features.add("python3")
    import subprocess
    if subprocess.call(["/usr/bin/python3", "-c", "import torch, yaml"],
                       stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL) == 0:
        config.available_features.add("torch")

if config.mllm_has_fuzzer:
    config.available_features.add("fuzzer")
# The ASan + UBSan tree (.ci/test.sh).
if getattr(config, "mllm_sanitize", False):
    config.available_features.add("sanitize")

# The device executor on the CUDA host twin (built where the toolkit is).
if os.path.exists(os.path.join(config.mllm_tools_dir, "mllm-device-twin")):
    config.available_features.add("device-twin")
# mllm-run itself on the host twins of the CUDA runtime and NCCL (NCCL's
# API over MPI): the NCCL path of the multi-GPU runs.
if os.path.exists(os.path.join(config.mllm_tools_dir, "mllm-run-twin")):
    config.available_features.add("nccl-twin")

# mllm-run --tokenizer: a SentencePiece model made by the test.
if os.path.exists(os.path.join(config.mllm_tools_dir,
                               "mllm-train-sentencepiece")):
    config.available_features.add("sentencepiece")

tool_dirs = [config.mllm_tools_dir, config.llvm_tools_dir]
tools = ["mllm-opt", "mllmc", "mllm-sim", "mllm-fuzz-ir", "mllm-fuzz-profile",
         "mllm-fuzz-plan", "mllm-fuzz-manifest", "mllm-run", "mllm-fuzz-frontend",
         "mllm-plan-roundtrip", "mllm-device-twin", "mllm-run-twin",
         "mllm-train-sentencepiece"]
llvm_config.add_tool_substitutions(
    [t for t in tools if os.path.exists(os.path.join(config.mllm_tools_dir, t))],
    tool_dirs)
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
