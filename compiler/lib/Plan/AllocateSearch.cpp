//===- AllocateSearch.cpp - beyond the cuts StageCuts proposes ------------===//
//
// The Allocator's search (Allocator.h): more stages than the fewest that
// meet a bottleneck, where memory caps the plans; then, for each candidate
// whose stage counts could still beat the best, every cut of each module
// (CutSearch), one module at a time and jointly where few cuts are within
// the bound; within a budget (PipelineResources::searchBudget, cutSearchWork).
// docs/plan-format.md, "Every cut".
//
//===----------------------------------------------------------------------===//
#include "Allocator.h"

#include "llvm/ADT/STLExtras.h"

#include <limits>

using namespace mllm::plan;
using namespace mllm::plan::detail;

/// The fewest stages meeting a bottleneck leave more GPUs of the budget
/// idle, and a module given more stages for the same bottleneck holds more
/// microbatches in flight per GPU: where memory caps the plans, that can
/// be faster. So each module of each proposed candidate is raised, one at a
/// time, to every stage count within the budget whose plans could still
/// beat the best: by the bottleneck (the path work, plus microbatches - 1
/// times the candidate's bottleneck) and by memory (some cut of the raised
/// module whose every stage admits() may). Each is priced at level 0 (the
/// fastest cuts that fit); searchCuts searches the rest. Without memory
/// caps a proposed candidate has a bottleneck as low with fewer stages.
void Allocator::considerMoreStages(
    const std::vector<std::vector<int64_t>> &proposed) {
  if (!pipelined() || !best || !best->fits || res.memoryCapacity <= 0 ||
      llvm::all_of(modules,
                   [](const PipelineModule &m) { return m.memory.empty(); }))
    return;
  double floor = pathWorkFloor();
  double limit =
      CutSearch::limitFor(std::get<2>(*bestKey), floor, res.microbatches);
  // The others' bottlenecks by their cuts that fit (exact where searched:
  // MinMaxTable's may miss a last stage that fits), the raised module's by
  // memory too.
  auto mayWin = [&](const Candidate &c, size_t raised) {
    for (size_t j = 0; j < modules.size(); ++j) {
      const CutSearch *every = everyCut(j);
      double b = every ? every->bottleneck(c.stages[j])
                       : info[j].bottleneck[c.stages[j] - info[j].lo];
      if (b > limit)
        return false;
    }
    const CutSearch *every = everyCut(raised);
    double beat = beatBy(c);
    auto admitted = [&](int64_t after, int64_t first, int64_t end) {
      return admits(c, raised, floor, beat, after, first, end);
    };
    return !every ||
           every->bottleneck(c.stages[raised], limit, admitted) <= limit;
  };
  // Only where memory caps a plan of the proposal's stage counts (without
  // caps, more stages for the same bottleneck only lengthen the path); the
  // most promising first, as the budget may run out: by the best estimate
  // priced with those stage counts.
  std::map<std::vector<int64_t>, std::pair<double, bool>> byCounts;
  for (const Priced &p : priced) {
    auto [it, fresh] = byCounts.try_emplace(p.candidate.stages, kInf, false);
    it->second.first = std::min(it->second.first, p.estimate);
    it->second.second |= p.capped;
  }
  std::vector<std::pair<double, size_t>> order;
  for (size_t b = 0; b < proposed.size(); ++b) {
    auto it = byCounts.find(proposed[b]);
    if (it != byCounts.end() && it->second.second)
      order.emplace_back(it->second.first, b);
  }
  llvm::sort(order);
  std::set<std::vector<int64_t>> seen(proposed.begin(), proposed.end());
  for (const auto &[estimate, b] : order)
    for (size_t i = 0; i < modules.size(); ++i) {
      const std::vector<int64_t> &base = proposed[b];
      int64_t gpus = 0;
      for (size_t j = 0; j < modules.size(); ++j)
        gpus += base[j] * info[j].gpus;
      Candidate c;
      c.stages = base;
      c.raised = true;
      for (int64_t k = base[i] + 1; k <= info[i].hi; ++k) {
        gpus += info[i].gpus;
        if (gpus > res.gpuBudget)
          break;
        c.stages[i] = k;
        if (!seen.insert(c.stages).second)
          continue;
        if (!mayWin(c, i))
          continue;
        if (!spend())
          return;
        ++searchPriced;
        consider(c);
        limit =
            CutSearch::limitFor(std::get<2>(*bestKey), floor, res.microbatches);
      }
    }
}

