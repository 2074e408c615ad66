//===- RankLayout.cpp - which global ranks a pipeline stage runs on -------===//
#include "mllm/runtime/RankLayout.h"

#include <algorithm>

using namespace mllm::runtime;

RankLayout RankLayout::tpInnermost(int64_t first, int64_t dp, int64_t dpStride,
                                   int64_t cp, int64_t tp) {
  RankLayout l;
  l.first = first;
  l.dp = dp;
  l.cp = cp;
  l.tp = tp;
  l.dpStride = dpStride;
  l.cpStride = tp;
  l.tpStride = 1;
  return l;
}

std::vector<int64_t> RankLayout::ranks() const {
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(std::max<int64_t>(size(), 0)));
  for (int64_t d = 0; d < dp; ++d)
    for (int64_t c = 0; c < cp; ++c)
      for (int64_t t = 0; t < tp; ++t)
        out.push_back(rank(d, c, t));
  return out;
}

int64_t RankLayout::end() const {
  if (size() <= 0)
    return first;
  return rank(dp - 1, cp - 1, tp - 1) + 1;
}

std::optional<RankLayout::Coord> RankLayout::coordOf(int64_t r) const {
  // Strides may interleave (a colocated or DP-strided layout), so search the
  // (d, c) grid and solve for t; stages are small.
  for (int64_t d = 0; d < dp; ++d)
    for (int64_t c = 0; c < cp; ++c) {
      int64_t offset = r - rank(d, c, 0);
      if (offset < 0 || offset % tpStride != 0)
        continue;
      int64_t t = offset / tpStride;
      if (t < tp)
        return Coord{d, c, t};
    }
  return std::nullopt;
}

std::vector<std::vector<int64_t>> RankLayout::replicaGroups() const {
  std::vector<std::vector<int64_t>> groups;
  for (int64_t d = 0; d < dp; ++d) {
    std::vector<int64_t> &g = groups.emplace_back();
    for (int64_t c = 0; c < cp; ++c)
      for (int64_t t = 0; t < tp; ++t)
        g.push_back(rank(d, c, t));
  }
  return groups;
}

std::vector<std::vector<int64_t>> RankLayout::tpGroups() const {
  std::vector<std::vector<int64_t>> groups;
  for (int64_t d = 0; d < dp; ++d)
    for (int64_t c = 0; c < cp; ++c) {
      std::vector<int64_t> &g = groups.emplace_back();
      for (int64_t t = 0; t < tp; ++t)
        g.push_back(rank(d, c, t));
    }
  return groups;
}

std::vector<std::vector<int64_t>> RankLayout::cpGroups() const {
  std::vector<std::vector<int64_t>> groups;
  for (int64_t d = 0; d < dp; ++d)
    for (int64_t t = 0; t < tp; ++t) {
      std::vector<int64_t> &g = groups.emplace_back();
      for (int64_t c = 0; c < cp; ++c)
        g.push_back(rank(d, c, t));
    }
  return groups;
}

std::vector<std::vector<int64_t>> RankLayout::gradSyncGroups() const {
  std::vector<std::vector<int64_t>> groups;
  for (int64_t t = 0; t < tp; ++t) {
    std::vector<int64_t> &g = groups.emplace_back();
    for (int64_t d = 0; d < dp; ++d)
      for (int64_t c = 0; c < cp; ++c)
        g.push_back(rank(d, c, t));
  }
  return groups;
}
