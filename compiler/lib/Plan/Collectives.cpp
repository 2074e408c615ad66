//===- Collectives.cpp - TP and CP collectives inside a layer -------------===//
//
// What a layer's tensor- and context-parallel collectives cost on the
// cluster's links (docs/cost-model.md, "Collectives"): Megatron's TP
// all-reduces of the forward and the input gradient, and the CP K/V
// all-gather and dK/dV reduce-scatter (brief §C.8), which hide behind the
// attention they feed.
//
//===----------------------------------------------------------------------===//
#include "mllm/Plan/CostModel.h"

#include <algorithm>

using namespace mllm;
using namespace mllm::plan;
using model::LayerShape;

namespace {

/// Softmax statistics and the CP gradients are fp32 whatever the precision.
constexpr double fp32Bytes = 4;

/// The collectives of one layer, per microbatch and GPU.
struct Collectives {
  /// TP all-reduces of the forward and of the input gradient (Megatron's
  /// f and g operators), and the bytes each reduces.
  int forwardAllReduces = 0, inputGradAllReduces = 0;
  double allReduceBytes = 0;
  /// A column-parallel layer without a row-parallel partner gathers its
  /// output in the forward (bytes of the whole output).
  double forwardAllGatherBytes = 0;
  /// CP: the whole sequence's K and V in the forward (gathered again in the
  /// backward) and their fp32 gradients reduce-scattered in the backward
  /// (brief §C.8).
  double cpGatherBytes = 0, cpReduceScatterBytes = 0;
};

Collectives collectivesOf(LayerKind kind, const LayerShape &s,
                          const Workload &w) {
  Collectives c;
  const double eb = w.elementBytes;
  const double t = w.gpuTokens();
  const double h = s.hidden;
  const double tp = std::max<int64_t>(w.tp, 1);
  switch (kind) {
  case LayerKind::TransformerBlock:
  case LayerKind::ConformerBlock:
    // After the attention's output projection and the FFN's second matmul;
    // a conformer's two half-step FFNs reduce too, counted once each.
    c.forwardAllReduces = c.inputGradAllReduces =
        kind == LayerKind::ConformerBlock ? 3 : 2;
    c.allReduceBytes = t * h * eb;
    if (w.cp > 1) {
      double kv = double(s.kvHeads * s.headDim) / tp;
      c.cpGatherBytes = double(w.tokens) * 2 * kv * eb;
      c.cpReduceScatterBytes = double(w.tokens) * 2 * kv * fp32Bytes;
    }
    break;
  case LayerKind::TokenEmbedding: // Vocab-parallel lookup: sum the parts.
    c.forwardAllReduces = 1;
    c.allReduceBytes = t * h * eb;
    break;
  case LayerKind::MLP: // Column- then row-parallel, like an FFN.
    c.forwardAllReduces = c.inputGradAllReduces = 1;
    c.allReduceBytes = t * double(s.out) * eb;
    break;
  case LayerKind::AttentionPool: { // Its output is one probe per item.
    double span = w.attentionSpan > 0 ? w.attentionSpan : w.tokens;
    c.forwardAllReduces = c.inputGradAllReduces = 1;
    c.allReduceBytes = t / span * h * eb;
    break;
  }
  case LayerKind::Linear: // Column-parallel: gather the output.
    c.forwardAllGatherBytes = t * double(s.out) * eb;
    c.inputGradAllReduces = 1;
    c.allReduceBytes = t * double(s.in) * eb;
    break;
  case LayerKind::LMHead: // Vocab-parallel cross-entropy: max and sum.
    c.forwardAllReduces = 2;
    c.allReduceBytes = t * fp32Bytes;
    break;
  default:
    break;
  }
  return c;
}

/// Exposed seconds of `c` in the forward and the input gradient, given the
/// attention compute the CP collectives overlap.
std::pair<double, double> commTimes(const Collectives &c, const Workload &w,
                                    const Device &device, double attnForward,
                                    double attnBackward) {
  int64_t tp = std::max<int64_t>(w.tp, 1), cp = std::max<int64_t>(w.cp, 1);
  double tpLink = device.linkBandwidth(tp);
  double fwd =
      c.forwardAllReduces * allReduceTime(c.allReduceBytes, tp, tpLink) +
      allReduceTime(c.forwardAllGatherBytes, tp, tpLink) / 2;
  double igrad =
      c.inputGradAllReduces * allReduceTime(c.allReduceBytes, tp, tpLink);
  if (cp > 1 && c.cpGatherBytes > 0) {
    // A CP group is cp runs of tp ranks, tp innermost.
    double cpLink = device.linkBandwidth(cp * tp);
    double gather = allReduceTime(c.cpGatherBytes, cp, cpLink) / 2;
    double scatter = allReduceTime(c.cpReduceScatterBytes, cp, cpLink) / 2;
    // Prefetched head group by head group behind the attention it feeds
    // (brief §C.8): only what outlasts the attention is exposed.
    fwd += std::max(0.0, gather - attnForward);
    igrad += std::max(0.0, gather + scatter - attnBackward);
  }
  return {fwd, igrad};
}

} // namespace

double Device::linkBandwidth(int64_t ranks) const {
  return gpusPerNode <= 0 || ranks <= gpusPerNode ? intraNodeBandwidth
                                                  : interNodeBandwidth;
}

double plan::allReduceTime(double bytes, int64_t group, double bandwidth) {
  if (group <= 1 || bytes <= 0 || !(bandwidth > 0))
    return 0;
  double n = static_cast<double>(group);
  return 2 * (n - 1) / n * bytes / bandwidth;
}

std::pair<double, double>
plan::collectiveTimes(LayerKind kind, const LayerShape &shape,
                      const Workload &workload, const Device &device,
                      double attnForward, double attnBackward,
                      bool inputIsActivation) {
  Collectives c = collectivesOf(kind, shape, workload);
  if (!inputIsActivation)
    c.inputGradAllReduces = 0;
  auto [fwd, igrad] = commTimes(c, workload, device, attnForward, attnBackward);
  return {fwd, inputIsActivation ? igrad : 0.0};
}
