//===- Estimate.cpp - the iteration estimate of a pipeline plan -----------===//
//
// estimateIterationTime (Partition.h): fill and drain along the longest
// path, plus a period per microbatch that is the slowest stage's time unless
// a stage capped by memory makes the steady state slower; then the period is
// the maximum cycle ratio of the programs' event graph (CycleRatio.h).
// Checked against mllm-sim on capped plans (test/mllm-sim/memory-cap.test);
// docs/plan-format.md, "Iteration estimate".
//
//===----------------------------------------------------------------------===//
#include "CycleRatio.h"
#include "PartitionImpl.h"

#include "mllm/Plan/Warmup.h"

#include "llvm/ADT/STLExtras.h"

#include <cassert>
#include <cmath>
#include <limits>
#include <numeric>
#include <tuple>

using namespace mllm::plan;

namespace {

/// The steady state of the generator's programs as a periodic event graph:
/// per stage the events F, Bd and Bw of one microbatch; an edge u -> v with
/// lag l says that v of microbatch i waits for u of microbatch i - l.
class SteadyState {
public:
  explicit SteadyState(const std::vector<std::vector<StagePlan>> &paths,
                       int64_t microbatches);
  /// The largest ratio of time to lag over the cycles: the least period
  /// every cycle allows.
  double period() const;
  /// The fewest microbatches a stage held back below its warm-up depth
  /// (by its cap, one carried down to it or its share of one) may hold; 0
  /// if none is.
  int64_t heldBack() const { return fewestHeldBack; }

private:
  std::vector<const StagePlan *> stages;
  int64_t fewestHeldBack = 0;
  /// An edge weighs its source event's time and a transfer on the way.
  std::vector<detail::RatioEdge> edges;

