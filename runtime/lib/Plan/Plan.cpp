//===- Plan.cpp - the training plan ---------------------------------------===//
#include "mllm/runtime/Plan.h"

#include "llvm/ADT/STLExtras.h"

using namespace mllm;
using namespace mllm::runtime;

std::vector<int64_t> PlanSchedule::rankProgram() const {
  int64_t world = 0;
  for (const sched::StageInfo &s : graph.stages)
    world = std::max(world, s.rankLayout().end());
  std::vector<int64_t> program(static_cast<size_t>(world), -1);
  for (size_t i = 0; i < graph.stages.size(); ++i)
    for (int64_t rank : graph.stages[i].rankLayout().ranks())
      if (program[rank] < 0)
        program[rank] = static_cast<int64_t>(i);
  return program;
}

int64_t Plan::launchRanks() const {
  if (!schedule)
    return job.worldSize;
  return static_cast<int64_t>(schedule->rankProgram().size());
}

const PlanPart *Plan::findPart(llvm::StringRef name) const {
  for (const PlanPart &p : parts)
    if (p.name == name)
      return &p;
  return nullptr;
}

static llvm::Error fail(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

llvm::Expected<kernels::SequenceSpec>
mllm::runtime::sequenceSpec(const Plan &plan) {
  const PlanData &d = plan.data;
  kernels::SequenceSpec spec;
  spec.textTokens = d.textTokens;
  spec.packing = d.packing;
  if (d.textMask == "causal") {
    spec.textMask = kernels::TextMask::Causal;
  } else if (d.textMask == "prefix_lm") {
    spec.textMask = kernels::TextMask::PrefixLm;
  } else if (d.textMask == "bidirectional") {
    // All of the text is one prefix.
    spec.textMask = kernels::TextMask::PrefixLm;
    spec.prefixFraction = 1.0;
  } else {
    return fail("unknown text mask '" + d.textMask + "'");
  }
  // One modality per encoder, in model order (its word bit), whether or not
  // the data layout gives it items.
  for (const PlanPart &part : plan.parts) {
    if (part.isLLM)
      continue;
    kernels::ModalitySpec m;
    m.items = 0;
    if (const PlanInput *it = d.findInput(part.name)) {
      m.tokensPerItem = it->tokens;
      m.items = it->items;
      if (it->placement == "prepend")
        m.placement = kernels::ItemPlacement::Prepend;
      else if (it->placement == "append")
        m.placement = kernels::ItemPlacement::Append;
      else if (it->placement == "at")
        m.placement = kernels::ItemPlacement::At;
      else
        return fail("unknown placement '" + it->placement + "' of input '" +
                    it->encoder + "'");
      m.positions = it->positions;
      if (it->mask == "causal")
        m.mask = kernels::ItemMask::Causal;
      else if (it->mask == "bidirectional")
        m.mask = kernels::ItemMask::Bidirectional;
      else
        return fail("unknown mask '" + it->mask + "' of input '" + it->encoder +
                    "'");
    }
    spec.modalities.push_back(std::move(m));
  }
  return spec;
}
