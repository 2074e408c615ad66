//===- CutSearch.cpp - every cut within a bottleneck limit ----------------===//
//
// CutSearch (PartitionImpl.h): the branch and bound through which the
// allocators price every cut of a stage count that can beat their best
// plan, not only the handful StageCuts proposes.
//
//===----------------------------------------------------------------------===//
#include "PartitionImpl.h"

using namespace mllm::plan::detail;

CutSearch::CutSearch(llvm::ArrayRef<double> weights, int64_t maxStages,
                     SegmentFits fits)
    : p(prefixSums(weights)), n(static_cast<int64_t>(weights.size())) {
  assert(maxStages >= 1 && maxStages <= n && "need 1 <= stages <= layers");
  // Every (start, end) asked once: a stage that fits need not fit without
  // its last layers where it then sends more (a module's last stage sends
  // its output or nothing, a chain cut carries earlier encoders' outputs),
  // so no binary search.
  fitTable.assign(static_cast<size_t>(n * (n + 1)), 1);
  if (fits)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t e = j + 1; e <= n; ++e)
        fitTable[static_cast<size_t>(j * (n + 1) + e)] = fits(j, e);
  suffix.assign(maxStages, std::vector<double>(n + 1, kInf));
  for (int64_t j = 0; j < n; ++j)
    if (fitsAt(j, n))
      suffix[0][j] = w(j, n);
  for (int64_t r = 1; r < maxStages; ++r)
    for (int64_t j = n - r - 1; j >= 0; --j) {
      double best = kInf;
      for (int64_t e = j + 1; e <= n - r; ++e) {
        double first = w(j, e);
        if (first >= best)
          break; // Longer first stages only get heavier.
        if (fitsAt(j, e))
          best = std::min(best, std::max(first, suffix[r - 1][e]));
      }
      suffix[r][j] = best;
    }
}

CutSearch::Tables CutSearch::tables(int64_t stages, double limit, double above,
                                    Admits admissible) const {
  assert(stages >= 1 && stages <= static_cast<int64_t>(suffix.size()));
  Tables t;
  t.least.assign(stages, std::vector<double>(n + 1, kInf));
  t.heavy.assign(stages, std::vector<char>(n + 1, 0));
  for (int64_t r = 0; r < stages; ++r)
    for (int64_t j = n - r - 1; j >= 0; --j)
      for (int64_t e = r == 0 ? n : j + 1; e <= n - r; ++e) {
        double first = w(j, e);
        if (first > limit)
          break;
        double rest = r == 0 ? 0.0 : t.least[r - 1][e];
        if (rest > limit || !fitsAt(j, e) ||
            (admissible && !admissible(r, j, e)))
          continue;
        t.least[r][j] = std::min(t.least[r][j], std::max(first, rest));
        if (first > above || (r > 0 && t.heavy[r - 1][e]))
          t.heavy[r][j] = 1;
      }
  return t;
}

double CutSearch::bottleneck(int64_t stages, double limit,
                             Admits admissible) const {
  return tables(stages, limit, -kInf, admissible).least[stages - 1][0];
}

bool CutSearch::search(int64_t stages, double limit, double above,
                       Admits admissible, int64_t &budget, Visit visit) const {
  if (bottleneck(stages) > limit)
    return true;
  // The limit only shrinks: the tables of the first stay valid.
  Tables t = tables(stages, limit, above, admissible);
  if (!t.heavy[stages - 1][0])
    return true;
  std::vector<int64_t> sizes(stages, 0);
  // Depth-first over the stages; a branch is entered only when the rest
  // can be cut within the limit (with a stage heavier than `above`, if
  // none before is), so each ends in a visit unless the limit shrank since.
  auto descend = [&](auto &self, int64_t s, int64_t j, bool heavier) -> bool {
    int64_t rest = stages - s - 1; // Stages after this one.
    for (int64_t e = rest == 0 ? n : j + 1; e <= n - rest; ++e) {
      double first = w(j, e);
      if (first > limit)
        break;
      bool now = heavier || first > above;
      if (rest > 0 &&
          (t.least[rest - 1][e] > limit || (!now && !t.heavy[rest - 1][e])))
        continue;
      if ((rest == 0 && !now) || !fitsAt(j, e) ||
          (admissible && !admissible(rest, j, e)))
        continue;
      sizes[s] = e - j;
      if (rest == 0) {
        if (budget <= 0)
          return false;
        --budget;
        limit = visit(sizes);
        if (limit == -kInf)
          return false; // The visitor ends the search.
      } else if (!self(self, s + 1, e, now)) {
        return false;
      }
    }
    return true;
  };
  return descend(descend, 0, 0, false);
}

double CutSearch::count(int64_t stages, double limit, Admits admissible) const {
  assert(stages >= 1 && stages <= static_cast<int64_t>(suffix.size()));
  // ways[r][j]: cuts of layers [j, n) into r + 1 stages.
  std::vector<std::vector<double>> ways(stages,
                                        std::vector<double>(n + 1, 0.0));
  for (int64_t r = 0; r < stages; ++r)
    for (int64_t j = n - r - 1; j >= 0; --j)
      for (int64_t e = r == 0 ? n : j + 1; e <= n - r; ++e) {
        if (w(j, e) > limit)
          break;
        double rest = r == 0 ? 1.0 : ways[r - 1][e];
        if (rest > 0 && fitsAt(j, e) && (!admissible || admissible(r, j, e)))
          ways[r][j] += rest;
      }
  return ways[stages - 1][0];
}
