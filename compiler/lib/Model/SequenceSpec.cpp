//===- SequenceSpec.cpp - the declared data layout as library input -------===//
#include "mllm/Model/SequenceSpec.h"

using namespace mllm;

runtime::PlanData mllm::planData(DataOp data) {
  runtime::PlanData d;
  d.textTokens = static_cast<int64_t>(data.getTextTokens());
  d.packing = static_cast<int64_t>(data.getPacking());
  d.seqLen = static_cast<int64_t>(data.getSeqLen());
  d.microbatchSize = static_cast<int64_t>(data.getMicrobatchSize());
  d.microbatches = static_cast<int64_t>(data.getMicrobatches());
  d.textMask = stringifyMaskPolicy(data.getTextMask()).str();
  for (InputOp in : data.getBody().front().getOps<InputOp>()) {
    runtime::PlanInput i;
    i.encoder = in.getEncoder().str();
    i.tokens = static_cast<int64_t>(in.getTokens());
    i.items = static_cast<int64_t>(in.getItems());
    i.placement = stringifyPlacement(in.getPlacement()).str();
    if (auto positions = in.getPositions())
      i.positions.assign(positions->begin(), positions->end());
    i.mask = stringifyMaskPolicy(in.getMask()).str();
    if (auto own = in.getEncoderTokens())
      i.encoderTokens = static_cast<int64_t>(*own);
    d.inputs.push_back(std::move(i));
  }
  return d;
}

kernels::SequenceSpec mllm::getSequenceSpec(DataOp data, ModelOp model) {
  // Through the plan's data section: one conversion from a declared layout
  // to the token layout, shared with the runtime.
  runtime::Plan plan;
  plan.data = planData(data);
  if (model) {
    for (EncoderOp encoder : model.getBody().front().getOps<EncoderOp>())
      plan.parts.emplace_back().name = encoder.getSymName().str();
  } else {
    for (const runtime::PlanInput &in : plan.data.inputs)
      plan.parts.emplace_back().name = in.encoder;
  }
  plan.parts.emplace_back().isLLM = true;
  llvm::Expected<kernels::SequenceSpec> spec = runtime::sequenceSpec(plan);
  if (!spec) // The dialect's spellings are the plan's: an internal error.
    llvm::report_fatal_error(llvm::Twine(llvm::toString(spec.takeError())));
  return std::move(*spec);
}

// The dialect's CP policies and the balancer's are the same names.
runtime::BalancePolicy mllm::getBalancePolicy(CPBalance policy) {
  return *runtime::parseBalancePolicy(stringifyCPBalance(policy));
}
