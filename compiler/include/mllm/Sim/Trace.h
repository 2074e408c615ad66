//===- Trace.h - a simulated iteration as a trace or a picture --*- C++ -*-===//
//
// Writers of the timeline of a simulated iteration (SimResult::events): a
// Chrome trace that opens in Perfetto, and an SVG picture.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_SIM_TRACE_H
#define MLLM_SIM_TRACE_H

#include "mllm/Sim/Simulate.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/raw_ostream.h"

#include <string>

namespace mllm::sched {

/// "rank 4" for one rank, "ranks 0-15" for consecutive ones, else "16
/// ranks in 0-31".
std::string rankRange(llvm::ArrayRef<int64_t> ranks);

/// Chrome trace JSON (Perfetto): one process per pipeline stage (named after
/// it, in stage order) and in it one thread per global rank of the stage
/// ("rank R", tid R), each with the stage's events (every GPU of a stage
/// runs the same program). When the stages have more than `maxRanks` ranks
/// in all (0: no limit), each stage has a single thread instead, named
/// after its rank range (rankRange), which keeps the file's size that of
/// one track per stage.
constexpr int64_t kDefaultTraceMaxRanks = 256;
void writeChromeTrace(const PipelineGraph &graph, const SimResult &result,
                      llvm::raw_ostream &os,
                      int64_t maxRanks = kDefaultTraceMaxRanks);
/// An SVG timeline, forward/backward/communication in different colours:
/// one row per global rank ("STAGE rank R", grouped by stage) when the
/// stages have at most `maxRankRows` ranks in all, else one row per stage
/// labelled with its rank range.
constexpr int64_t kDefaultSvgMaxRankRows = 64;
void writeSvg(const PipelineGraph &graph, const SimResult &result,
              llvm::raw_ostream &os,
              int64_t maxRankRows = kDefaultSvgMaxRankRows);

} // namespace mllm::sched

#endif // MLLM_SIM_TRACE_H
