//===- RankMapMemory.cpp - Memory of the GPUs of mllm-rank-map -----------===//
//
// The planner's memory model applied to mllm.stage ops: what one GPU of a
// stage holds, the messages of a group of stages on shared GPUs, and whom
// each group sends gradients to.
//
//===----------------------------------------------------------------------===//
#include "RankMapMemory.h"

#include "llvm/ADT/STLExtras.h"

using namespace mlir;
using namespace mllm;
using namespace mllm::rankmap;
using plan::StageMemory;

StageIndex::StageIndex(ArrayRef<GpuGroup> groups) {
  for (auto [g, group] : llvm::enumerate(groups))
    for (StageInfo *s : group) {
      s->group = g;
      stages[{s->part, s->index}] = s;
    }
}

const StageInfo *StageIndex::find(const PartInfo *part, int64_t index) const {
  auto it = stages.find({part, index});
  return it == stages.end() ? nullptr : it->second;
}

StageMemory rankmap::stageMemory(const JobModel &job, const StageInfo &s,
                                 int64_t llmStages) {
  StageMemory mem;
  auto add = [&](const plan::LayerMemory &l) {
    mem.weights += l.weights;
    mem.grads += l.grads;
    mem.optimizer += l.optimizer;
    mem.activations += l.activations;
  };
  StageOp op = s.op;
  int64_t begin = op.getBegin(), end = op.getEnd();
  for (int64_t u = begin; u < end; ++u) {
    const UnitCost &unit = s.part->units[u];
    add(unitMemory(job, unit.params, unit.trainableParams,
                   unit.activationBytes));
  }
  // The last stage's copy of a tied embedding matrix.
  double tied = s.part->tiedHeadCopy(begin, end);
  add(unitMemory(job, tied, s.part->tiedHeadTrainable ? tied : 0, 0));
  mem.wanted = plan::inFlightDepth(s.part->isLLM, s.index, s.numStages,
                                   llmStages, job.microbatches);
  return mem;
}

namespace {

/// The bytes a stage sends per microbatch: its part's cut, or an encoder's
/// output at its end (the LLM's last stage sends nothing). A chain stage
/// ending inside or at the end of an encoder also carries the outputs of
/// the encoders before it, on their way to the LLM's first layer.
double sentBytes(const JobModel &job, const StageInfo &s) {
  const PartInfo &part = *s.part;
  bool last = s.index + 1 == s.numStages;
  double bytes = !last ? part.cutBytes : part.isLLM ? 0.0 : part.outputBytes;
  if (job.layout == EncoderLayout::Chain && !part.isLLM)
    for (const PartInfo &earlier : job.parts) {
      if (&earlier == &part)
        break;
      bytes += earlier.outputBytes;
    }
  return bytes;
}

} // namespace

std::vector<SmallVector<size_t, 2>>
rankmap::predecessorGroups(const JobModel &job, ArrayRef<GpuGroup> groups,
                           const StageIndex &index) {
  SmallVector<size_t, 2> encoderLast;
  for (auto [g, group] : llvm::enumerate(groups))
    for (const StageInfo *s : group)
      if (!s->part->isLLM && s->index + 1 == s->numStages)
        encoderLast.push_back(g);
  std::vector<SmallVector<size_t, 2>> preds(groups.size());
  for (auto [g, group] : llvm::enumerate(groups)) {
    SmallVector<size_t, 2> &p = preds[g];
    if (job.layout == EncoderLayout::Chain) {
      if (g > 0)
        p.push_back(g - 1);
      continue;
    }
    for (const StageInfo *s : group) {
      if (s->index > 0)
        p.push_back(index.find(s->part, s->index - 1)->group);
      else if (s->part->isLLM)
        llvm::append_range(p, encoderLast);
    }
    llvm::sort(p);
    p.erase(std::unique(p.begin(), p.end()), p.end());
  }
  return preds;
}

StageInfo *rankmap::messageHolder(const JobModel &job, const GpuGroup &group) {
  return job.layout == EncoderLayout::Chain ? group.back() : group.front();
}

void rankmap::setMessages(const JobModel &job, ArrayRef<GpuGroup> groups,
                          const StageIndex &index) {
  bool chain = job.layout == EncoderLayout::Chain;
  double encoderOutputs = 0, trainedOutputs = 0;
  for (const GpuGroup &group : groups)
    for (const StageInfo *s : group) {
      if (s->part->isLLM || s->index + 1 != s->numStages)
        continue;
      encoderOutputs += s->part->outputBytes;
      if (s->memory.activations > 0)
        trainedOutputs += s->part->outputBytes;
    }
  auto trains = [&](const PartInfo *part, int64_t at) {
    const StageInfo *s = index.find(part, at);
    return s && s->memory.activations > 0;
  };
  double chainCut = 0; // Into the chain stage.
  for (const GpuGroup &group : groups) {
    StageMemory sum;
    double received = 0, sent = 0, back = 0;
    for (StageInfo *s : group) {
      s->memory.sends = s->memory.transit = s->memory.gradientBack = 0;
      sum.add(s->memory);
      if (chain)
        continue;
      if (s->index > 0) {
        received += s->part->cutBytes;
        if (trains(s->part, s->index - 1))
          back += s->part->cutBytes;
      } else if (s->part->isLLM) {
        received += encoderOutputs;
        back += trainedOutputs;
      }
      sent += sentBytes(job, *s);
    }
    if (chain) {
      received = back = chainCut;
      sent = chainCut = sentBytes(job, *group.back());
    }
    plan::setMessageTerms(sum, received, sent, back);
    StageInfo *holder = messageHolder(job, group);
    holder->memory.sends = sum.sends;
    holder->memory.transit = sum.transit;
    holder->memory.gradientBack = sum.gradientBack;
  }
}
