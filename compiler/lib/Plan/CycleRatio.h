//===- CycleRatio.h - largest cycle ratio of a periodic graph -*- C++ -*-===//
//
// The steady state of a pipeline whose memory caps hold stages back
// (Estimate.cpp) repeats at the largest ratio of time to microbatches
// spanned over the cycles of its event graph. Howard's policy iteration
// finds it in a few passes over the edges.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_PLAN_CYCLERATIO_H
#define MLLM_PLAN_CYCLERATIO_H

#include "llvm/ADT/ArrayRef.h"

#include <cstdint>

namespace mllm::plan::detail {

/// An edge of a periodic event graph: event `to` of iteration i waits
/// `weight` after event `from` of iteration i - `lag`.
struct RatioEdge {
  int from, to;
  double weight; ///< >= 0.
  int64_t lag;
};

/// The largest weight / lag over the cycles of a graph of `nodes` events:
/// the least period at which the events can repeat. Every cycle must span
/// at least one microbatch (lag > 0), as those of a deadlock-free schedule
/// do; where the search meets one that does not, +infinity (no period
/// allows it), but it need not meet one. -infinity if the graph has no
/// cycle. Adds the edges it scans to `work`.
///
/// Howard's policy iteration for the maximum cycle ratio (Cochet-Terrasson
/// et al., "Numerical computation of spectral elements in max-plus
/// algebra", 1998; Dasdan, "Experimental analysis of the fastest optimum
/// cycle ratio and mean algorithms", 2004): each event follows one edge;
/// the cycles this policy closes give each event a ratio and a potential;
/// an event switches to an edge that leads to a larger ratio, or to a
/// larger potential at the same ratio, until none does: a few rounds on
/// pipelines, about 15 in the planner's capped searches, and at most 1.6 x
/// the events on random graphs a review tried. Improvements below 1e-10 of
/// the graph's total weight are not taken. Should it not settle within 100
/// + nodes rounds, bisection finishes from the ratio it has.
double maxCycleRatio(int nodes, llvm::ArrayRef<RatioEdge> edges, int64_t &work);

/// The same value by bisection on the period with a longest-path check
/// (Bellman-Ford) between `lo`, the ratio of some cycle, and the graph's
/// total weight: maxCycleRatio's fallback, and an independent check of it.
double maxCycleRatioByBisection(int nodes, llvm::ArrayRef<RatioEdge> edges,
                                double lo, int64_t &work);

} // namespace mllm::plan::detail

#endif // MLLM_PLAN_CYCLERATIO_H