  int stageOf(const StagePlan &s);
};

int SteadyState::stageOf(const StagePlan &s) {
  for (size_t i = 0; i < stages.size(); ++i)
    if (stages[i]->module == s.module && stages[i]->firstLayer == s.firstLayer)
      return static_cast<int>(i);
  stages.push_back(&s);
  return static_cast<int>(stages.size() - 1);
}

SteadyState::SteadyState(const std::vector<std::vector<StagePlan>> &paths,
                         int64_t microbatches) {
  // Stages, their depth to the loss and their warm-ups (Generate.cpp).
  std::vector<std::vector<int>> ids;
  for (const std::vector<StagePlan> &path : paths) {
    ids.emplace_back();
    for (const StagePlan &s : path)
      ids.back().push_back(stageOf(s));
  }
  size_t n = stages.size();
  std::vector<int64_t> depth(n, 0);
  std::vector<double> trip(n, 0.0); ///< Forwards to the loss and Bd back.
  for (const std::vector<int> &path : ids) {
    double after = 0;
    for (size_t i = path.size(); i-- > 0;) {
      int s = path[i];
      depth[s] = std::max<int64_t>(depth[s], path.size() - i - 1);
      after += stages[s]->fwd + stages[s]->bwd - stages[s]->bwdWeight;
      trip[s] = std::max(trip[s], after);
    }
  }
  auto backward = [&](int s) { return stages[s]->bwd > 0; };
  // The generator's warm-ups (multimodalWarmups): a stage carries from the
  // one before it on a path where both run a backward; a predecessor is
  // deeper than its successors, so deepest first is an order.
  std::vector<WarmupStage> rule(n);
  for (size_t s = 0; s < n; ++s) {
    const StageMemory &m = stages[s]->memory;
    rule[s].depth = depth[s];
    rule[s].trip = trip[s];
    rule[s].backward = backward(static_cast<int>(s));
    if (m.wanted > 0 && m.capped())
      rule[s].fits = std::max<int64_t>(m.inFlight, 1);
  }
  for (const std::vector<int> &path : ids)
    for (size_t i = 0; i + 1 < path.size(); ++i) {
      int a = path[i], b = path[i + 1];
      assert(depth[a] > depth[b] && "paths share their suffixes");
      if (backward(a) && !llvm::is_contained(rule[b].carriesFrom, a))
        rule[b].carriesFrom.push_back(a);
    }
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  llvm::sort(order, [&](int a, int b) {
    return std::tie(depth[b], a) < std::tie(depth[a], b);
  });
  std::vector<int64_t> warmup = multimodalWarmups(rule, order, microbatches);
  for (size_t s = 0; s < n; ++s)
    if (backward(static_cast<int>(s)) &&
        warmup[s] < std::min(depth[s], microbatches) &&
        (fewestHeldBack == 0 || warmup[s] + 1 < fewestHeldBack))
      fewestHeldBack = warmup[s] + 1;

  // Events: 3s = F, 3s + 1 = Bd (with the recompute), 3s + 2 = Bw.
  for (size_t s = 0; s < n; ++s) {
    const StagePlan &st = *stages[s];
    int f = 3 * static_cast<int>(s);
    double bd = st.bwd - st.bwdWeight;
    if (!backward(static_cast<int>(s))) {
      edges.push_back({f, f, st.fwd, 1}); // Forwards back to back.
      continue;
    }
    int64_t w = warmup[s];
    edges.push_back({f, f + 1, st.fwd, -w}); // Bd(i) after F(i + w)
    edges.push_back({f + 1, f + 2, bd, 0});  // Bw(i) after Bd(i)
    edges.push_back(
        {f + 2, f, st.bwdWeight, w + 1}); // F(j) after Bw(j - w - 1)
  }
  for (size_t p = 0; p < ids.size(); ++p)
    for (size_t i = 0; i + 1 < ids[p].size(); ++i) {
      int a = ids[p][i], b = ids[p][i + 1];
      // Two stages taken for one would make a cycle of lag 0 that no period
      // allows.
      assert(a != b && "two stages of a path share a module and first layer");
      const StagePlan &sa = *stages[a], &sb = *stages[b];
      double transfer = paths[p][i].sendTime;
      edges.push_back({3 * a, 3 * b, sa.fwd + transfer, 0}); // activation
      if (backward(a) && backward(b))                        // gradient
        edges.push_back(
            {3 * b + 1, 3 * a + 1, sb.bwd - sb.bwdWeight + transfer, 0});
    }
}

/// The edges scanned so far on this thread: estimateWork().
thread_local int64_t scannedEdges = 0;

double SteadyState::period() const {
  double slowest = 0, all = 0;
  for (const StagePlan *s : stages)
    slowest = std::max(slowest, s->fwd + s->bwd);
  for (const detail::RatioEdge &e : edges)
    all += e.weight;
  double ratio = detail::maxCycleRatio(static_cast<int>(3 * stages.size()),
                                       edges, scannedEdges);
  // No period allows a cycle within one microbatch; the sum of the edges'
  // weights, more than any cycle's, stands for it, as an estimate must be
  // finite. (Every stage's own cycle rules out -infinity.)
  if (ratio == std::numeric_limits<double>::infinity())
    return std::max(all, slowest);
  // Each stage's own cycle is one of them: never below the slowest stage.
  return std::max(ratio, slowest);
}

} // namespace

