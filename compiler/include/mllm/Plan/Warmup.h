//===- Warmup.h - the warm-ups of memory-aware multimodal 1F1B --*- C++ -*-===//
//
// How many forwards each stage runs before its first backward under
// memory-aware multimodal 1F1B: one rule for the schedule generator
// (Generate.cpp), which writes the programs, and the iteration estimate's
// steady state (Estimate.cpp), which prices them. docs/plan-format.md,
// "Iteration estimate".
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_PLAN_WARMUP_H
#define MLLM_PLAN_WARMUP_H

#include "llvm/ADT/ArrayRef.h"

#include <cstdint>
#include <vector>

namespace mllm::plan {

/// How memory-aware multimodal 1F1B hands a cap down. A stage runs no
/// longer a warm-up than a predecessor it sends gradients to (that one
/// would wait for a forward the stage cannot run yet), and the stages after
/// a capped one hold their share of what it holds: a microbatch stays in
/// flight on a stage for its round trip (the forwards from it to the loss
/// and the input gradients back), so at the capped stage's pace, its round
/// trip over the microbatches it holds, a stage whose round trip takes r
/// needs ceil(held x r / capped round trip). Carried flat instead (every
/// stage after a capped one at its warm-up), neighbours with equal warm-ups
/// run in lockstep, one round trip of them all per microbatch. Round trips
/// count forwards, recomputes and input gradients, not transfers.
/// multimodalWarmups applies it; docs/plan-format.md, "Iteration estimate".
class WarmupShare {
public:
  /// None: every stage keeps its warm-up.
  WarmupShare() = default;
  /// Of a stage whose round trip takes `trip` and that memory holds to
  /// `warmup`, below its 1F1B warm-up.
  static WarmupShare of(int64_t warmup, double trip);
  /// The smaller of the two: a stage meets each predecessor's.
  void meet(const WarmupShare &other);
  /// The warm-up of a stage whose round trip takes `trip` under this
  /// share, at most `warmup`.
  int64_t limit(int64_t warmup, double trip) const;

private:
  int64_t held = 0; ///< Microbatches; 0: no share.
  double trip = 0;
};

/// A stage as the warm-up rule sees it.
struct WarmupStage {
  /// Stages after it to the loss, along its longest path.
  int64_t depth = 0;
  /// Its round trip (WarmupShare): its forward, recompute and input
  /// gradient and those of every stage after it to the loss.
  double trip = 0;
  /// The most microbatches memory lets it hold; 0: no limit.
  int64_t fits = 0;
  bool backward = false;
  /// The predecessors with a backward that it sends gradients to: its
  /// warm-up is at most theirs, and it meets their shares.
  std::vector<int> carriesFrom;
};

/// Each stage's warm-up, the forwards it runs before its first backward:
/// min(depth, microbatches), held to fits - 1 by memory, then at most a
/// predecessor's it carries from and within the share of a capped stage
/// before it (WarmupShare). A stage without a backward runs every forward
/// first: `microbatches`. `order` lists every stage after those it carries
/// from. The warm-up never grows along a gradient edge, which the
/// schedules' deadlock freedom rests on (Generate.cpp).
std::vector<int64_t> multimodalWarmups(llvm::ArrayRef<WarmupStage> stages,
                                       llvm::ArrayRef<int> order,
                                       int64_t microbatches);

} // namespace mllm::plan

#endif // MLLM_PLAN_WARMUP_H
