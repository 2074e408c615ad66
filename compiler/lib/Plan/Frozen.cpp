//===- Frozen.cpp - which layers need which gradients ---------------------===//
//
// Brief §B.4 Eq. (2)/(3) with the "first trainable layer" refinement: p(l)
// ("a trainable parameter exists at or before l") flows down each chain and
// is ORed across the DAG's edges; layer l needs its input gradient iff
// p(l-1), i.e. iff someone strictly upstream wants the gradient it passes.
//
//===----------------------------------------------------------------------===//
#include "mllm/Plan/Frozen.h"

#include <cassert>

using namespace mllm::plan;

std::vector<GradFlags>
mllm::plan::analyzeFrozen(const std::vector<ModuleChain> &modules) {
  std::vector<GradFlags> flags(modules.size());
  // p after the last layer of each module, for its successors.
  std::vector<bool> trainedUpTo(modules.size(), false);

  for (size_t m = 0; m < modules.size(); ++m) {
    const ModuleChain &chain = modules[m];
    bool upstream = false;
    for (int pred : chain.predecessors) {
      assert(pred >= 0 && size_t(pred) < m &&
             "modules must be in topological order");
      // Out-of-order edges in release builds are ignored rather than read
      // out of bounds; the assert above catches them in tests.
      if (pred >= 0 && size_t(pred) < m)
        upstream = upstream || trainedUpTo[pred];
    }

    size_t n = chain.trainable.size();
    GradFlags &f = flags[m];
    f.needsWeightGrad.resize(n);
    f.needsInputGrad.resize(n);
    f.recomputes.resize(n);
    for (size_t l = 0; l < n; ++l) {
      bool trainable = chain.trainable[l];
      f.needsWeightGrad[l] = trainable;
      f.needsInputGrad[l] = upstream;
      // A missing recompute entry means none was requested. Without any
      // backward the saved activations are never read, so recomputing them
      // would be pure waste (the measured ~0 ms backward of a frozen
      // encoder in front of everything trainable).
      bool requested = l < chain.recompute.size() && chain.recompute[l];
      f.recomputes[l] = requested && (trainable || upstream);
      upstream = upstream || trainable;
    }
    trainedUpTo[m] = upstream;
  }
  return flags;
}
