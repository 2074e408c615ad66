//===- Summary.h - human-readable job summary -------------------*- C++ -*-===//
#ifndef MLLM_TOOLS_MLLMC_SUMMARY_H
#define MLLM_TOOLS_MLLMC_SUMMARY_H

#include "mllm/Sema/Spec.h"
#include "llvm/Support/raw_ostream.h"

namespace mllm {
/// Prints the model's parts, parameters (trainable vs frozen), data layout,
/// cluster and per-part parallelism.
void printSummary(const spec::Job &job, llvm::raw_ostream &os);
} // namespace mllm

#endif // MLLM_TOOLS_MLLMC_SUMMARY_H