bool Allocator::spend(int64_t plans) {
  if (workStart < 0)
    workStart = estimateWork();
  int64_t layers = 0;
  for (const ModuleInfo &mi : info)
    layers += mi.n;
  int64_t cost = plans * (1 + layers / kCutSearchLayersPerPlan);
  if (searchBudget < cost ||
      estimateWork() - workStart > cutSearchWork(res.searchBudget))
    exhausted = true;
  if (exhausted)
    return false;
  searchBudget -= cost;
  return true;
}

double Allocator::pathWorkFloor() const {
  auto work = [&](size_t i) { return info[i].tripSums.back(); };
  double encoderPart = 0;
  for (size_t e : encoders)
    encoderPart =
        colocated() ? encoderPart + work(e) : std::max(encoderPart, work(e));
  return encoderPart + (llm >= 0 ? work(static_cast<size_t>(llm)) : 0.0);
}

double Allocator::colocatedBottleneck(const Candidate &c) const {
  if (!colocated())
    return 0;
  int64_t k = c.stages[encoders[0]];
  return maxOf(colocatedLoads(encoderBalance, c.colocated, k,
                              std::vector<double>(k, 0.0)));
}

double Allocator::cutBottleneck(const Candidate &c, bool fastest) {
  return std::max(colocatedBottleneck(c), partsBottleneck(c, fastest));
}

double Allocator::partsBottleneck(const Candidate &c, bool fastest) {
  double bottleneck = 0;
  for (size_t i = 0; i < modules.size(); ++i) {
    if (colocated() && !modules[i].isLLM)
      continue;
    const CutSearch *every = fastest ? everyCut(i) : nullptr;
    bottleneck = std::max(
        bottleneck, every ? every->bottleneck(c.stages[i])
                          : maxOf(stageLoads(info[i].balance, sizesOf(c, i))));
  }
  return bottleneck;
}

bool Allocator::outclassed(const Candidate &c) {
  if (!pipelined() || !bestKey || std::get<0>(*bestKey))
    return false;
  double limit = CutSearch::limitFor(std::get<2>(*bestKey), pathWorkFloor(),
                                     res.microbatches);
  // Both cutBottleneck(c, false) and (c, true) above the limit: the
  // candidate itself loses, and searchCuts would skip it (its limit can
  // only fall), so leaving it unpriced changes nothing.
  return colocatedBottleneck(c) > limit || (partsBottleneck(c, true) > limit &&
                                            partsBottleneck(c, false) > limit);
}

