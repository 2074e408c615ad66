//===- FrozenAnalysis.cpp - Which layers compute which gradients ----------===//
//
// mllm-frozen-analysis: records the result of analyzeGradients (JobModel.h,
// on top of plan::analyzeFrozen) as unit attributes on every mllm.layers op.
//
//===----------------------------------------------------------------------===//
#include "mllm/Plan/JobModel.h"
#include "mllm/Transforms/MLLM/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"

namespace mllm {
#define GEN_PASS_DEF_FROZENANALYSISPASS
#include "mllm/Transforms/MLLM/Passes.h.inc"
} // namespace mllm

using namespace mlir;
using namespace mllm;

namespace {

class FrozenAnalysis
    : public mllm::impl::FrozenAnalysisPassBase<FrozenAnalysis> {
public:
  using Base::Base;

  void runOnOperation() override {
    for (auto model : getOperation().getOps<ModelOp>()) {
      FailureOr<DenseMap<Operation *, GroupGrads>> grads =
          analyzeGradients(model);
      if (failed(grads))
        return signalPassFailure();
      model.walk([&](LayersOp group) {
        auto it = grads->find(group);
        GroupGrads g = it == grads->end() ? GroupGrads() : it->second;
        int64_t count = group.getCount();
        setFlag(group, "needs_weight_grad", g.weightGrad);
        setFlag(group, "needs_input_grad", g.inputGrad);
        setFlag(group, "needs_input_grad_after_first", g.inputGradAfterFirst);
        setFlag(group, "recomputes", g.recompute);
        if (g.weightGrad)
          numWeightGrad += count;
        if (g.inputGrad)
          numInputGrad += count;
        else if (g.inputGradAfterFirst)
          numInputGrad += count - 1;
      });
    }
  }

private:
  static void setFlag(Operation *op, StringRef name, bool value) {
    if (value)
      op->setAttr(name, UnitAttr::get(op->getContext()));
    else
      op->removeAttr(name);
  }
};

} // namespace
