#!/usr/bin/env bash
# outputs.sh BIN_DIR SCRATCH SOURCE_DIR: the output-file guarantee of
# docs/cli.md ("Output files"), checked on disk with exit codes (issue 15).
# A failed run leaves an existing output as it was, an output that is also an
# input is refused before anything is read, a write error names the file, and
# no temporary file is left behind.
set -uo pipefail
bin=$1 scratch=$2 src=$3
export MLLM_STDLIB=$src/stdlib
rm -rf "$scratch" && mkdir -p "$scratch" && cd "$scratch" || exit 1
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
# expect CODE CMD...: runs CMD, stderr to err.txt, checks its exit status.
expect() {
  local code=$1; shift
  "$@" > out.log 2> err.txt
  local rc=$?
  [[ $rc == "$code" ]] || fail "exit $rc, expected $code: $*: $(head -c 300 err.txt)"
}
# mentions TEXT: err.txt contains TEXT.
mentions() { grep -qF -- "$1" err.txt || fail "no '$1' in: $(head -c 300 err.txt)"; }
unchanged() { cmp -s "$1" "$1.orig" || fail "$1 was changed"; }
no_temps() {
  local left
  left=$(find . -name '.*.tmp-*' | head -3)
  [[ -z $left ]] || fail "temporary files left: $left"
}

cat > cluster.mllm <<'SPEC'
cluster { nodes = 1; gpus_per_node = 4; gpu = a40; }
SPEC
cat > main.mllm <<'SPEC'
import siglip; import llama; import hardware; import "cluster.mllm";
model m {
  encoder vision : siglip_so400m { frozen = true; projector mlp { } }
  llm : llama3_2_1b { frozen = true; }
}
data     { text_tokens = 1k; microbatches = 8; vision { image = 384; } }
parallel { llm { pp = 3; } }
SPEC
printf 'model {\n' > broken.mllm
for f in cluster.mllm main.mllm; do cp $f $f.orig; done

# -o naming an import: the import was read empty, a spurious error reported
# and the user's file deleted. Now refused, the import untouched.
for emit in summary ast mllm plan; do
  expect 1 "$bin/mllmc" main.mllm --emit=$emit -o cluster.mllm
  mentions "mllmc: error: the output 'cluster.mllm' is also an input"
  unchanged cluster.mllm
done
# -o naming the spec: refused before it is read.
expect 1 "$bin/mllmc" main.mllm -o main.mllm
mentions "is also an input ('main.mllm')"
unchanged main.mllm
expect 1 "$bin/mllmc" ./main.mllm -o "$scratch/main.mllm"
unchanged main.mllm
# ... and read from standard input (it was replaced by the summary).
# shellcheck disable=SC2094 # the very mistake under test
expect 1 "$bin/mllmc" - -o main.mllm < main.mllm
mentions "mllmc: error: the output 'main.mllm' is also the standard input"
unchanged main.mllm
# ... and the profile.
cp "$src/test/mllmc/Inputs/zero-igrad.yaml" p.yaml && cp p.yaml p.yaml.orig
expect 1 "$bin/mllmc" main.mllm --profile p.yaml -o p.yaml
mentions "is also an input ('p.yaml')"
unchanged p.yaml

# A failed compile left no output and deleted an existing one.
echo "previous output" > out.txt && cp out.txt out.txt.orig
expect 1 "$bin/mllmc" broken.mllm -o out.txt
unchanged out.txt
expect 1 "$bin/mllmc" missing.mllm -o out.txt
unchanged out.txt
no_temps

# A successful compile replaces it, keeping its permissions.
chmod 600 out.txt
expect 0 "$bin/mllmc" main.mllm --emit=plan -o out.txt
grep -q '^version: 3' out.txt || fail "out.txt is not the plan"
[[ $(stat -c %a out.txt) == 600 ]] || fail "out.txt lost its permissions"
no_temps
# Through a link: the file it names is written, the link stays.
ln -s out.txt link.txt
expect 0 "$bin/mllmc" main.mllm -o link.txt
[[ -L link.txt ]] || fail "link.txt is no longer a link"
grep -q '^plan: ' out.txt || fail "the link's target is not the summary"
# Devices are written in place.
expect 0 "$bin/mllmc" main.mllm -o /dev/null
# A directory is refused.
mkdir dir
expect 1 "$bin/mllmc" main.mllm -o dir
mentions "mllmc: error: cannot write 'dir'"

# Write errors named the file nowhere ("LLVM ERROR: IO failure on output
# stream").
if [[ -w /dev/full ]]; then
  expect 1 "$bin/mllmc" main.mllm -o /dev/full
  mentions "mllmc: error: cannot write '/dev/full': No space left on device"
  grep -q "LLVM ERROR" err.txt && fail "LLVM ERROR on a full device"
  "$bin/mllmc" main.mllm > /dev/full 2> err.txt
  [[ $? == 1 ]] || fail "stdout to /dev/full: exit status not 1"
  mentions "mllmc: error: cannot write to standard output: No space left on device"
  grep -q "LLVM ERROR" err.txt && fail "LLVM ERROR on a full standard output"
fi

# mllm-run's report: an error, not LLVM's fatal one at exit.
if [[ -w /dev/full ]]; then
  "$bin/mllm-run" "$src/examples/tiny_vlm.mllm" --steps 1 > /dev/full 2> err.txt
  [[ $? == 1 ]] || fail "mllm-run to /dev/full: exit status not 1"
  mentions "mllm-run: error: cannot write to standard output: No space left on device"
  grep -q "LLVM ERROR" err.txt && fail "LLVM ERROR from mllm-run on a full standard output"
fi

# mllm-opt: the same guarantee.
expect 0 "$bin/mllmc" main.mllm --emit=mllm -o job.mlir
cp job.mlir job.mlir.orig
printf 'mllm.train steps 0 adamw lr 1.0 weight_decay 0.0 precision bf16 seed 0\n' > bad.mlir
cp out.txt out.txt.orig
expect 1 "$bin/mllm-opt" bad.mlir -o out.txt
unchanged out.txt
expect 1 "$bin/mllm-opt" job.mlir -o job.mlir
mentions "mllm-opt: error: the output 'job.mlir' is also an input"
unchanged job.mlir
# shellcheck disable=SC2094 # the very mistake under test
expect 1 "$bin/mllm-opt" - -o job.mlir < job.mlir
mentions "mllm-opt: error: the output 'job.mlir' is also the standard input"
unchanged job.mlir
expect 0 "$bin/mllm-opt" job.mlir -o out2.mlir
cmp -s <("$bin/mllm-opt" job.mlir) out2.mlir || fail "mllm-opt -o differs from its stdout"
if [[ -w /dev/full ]]; then
  expect 1 "$bin/mllm-opt" job.mlir -o /dev/full
  mentions "mllm-opt: error: cannot write '/dev/full'"
fi
no_temps

# mllm-sim on an empty module blamed a missing pipeline.
printf 'module {\n}\n' > empty.mlir
expect 1 "$bin/mllm-sim" empty.mlir
mentions "error: the module has no 'mllm.model'"

if ((failures)); then
  echo "$failures failure(s)"
  exit 1
fi
echo "all output-file checks passed"