/// StageCuts proposes a handful of cuts per stage count, which may miss the
/// best. Where the best plan fits, every candidate's stage counts whose
/// plans could still estimate faster are searched through every cut of
/// each module (the LLM first; the others' cuts held, as the best found
/// so far), then jointly where the encoders' cuts within the bounds are
/// few: a branch and bound (CutSearch) with the best plan's estimate as
/// the incumbent. Within the budget this finds the best cut of each module
/// given the others, and for an LLM alone the best plan over every cut of
/// the stage counts priced.
void Allocator::searchCuts() {
  if (!pipelined() || !best || !best->fits)
    return;
  searchRan = true;
  // Most promising first: a good incumbent prunes the rest.
  std::vector<size_t> order(priced.size());
  for (size_t p = 0; p < order.size(); ++p)
    order[p] = p;
  llvm::sort(order, [&](size_t a, size_t b) {
    return std::tie(priced[a].estimate, a) < std::tie(priced[b].estimate, b);
  });
  std::vector<size_t> searchOrder;
  if (llm >= 0)
    searchOrder.push_back(static_cast<size_t>(llm));
  searchOrder.insert(searchOrder.end(), encoders.begin(), encoders.end());
  // Jointly, encoders outside, where their cuts within the bound are few.
  std::vector<size_t> joint(searchOrder.rbegin(), searchOrder.rend());
  double floor = pathWorkFloor();
  for (size_t p : order) {
    Candidate c = priced[p].candidate;
    // No cut of these stage counts beats the best: each searched module's
    // fastest fitting cut bounds its bottleneck, the others' cuts are held.
    if (cutBottleneck(c, true) >
        CutSearch::limitFor(std::get<2>(*bestKey), floor, res.microbatches))
      continue;
    // Module by module, again while one improves the plan (a module's best
    // cut depends on the others'); a search already made with the same
    // cuts held is not made again (the levels of one stage count differ
    // in the searched module's cut alone, for an LLM alone).
    for (size_t unchanged = 0, at = 0; unchanged < searchOrder.size();
         at = (at + 1) % searchOrder.size()) {
      Key before = *bestKey;
      if (searchesMade.insert(searchKey(c, {searchOrder[at]})).second &&
          !searchModule(c, searchOrder[at]))
        return;
      bool improved = *bestKey != before;
      if (improved)
        c = bestCandidate; // The next module's search holds this cut.
      unchanged = improved ? 1 : unchanged + 1;
    }
    std::vector<std::vector<int64_t>> key = searchKey(c, joint);
    if (llvm::count_if(joint, [&](size_t i) { return everyCut(i); }) < 2 ||
        searchesMade.count(key))
      continue;
    SearchFloor shared = searchFloor(c, joint);
    double combinations = 1, beat = beatBy(c);
    for (size_t i : llvm::ArrayRef(joint).drop_back())
      if (const CutSearch *every = everyCut(i))
        combinations *= every->count(
            c.stages[i], searchLimit(shared),
            [&](int64_t after, int64_t first, int64_t end) {
              return admits(c, i, shared.longest, beat, after, first, end);
            });
    if (combinations * kSearchSetupPlans > static_cast<double>(searchBudget) ||
        exhausted) {
      // Perhaps for a later candidate, with a lower limit; if not, the
      // plan is the best of each part's cuts with the others' held.
      skippedJoint.insert(key);
      continue;
    }
    skippedJoint.erase(key);
    searchesMade.insert(std::move(key));
    if (!searchJointly(c, joint))
      return;
  }
}

Allocator::SearchFloor
Allocator::searchFloor(const Candidate &c, llvm::ArrayRef<size_t> free) const {
  std::vector<std::vector<StagePlan>> paths;
  build(c, std::get<2>(*bestKey), &paths);
  SearchFloor f;
  for (const std::vector<StagePlan> &path : paths) {
    double sum = 0;
    for (size_t s = 0; s < path.size(); ++s) {
      const StagePlan &sp = path[s];
      sum += sp.fwd + sp.bwd - sp.bwdWeight +
             (s + 1 < path.size() ? 2 * sp.sendTime : 0.0);
      bool isFree = llvm::any_of(
          free, [&](size_t i) { return sp.module == modules[i].name; });
      if (!isFree && sp.fwd + sp.bwd > f.besides) {
        f.besides = sp.fwd + sp.bwd;
        f.besidesWeight = sp.bwdWeight;
      }
    }
    f.longest = std::max(f.longest, sum);
  }
  return f;
}

double Allocator::beatBy(const Candidate &c) const {
  const Key &b = *bestKey;
  int64_t llmStages = llm >= 0 ? c.stages[llm] : 0;
  std::vector<int64_t> encoderStages;
  for (size_t e : encoders)
    encoderStages.push_back(c.stages[e]);
  bool tieWins =
      std::make_tuple(gpusOf(c), -llmStages, encoderStages) <
      std::make_tuple(std::get<3>(b), std::get<4>(b), std::get<5>(b));
  return std::get<2>(b) * (tieWins ? 1 + 1e-9 : 1 - 1e-9);
}

