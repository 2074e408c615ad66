//===- JobModel.h - a job's gradients and costs, from the IR --*- C++ -*-===//
//
// The bridge between the mllm dialect and the plan libraries (Frozen.h,
// CostModel.h): which gradients every layer group computes, and what every
// partition unit (a transformer block with the layers that ride with it)
// costs. mllm-frozen-analysis, mllm-partition, mllm-rank-map and mllmc's
// --explain / --emit=plan all read the job through these two functions, so
// they agree on every number.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_PLAN_JOBMODEL_H
#define MLLM_PLAN_JOBMODEL_H

#include "mllm/Dialect/MLLM/IR/MLLMOps.h"
#include "mllm/Plan/CPSplit.h"
#include "mllm/Plan/CostModel.h"
#include "mllm/Plan/Partition.h"

#include "mlir/Support/LLVM.h"
#include "llvm/ADT/DenseMap.h"

#include <string>
#include <vector>

namespace mllm {
namespace plan {
class Profile;
} // namespace plan

/// Which gradients the layers of one `mllm.layers` group compute. Layers of
/// a group are identical, so the flags hold for all of them, except that the
/// first layer of a group holding the first trainable layer of its path
/// needs no input gradient (`inputGradAfterFirst`).
struct GroupGrads {
  bool weightGrad = false;
  bool inputGrad = false;           ///< Every layer of the group.
  bool inputGradAfterFirst = false; ///< Every layer but the first.
  bool recompute = false; ///< Recompute requested and a backward runs.
  bool inputGradAt(int64_t layer) const {
    return inputGrad || (inputGradAfterFirst && layer > 0);
  }
  bool anyBackward() const {
    return weightGrad || inputGrad || inputGradAfterFirst;
  }
};

/// The frozen analysis of `model` (analyzeFrozen over encoder -> projector
/// -> LLM, with the LLM's leading token embedding as a source of its own).
/// Fails with a diagnostic on `model` if the result is not uniform within a
/// group (an internal error).
mlir::FailureOr<llvm::DenseMap<mlir::Operation *, GroupGrads>>
analyzeGradients(ModelOp model);

/// One partition unit: a transformer (or conformer) block, or any layer of a
/// part without blocks, together with the other layers that ride with it.
struct UnitCost {
  /// Seconds per microbatch on one GPU, with the gradient flags applied.
  double fwd = 0, wgrad = 0, igrad = 0, recompute = 0;
  /// Backward seconds if every layer trained (what frozen_unaware balances).
  double trainedBwd = 0;
  double params = 0;          ///< Parameters held by one GPU.
  double trainableParams = 0; ///< Of which train.
  /// Activation bytes saved for backward per microbatch (0 without
  /// backward; only the inputs with full recompute). With cp > 1, those of
  /// the rank holding the most tokens.
  double activationBytes = 0;
  /// Of fwd and igrad (recompute includes fwdComm again): seconds of TP and
  /// CP collectives (docs/cost-model.md).
  double fwdComm = 0, igradComm = 0;
  /// Names of the non-block layer groups riding with this unit
  /// ("embed", "vision_projector.mlp").
  std::vector<std::string> extras;
  double bwd() const { return wgrad + igrad + recompute; }
};

/// An encoder or the LLM, as the partitioner sees it.
struct PartInfo {
  mlir::Operation *op = nullptr; ///< EncoderOp or LLMOp.
  std::string name;
  bool isLLM = false;
  ModuleParallelOp parallel;      ///< May be null (tp = pp = cp = 1).
  int64_t tp = 1, pp = 1, cp = 1; ///< pp 0: `pp = auto`.
  std::vector<int64_t> explicitStages;
  std::vector<UnitCost> units;
  /// What one microbatch is to this part (and, for an encoder, to its
  /// projector, which reads the merged tokens): the one definition the cost
  /// model, the schedule's message shapes and the FLOP count share.
  plan::Workload workload, projectorWorkload;
  /// A tied LM head owns no parameters, but a last stage that does not also
  /// hold the embedding keeps its own copy of the matrix (parameters per
  /// GPU; trainable when the LLM trains).
  double tiedHeadParams = 0;
  bool tiedHeadTrainable = false;
  /// cp > 1: how one sequence is split over the CP ranks, and the rank the
  /// times are those of (the slowest: a stage waits for it).
  std::optional<plan::CPSplit> cpSplit;
  int64_t cpRank = 0;
  /// Per microbatch and GPU, the bytes a stage of this part sends the next
  /// stage of the part, and the bytes its last stage sends downstream (an
  /// encoder's projector output; 0 for the LLM).
  double cutBytes = 0, outputBytes = 0;
  /// The rows of the tensor behind cutBytes: the LLM's tokens per CP rank;
  /// an encoder's tokens and, with a class token, one more per item (the
  /// hand-over to the projector drops it, so outputBytes does not count it).
  int64_t cutTokens = 0;
  /// Parameters of that copy held by the stage of units [begin, end): the
  /// last stage, when it does not start at the embedding.
  double tiedHeadCopy(int64_t begin, int64_t end) const {
    return tiedHeadParams > 0 && begin > 0 &&
                   static_cast<size_t>(end) == units.size()
               ? tiedHeadParams
               : 0;
  }
  /// Where diagnostics about this part's parallelism go.
  mlir::Location loc() const {
    return parallel ? parallel->getLoc() : op->getLoc();
  }
};

/// The whole job.
struct JobModel {
  ModelOp model;
  DataOp data;
  ClusterOp cluster;
  ParallelOp parallel;         ///< May be null.
  TrainOp train;               ///< May be null (bf16, adamw).
  std::vector<PartInfo> parts; ///< Encoders in model order, then the LLM.
  int64_t dp = 1, worldSize = 1, microbatches = 1;
  /// The GPU and its links as the cost model sees them.
  plan::Device device;
  EncoderLayout layout = EncoderLayout::Parallel;
  PartitionPolicy policy = PartitionPolicy::FrozenAware;
  int64_t elementBytes = 2;           ///< Weights and activations.
  double gradBytesPerParam = 4;       ///< fp32 gradient accumulation.
  double optimizerBytesPerParam = 12; ///< AdamW: fp32 master + 2 moments.
};

struct JobModelOptions {
  const plan::Profile *profile = nullptr;
  double efficiency = 0.5;
};

/// One GPU's memory of `params` parameters (of which `trainable` train) and
/// `activationBytes` saved per microbatch: weights in the job's precision,
/// fp32 gradients and the optimizer's state of the trainable ones.
plan::LayerMemory unitMemory(const JobModel &job, double params,
                             double trainable, double activationBytes);

/// Reads the job of `module`; emits an error and fails when a piece the cost
/// model needs (model, data, cluster) is missing.
mlir::FailureOr<JobModel> buildJobModel(mlir::ModuleOp module,
                                        const JobModelOptions &options);

/// True for the layer kinds the partitioner splits between stages.
inline bool isPartitionBlock(LayerKind kind) {
  return kind == LayerKind::TransformerBlock ||
         kind == LayerKind::ConformerBlock;
}

/// Whether a part (an EncoderOp, ProjectorOp or LLMOp) has blocks: then
/// its partition units are its blocks (with the other layers riding along),
/// else every layer is a unit.
bool hasPartitionBlocks(mlir::Operation *part);

/// Milliseconds rounded to the microsecond, as mllm.stage and
/// mllm.pipeline store them.
double roundMillis(double seconds);

} // namespace mllm

#endif // MLLM_PLAN_JOBMODEL_H
