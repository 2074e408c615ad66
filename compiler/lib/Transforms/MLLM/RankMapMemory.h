//===- RankMapMemory.h - Memory of the GPUs of mllm-rank-map ----*- C++ -*-===//
//
// The stages mllm-rank-map lays out, grouped by the GPUs they share, and
// the memory of one GPU of each: the planner's memory model (mllm/Plan/
// Memory.h) applied to the recorded stages.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_TRANSFORMS_MLLM_RANKMAPMEMORY_H
#define MLLM_TRANSFORMS_MLLM_RANKMAPMEMORY_H

#include "mllm/Dialect/MLLM/IR/MLLMOps.h"
#include "mllm/Plan/JobModel.h"
#include "mllm/Plan/Memory.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallVector.h"

#include <map>
#include <utility>
#include <vector>

namespace mllm::rankmap {

struct StageInfo {
  StageOp op;
  const PartInfo *part;
  int64_t index;     ///< Within the part.
  int64_t numStages; ///< Of the part.
  plan::StageMemory memory;
  size_t group = 0; ///< Its GpuGroup.
};

/// The stages that share one set of GPUs (one stage; colocated encoders'
/// stage s; a chain stage holding two parts), in pipeline order.
using GpuGroup = llvm::SmallVector<StageInfo *, 2>;

/// Every stage by its part and index within the part.
class StageIndex {
public:
  /// Indexes `groups`' stages and records each one's group.
  explicit StageIndex(llvm::ArrayRef<GpuGroup> groups);
  /// The stage, or null if the part has no such stage.
  const StageInfo *find(const PartInfo *part, int64_t index) const;

private:
  std::map<std::pair<const PartInfo *, int64_t>, const StageInfo *> stages;
};

/// One GPU of stage `s` alone: units, the tied head's copy, the warm-up.
plan::StageMemory stageMemory(const JobModel &job, const StageInfo &s,
                              int64_t llmStages);

/// For each group, the groups it sends gradients to when they run a
/// backward: the previous chain stage; the part's previous stage (every
/// colocated encoder's, one group); for the LLM's first stage, every
/// encoder's last.
std::vector<llvm::SmallVector<size_t, 2>>
predecessorGroups(const JobModel &job, llvm::ArrayRef<GpuGroup> groups,
                  const StageIndex &index);

/// The stage of a group that records its message terms: a chain stage's
/// last piece, which sends, or the first colocated stage.
StageInfo *messageHolder(const JobModel &job, const GpuGroup &group);

/// Each GPU's messages (plan::setMessageTerms), as the partitioner counts
/// them: a stage receives its part's cut, the LLM's first every encoder's
/// output; a stage that saves activations runs a backward. A group of
/// stages on one GPU runs as one program: colocated encoders' stage s
/// receives and sends the sums, a chain stage what crosses the cuts around
/// it (its pieces hand each other nothing). The terms are recorded on the
/// group's messageHolder. The gradients a group sends back count only
/// those to stages with a backward (a frozen encoder's part of the LLM's
/// input gets none; a chain's cut is counted whole).
void setMessages(const JobModel &job, llvm::ArrayRef<GpuGroup> groups,
                 const StageIndex &index);

} // namespace mllm::rankmap

#endif // MLLM_TRANSFORMS_MLLM_RANKMAPMEMORY_H