std::vector<std::vector<int64_t>>
Allocator::searchKey(const Candidate &c, llvm::ArrayRef<size_t> free) {
  std::vector<std::vector<int64_t>> key = {
      {static_cast<int64_t>(free.size()), static_cast<int64_t>(free[0])},
      c.stages};
  // A module that is not searched keeps its cut, free or not.
  for (size_t j = 0; j < modules.size(); ++j)
    key.push_back(llvm::is_contained(free, j) && everyCut(j)
                      ? std::vector<int64_t>()
                      : sizesOf(c, j));
  return key;
}

// The estimate is at least longest + (microbatches - 1) x the bottleneck
// (estimateIterationTime adds the bottleneck's weight gradient, at least
// 0).
double Allocator::searchLimit(const SearchFloor &floor) const {
  return CutSearch::limitFor(std::get<2>(*bestKey), floor.longest,
                             res.microbatches);
}

/// A stage its own memory caps below its warm-up, to c microbatches, is
/// held back: the steady state's period is at least its round trip (its
/// forward and every forward after it on the path, the input gradients
/// back, its weight gradient: SteadyState's cycle) over c, and the
/// estimate at least longest + (microbatches - c) x that period (or the
/// uncapped estimate, longer still). Caps carried down or behind a
/// predecessor hold it to fewer. This bounds the plans where memory, not
/// the bottleneck, sets the pace, which the bottleneck's bound cannot.
bool Allocator::admits(const Candidate &c, size_t i, double longest,
                       double beat, int64_t after, int64_t first,
                       int64_t end) const {
  const PipelineModule &m = modules[i];
  const ModuleInfo &mi = info[i];
  // The round trip needs a backward on this stage and every one after it.
  if (mi.lastWithoutBackward >= first)
    return true;
  double downstream = 0;
  if (!m.isLLM && llm >= 0) {
    const ModuleInfo &li = info[llm];
    if (li.lastWithoutBackward >= 0)
      return true;
    downstream = li.tripSums.back();
  }
  if (mi.holds.empty()) // Nothing caps it.
    return true;
  int64_t k = c.stages[i];
  int64_t wanted =
      inFlightDepth(m.isLLM, k - 1 - after, k, llm >= 0 ? c.stages[llm] : 0,
                    res.microbatches);
  // capInFlight holds min(wanted, allowed): capped where allowed is less.
  int64_t allowed = mi.holds[static_cast<size_t>(first * (mi.n + 1) + end)];
  if (allowed >= wanted)
    return true;
  double trip = mi.tripSums[mi.n] - mi.tripSums[first] + downstream +
                mi.weightSums[end] - mi.weightSums[first];
  auto held = static_cast<double>(allowed);
  double bound =
      longest + (static_cast<double>(res.microbatches) - held) * trip / held;
  return bound < beat;
}

bool Allocator::freeCut(size_t i) const {
  const ModuleInfo &mi = info[i];
  return !mi.useExplicit && !mi.useUniform &&
         std::min(mi.hi, res.gpuBudget / mi.gpus) > 1;
}

bool Allocator::searchable(size_t i) const {
  const ModuleInfo &mi = info[i];
  return mi.cuts && !(colocated() && !modules[i].isLLM) &&
         CutSearch::affordable(mi.hi, mi.n);
}

std::optional<mllm::SearchCoverage> Allocator::searchCoverage() const {
  bool anyFree = false, tooLarge = false, jointCut = false;
  for (size_t i = 0; i < modules.size(); ++i)
    if (freeCut(i)) {
      anyFree = true;
      if (searchable(i))
        continue;
      // A module not colocated with a free cut has min-max cuts: only its
      // size keeps it from the search.
      if (colocated() && !modules[i].isLLM)
        jointCut = true;
      else
        tooLarge = true;
    }
  if (!searchRan || !anyFree)
    return std::nullopt;
  if (exhausted)
    return SearchCoverage::Budget;
  if (tooLarge)
    return SearchCoverage::TooLarge;
  if (jointCut)
    return SearchCoverage::Colocated;
  return skippedJoint.empty() ? SearchCoverage::Every : SearchCoverage::PerPart;
}

