//===- EvalGenerate.h - mllm-run --eval and --generate ----------*- C++ -*-===//
//
// What mllm-run prints for a held-out evaluation (`--eval`, every
// `--eval-every` steps and at the end) and for greedy generation
// (`--generate`): a line per evaluation or per sample, or with --json one
// `eval` / `generate` event each (docs/runtime.md, "Evaluation and
// generation"). Rank 0 of a parallel run prints them.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_TOOLS_MLLMRUN_EVALGENERATE_H
#define MLLM_TOOLS_MLLMRUN_EVALGENERATE_H

#include "mllm/runtime/exec/Evaluate.h"
#include "mllm/runtime/exec/Generate.h"

namespace mllm {

/// What opening an evaluation or prompt set found (`role`: "eval" or
/// "prompts"): usable samples, what was skipped and why.
void reportHeldOut(llvm::StringRef role, const std::string &file,
                   const runtime::data::DataSet &set, bool json);

/// One evaluation: the mean loss per counted token and the token accuracy.
void reportEval(const runtime::exec::EvalStats &stats, bool json);

/// Greedy generation for every sample of `generator` (opened from `file`
/// before any step, so that a bad prompt file ends the run before it
/// trains), each token chosen by `next`; printed per sample where `print`
/// (rank 0 of a parallel run), then what the rounds ran where `next`
/// counts it (`generate_work`).
llvm::Error generate(runtime::exec::Generator &generator,
                     const std::string &file, int64_t maxTokens, bool json,
                     runtime::exec::NextToken &next, bool print = true);

} // namespace mllm

#endif // MLLM_TOOLS_MLLMRUN_EVALGENERATE_H
