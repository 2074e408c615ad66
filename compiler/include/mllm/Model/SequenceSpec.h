//===- SequenceSpec.h - The declared data layout as library input -*- C++
//-*-===//
//
// Turns mllm ops into the inputs of the shared mask and balancing libraries,
// so that the compiler (mllm-balance-cp) and the runtime (per batch) build
// the same token layout and run the same balancer on it.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_MODEL_SEQUENCESPEC_H
#define MLLM_MODEL_SEQUENCESPEC_H

#include "mllm/Dialect/MLLM/IR/MLLMOps.h"
#include "mllm/kernels/SequenceLayout.h"
#include "mllm/runtime/Balance.h"
#include "mllm/runtime/Plan.h"

namespace mllm {

/// The data section of the plan: the layout of `data`.
runtime::PlanData planData(DataOp data);

/// The declared layout of one LLM sequence: `data`'s text, packing and text
/// mask, and one modality per encoder of `model` in declaration order (the
/// modality bit), filled from the encoder's `mllm.input` (no items without
/// one). Without a model the modalities follow the `mllm.input` order. A
/// `bidirectional` text mask makes all of the text one prefix. Validate the
/// result with kernels::checkSequenceSpec().
kernels::SequenceSpec getSequenceSpec(DataOp data, ModelOp model = {});

/// The balancer policy of a `cp_balance` value.
runtime::BalancePolicy getBalancePolicy(CPBalance policy);

} // namespace mllm

#endif // MLLM_MODEL_SEQUENCESPEC_H