namespace mllm::plan::detail {

int64_t estimateWork() { return scannedEdges; }

bool anyCapped(const std::vector<std::vector<StagePlan>> &paths) {
  for (const std::vector<StagePlan> &path : paths)
    for (const StagePlan &s : path)
      if (s.bwd > 0 && s.memory.wanted > 0 && s.memory.capped())
        return true;
  return false;
}

StageMemory stageMemory(const PipelineModule &m, int64_t first, int64_t count,
                        bool last) {
  StageMemory mem;
  if (m.memory.empty())
    return mem;
  auto add = [&](const LayerMemory &l) {
    mem.weights += l.weights;
    mem.grads += l.grads;
    mem.optimizer += l.optimizer;
    mem.activations += l.activations;
  };
  for (int64_t l = first; l < first + count; ++l)
    add(m.memory[l]);
  if (last && first > 0)
    add(m.lastStageExtra);
  // Gradients go back to the module's previous stage (capInFlightAfter
  // counts them only where it runs a backward); the LLM's first stage's go
  // to the encoders, which Allocate knows.
  double received = m.receivedBytes(first == 0);
  setMessageTerms(mem, received, m.sentBytes(last),
                  first == 0 ? 0.0 : received);
  return mem;
}

double worstMemoryRatio(const PipelinePlan &plan, double capacity) {
  double worst = 0;
  if (capacity > 0)
    for (const std::vector<StagePlan> &path : plan.paths)
      for (const StagePlan &s : path)
        worst = std::max(worst, s.memory.total() / capacity);
  return worst;
}

bool fitsOneInFlight(StageMemory mem, double capacity) {
  mem.wanted = mem.inFlight = 1;
  return mem.fits(capacity);
}

StagePlan stagePlan(const PipelineModule &m, llvm::ArrayRef<LayerTime> times,
                    int64_t first, int64_t count, bool last) {
  StagePlan sp;
  sp.module = m.name;
  sp.firstLayer = first;
  sp.numLayers = count;
  for (int64_t l = first; l < first + count; ++l) {
    sp.fwd += times[l].fwd;
    sp.bwd += times[l].bwd;
    sp.bwdWeight += times[l].bwdWeight;
  }
  sp.memory = stageMemory(m, first, count, last);
  return sp;
}

std::vector<StagePlan> stagePlans(const PipelineModule &m,
                                  llvm::ArrayRef<LayerTime> times,
                                  llvm::ArrayRef<int64_t> sizes) {
  std::vector<StagePlan> out;
  int64_t at = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    out.push_back(stagePlan(m, times, at, sizes[i], i + 1 == sizes.size()));
    at += sizes[i];
  }
  return out;
}

} // namespace mllm::plan::detail

double mllm::plan::estimateIterationTime(
    const std::vector<std::vector<StagePlan>> &paths, int64_t microbatches,
    double atMost) {
  double bottleneck = 0, longest = 0, longestFull = 0, bottleneckWeight = 0;
  bool any = false;
  for (const std::vector<StagePlan> &path : paths) {
    // The frozen-aware schedules send a stage's input gradient before its
    // weight gradient, so one microbatch's way through the path runs
    // forwards and input gradients only.
    double sum = 0, full = 0;
    for (size_t i = 0; i < path.size(); ++i) {
      const StagePlan &s = path[i];
      double t = s.fwd + s.bwd;
      double transfers = i + 1 < path.size() ? 2 * s.sendTime : 0.0;
      sum += t - s.bwdWeight + transfers;
      full += t + transfers;
      if (t > bottleneck) {
        bottleneck = t;
        bottleneckWeight = s.bwdWeight;
      }
      any = true;
    }
    longest = std::max(longest, sum);
    longestFull = std::max(longestFull, full);
  }
  if (!any)
    return 0;
  // The bottleneck's last weight gradient ends the iteration.
  longest += bottleneckWeight;
  double m = static_cast<double>(microbatches);
  double uncapped = longest - bottleneck + m * bottleneck;
  // The steady state only lengthens the estimate: past atMost it cannot
  // change a comparison with it.
  if (!detail::anyCapped(paths) || uncapped > atMost)
    return uncapped;
  // The k microbatches a held-back stage admits start without waiting; the
  // others follow one period apart, and the last needs a path's length
  // (weight gradients included: a held-back stage waits for them too).
  SteadyState steady(paths, microbatches);
  double k = static_cast<double>(
      std::min<int64_t>(std::max<int64_t>(steady.heldBack(), 1), microbatches));
  double period = steady.period();
  if (period <= bottleneck)
    return uncapped;
  return std::max(uncapped, longestFull + (m - k) * period);
}
