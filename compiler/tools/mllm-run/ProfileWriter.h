//===- ProfileWriter.h - measured layer times as a cost profile -*- C++ -*-===//
#ifndef MLLM_TOOLS_MLLMRUN_PROFILEWRITER_H
#define MLLM_TOOLS_MLLMRUN_PROFILEWRITER_H

#include "mllm/runtime/exec/Measure.h"

namespace mllm {

/// Writes `timings` in the cost model's profile format (docs/cost-model.md)
/// to `path`, atomically: one entry per layer group with its kind, every
/// shape key the group sets, its tokens and attention span, tp/cp 1.
llvm::Error writeProfile(llvm::StringRef path,
                         const std::vector<runtime::exec::LayerTiming> &timings,
                         llvm::StringRef device);

} // namespace mllm

#endif // MLLM_TOOLS_MLLMRUN_PROFILEWRITER_H