const CutSearch *Allocator::everyCut(size_t i) {
  const PipelineModule &m = modules[i];
  ModuleInfo &mi = info[i];
  if (!searchable(i))
    return nullptr;
  if (!mi.every) {
    bool checked = !m.memory.empty() && res.memoryCapacity > 0;
    if (checked)
      mi.holds.assign(static_cast<size_t>(mi.n * (mi.n + 1)), 0);
    auto fits = [&](int64_t first, int64_t end) {
      StageMemory mem = stageMemory(m, first, end - first, end == mi.n);
      StageMemory unlimited = mem;
      unlimited.wanted = std::numeric_limits<int64_t>::max();
      capInFlight(unlimited, res.memoryCapacity);
      mi.holds[static_cast<size_t>(first * (mi.n + 1) + end)] =
          unlimited.inFlight;
      return fitsOneInFlight(mem, res.memoryCapacity);
    };
    mi.every.emplace(mi.balance, mi.hi,
                     checked ? SegmentFits(fits) : SegmentFits());
  }
  return &*mi.every;
}

bool Allocator::searchModule(const Candidate &c, size_t i) {
  const CutSearch *every = everyCut(i);
  if (!every)
    return true;
  // Its floor's plan and tables cost about as much as a few plans.
  if (!spend(kSearchSetupPlans))
    return false;
  SearchFloor floor = searchFloor(c, {i});
  if (floor.besides > searchLimit(floor))
    return true;
  // Cuts whose stages all stay below `besides` leave the bottleneck where
  // it is; where that bounds them above the best (as consider() compares
  // searched cuts), only cuts with a stage past it are searched.
  // The best only gets better: the threshold of the start bounds it.
  double beat = beatBy(c), above = -kInf;
  if (floor.longest + floor.besidesWeight +
          static_cast<double>(res.microbatches - 1) * floor.besides >=
      beat)
    above = floor.besides * (1 - 1e-9);
  auto admitted = [&](int64_t after, int64_t first, int64_t end) {
    return admits(c, i, floor.longest, beat, after, first, end);
  };
  int64_t unbounded = std::numeric_limits<int64_t>::max();
  every->search(c.stages[i], searchLimit(floor), above, admitted, unbounded,
                [&](llvm::ArrayRef<int64_t> sizes) {
                  if (!spend())
                    return -kInf; // Ends the search.
                  ++searchPriced;
                  Candidate t = c;
                  t.searched.resize(modules.size());
                  t.searched[i].assign(sizes.begin(), sizes.end());
                  consider(t);
                  return searchLimit(floor);
                });
  return !exhausted;
}

bool Allocator::searchJointly(const Candidate &c, llvm::ArrayRef<size_t> mods) {
  if (mods.size() == 1)
    return searchModule(c, mods[0]);
  size_t i = mods[0];
  const CutSearch *every = everyCut(i);
  if (!every)
    return searchJointly(c, mods.drop_front());
  SearchFloor floor = searchFloor(c, mods);
  int64_t outer = std::numeric_limits<int64_t>::max();
  // The best only gets better: the threshold of the start bounds it.
  double beat = beatBy(c);
  auto admitted = [&](int64_t after, int64_t first, int64_t end) {
    return admits(c, i, floor.longest, beat, after, first, end);
  };
  every->search(c.stages[i], searchLimit(floor), -kInf, admitted, outer,
                [&](llvm::ArrayRef<int64_t> sizes) {
                  Candidate t = c;
                  t.searched.resize(modules.size());
                  t.searched[i].assign(sizes.begin(), sizes.end());
                  if (!searchJointly(t, mods.drop_front()))
                    return -kInf; // Ends the search.
                  return searchLimit(floor);
                });
  return !exhausted;
}
