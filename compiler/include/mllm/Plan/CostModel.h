//===- CostModel.h - per-layer cost of a training step ----------*- C++ -*-===//
//
// The single cost model of mllmc: what one layer of one group costs on one
// GPU for one microbatch, as a function of the data layout, the TP and CP
// degrees and the hardware. The partitioner, the memory check, the plan and
// (later) the simulator and runtime all read it. docs/cost-model.md gives the
// formulas.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_PLAN_COSTMODEL_H
#define MLLM_PLAN_COSTMODEL_H

#include "mllm/Model/Layers.h"

#include "llvm/Support/Error.h"

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mllm::plan {

/// What one microbatch looks like to one module on one GPU.
struct Workload {
  /// Tokens the module processes per microbatch (all sequences of the
  /// microbatch, before CP splitting): for an encoder, its items' tokens; for
  /// the LLM, microbatch_size x seq_len.
  int64_t tokens = 0;
  /// Tokens one attention sees (the sequence or item length). Attention cost
  /// grows with tokens x attentionSpan.
  int64_t attentionSpan = 0;
  int64_t tp = 1, cp = 1;
  /// Bytes per activation/weight element (2 for bf16/fp16, 4 for fp32).
  int64_t elementBytes = 2;
  /// With cp > 1, the GPU being priced: the tokens it holds (0: tokens / cp)
  /// and its share of the whole sequence's attention work (0: 1 / cp). A CP
  /// balancer gives ranks unequal tokens and unequal attention on purpose
  /// (brief §C.5); a stage costs what its slowest rank costs.
  int64_t cpTokens = 0;
  double cpAttentionShare = 0;

  /// The tokens this GPU holds and its share of the attention work.
  double gpuTokens() const;
  double attentionShare() const;
};

/// Hardware as the roofline sees it.
struct Device {
  double peakFlops = 0;       ///< FLOP/s, dense bf16.
  double memoryBandwidth = 0; ///< Bytes/s.
  /// Fraction of peak a large matmul reaches; the default is a common
  /// observed MFU for transformer training.
  double efficiency = 0.5;
  /// Links for the TP and CP collectives inside a layer (bytes/s; 0 counts
  /// as infinite, i.e. no communication cost): a group of at most
  /// `gpusPerNode` consecutive ranks talks over the intra-node link, a
  /// larger one over the inter-node link.
  double intraNodeBandwidth = 0, interNodeBandwidth = 0;
  int64_t gpusPerNode = 0; ///< 0: every group is inside a node.
  /// The link of a group spanning `ranks` consecutive ranks.
  double linkBandwidth(int64_t ranks) const;
};

/// Cost of one layer (not the whole group) for one microbatch on one GPU,
/// after TP/CP sharding. FLOPs are totals of that GPU's share.
struct LayerCost {
  double params = 0;     ///< Parameters held by one GPU.
  double fwdFlops = 0;   ///< Forward.
  double wgradFlops = 0; ///< Backward, weight gradients.
  double igradFlops = 0; ///< Backward, input gradients.
  double fwdBytes = 0;   ///< Memory traffic of the forward (roofline).
  /// Activation bytes kept for backward per microbatch when nothing is
  /// recomputed; with full recompute only `inputBytes` is kept.
  double activationBytes = 0;
  double inputBytes = 0;  ///< Size of the layer's input activation.
  double outputBytes = 0; ///< Bytes handed to the next layer.
  /// Seconds, from the roofline or a measured profile.
  double fwd = 0, wgrad = 0, igrad = 0;

  /// The part of `fwdFlops` spent in attention scores and values; it grows
  /// with the attention span, the rest with the token count only.
  double attnFlops = 0;
  /// Memory traffic of the two backward parts (roofline); 0 where that part
  /// does not exist (no weights; an input that is data, not an activation).
  double wgradBytes = 0, igradBytes = 0;
  /// Parameters the layer reads but another layer owns (a tied LM head uses
  /// the token embedding's matrix): a stage that holds this layer without
  /// the owner must keep a copy. Sharded like `params`.
  double tiedParams = 0;

  /// Seconds of TP and CP collectives included in `fwd` and `igrad` (the
  /// exposed part: a CP all-gather hides behind the attention it feeds).
  /// 0 with a measured profile, whose times include them.
  double fwdComm = 0, igradComm = 0;
};

/// Measured per-layer times (Profile.h).
class Profile;

/// The cost of one layer of `kind` with `shape` under `workload`. Times come
/// from `profile` when it has a matching entry, else from the roofline on
/// `device`.
LayerCost layerCost(LayerKind kind, const model::LayerShape &shape,
                    const Workload &workload, const Device &device,
                    const Profile *profile = nullptr);

/// Roofline time of one kernel: max(flops / (peak x efficiency), bytes /
/// bandwidth). A zero peak or bandwidth drops that term (a device known only
/// by one number); an efficiency outside (0, 1] counts as 1.
double rooflineTime(double flops, double bytes, const Device &device);

/// Seconds of a ring all-reduce of `bytes` over `group` GPUs on a link of
/// `bandwidth` bytes/s: 2 (group - 1) / group x bytes / bandwidth (0 for a
/// group of one or an infinite link). An all-gather or a reduce-scatter of
/// `bytes` in all moves half of that.
double allReduceTime(double bytes, int64_t group, double bandwidth);

/// Exposed seconds of the TP and CP collectives of one layer in its forward
/// and its input gradient (docs/cost-model.md, "Collectives"), given the
/// seconds of its attention's forward and backward, which hide the CP K/V
/// exchange; 0 for the input gradient of a layer whose input is data.
std::pair<double, double>
collectiveTimes(LayerKind kind, const model::LayerShape &shape,
                const Workload &workload, const Device &device,
                double attnForward, double attnBackward,
                bool inputIsActivation);

/// Backward seconds of a layer under the frozen analysis (brief §B.4 Eq. 2
/// plus recompute): [weight grad] wgrad + [input grad] igrad + [recompute]
/// fwd. The partitioner's per-layer cost is `cost.fwd` plus this.
double backwardTime(const LayerCost &cost, bool needsWeightGrad,
                    bool needsInputGrad, bool recomputes);

} // namespace mllm::plan

#endif // MLLM_PLAN_COSTMODEL_H
