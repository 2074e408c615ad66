//===- TileMap.cpp - Dense masks, tile maps and block workloads -----------===//

#include "mllm/kernels/TileMap.h"

#include <algorithm>

using namespace mllm::kernels;

std::vector<uint8_t> mllm::kernels::buildDenseMask(const TokenLayout &layout,
                                                   MaskPolicy policy) {
  int64_t n = layout.size();
  std::vector<uint8_t> mask(static_cast<size_t>(n * n));
  for (int64_t q = 0; q < n; ++q)
    for (int64_t k = 0; k < n; ++k)
      mask[q * n + k] = layout.attend(policy, q, k);
  return mask;
}

/// Adds tokens [s.begin, s.end) to `s`, one addRun per run of equal tokens.
static void summarizeRange(const TokenLayout &layout, TileSummary &s) {
  const uint64_t *words = layout.words.data();
  const uint32_t *segs =
      layout.segments.empty() ? nullptr : layout.segments.data();
  for (int64_t i = s.begin; i < s.end;) {
    int64_t j = i + 1;
    uint32_t seg = segs ? segs[i] : 0;
    while (j < s.end && words[j] == words[i] && (!segs || segs[j] == seg))
      ++j;
    s.addRun(words[i], seg, i, j - 1);
    i = j;
  }
}

std::vector<TileSummary>
mllm::kernels::summarizeTiles(const TokenLayout &layout, int64_t width) {
  int64_t n = layout.size();
  std::vector<TileSummary> tiles(static_cast<size_t>((n + width - 1) / width));
  for (size_t t = 0; t < tiles.size(); ++t) {
    TileSummary &s = tiles[t];
    s.begin = static_cast<int64_t>(t) * width;
    s.end = std::min(n, s.begin + width);
    summarizeRange(layout, s);
  }
  return tiles;
}

std::vector<int64_t> TileMap::rowWorkloads() const {
  std::vector<int64_t> work(static_cast<size_t>(rowTiles));
  for (int64_t r = 0; r < rowTiles; ++r)
    for (int64_t c = 0; c < colTiles; ++c)
      work[r] += at(r, c) != TileClass::Skip;
  return work;
}

namespace {

/// Per tile, the whole-tile summary plus, for Mllm, one summary per packed
/// sample the tile touches: packed samples never see each other, so a tile
/// straddling a sample boundary is classified part by part and stays exact.
class SummaryTable {
public:
  SummaryTable(const TokenLayout &layout, int64_t width,
               const SummaryTable *finer = nullptr) {
    // Rows that are whole multiples of the (finer) column tiles are merged
    // from them instead of re-reading the tokens.
    int64_t n = layout.size();
    if (finer && width % finer->width == 0) {
      int64_t ratio = width / finer->width;
      whole.resize(static_cast<size_t>((n + width - 1) / width));
      for (int64_t t = 0; t < static_cast<int64_t>(whole.size()); ++t) {
        whole[t] = finer->whole[t * ratio];
        for (int64_t c = t * ratio + 1;
             c < std::min<int64_t>(finer->size(), (t + 1) * ratio); ++c)
          whole[t].merge(finer->whole[c]);
      }
    } else {
      whole = summarizeTiles(layout, width);
    }
    this->width = width;
    offsets.push_back(0);
    for (const TileSummary &w : whole) {
      if (w.count == 0 || w.sample.single()) {
        offsets.push_back(static_cast<int64_t>(parts.size()));
        continue; // no parts: the whole summary stands for the tile
      }
      TileSummary part;
      part.begin = w.begin;
      for (int64_t i = w.begin; i < w.end; ++i) {
        uint32_t seg = layout.segment(i);
        if (!isPadding(layout.words[i]) && part.count > 0 &&
            segmentSample(seg) != part.sample.lo) {
          part.end = i;
          parts.push_back(part);
          part = TileSummary();
          part.begin = i;
        }
        part.add(layout.words[i], seg, i);
      }
      part.end = w.end;
      parts.push_back(part);
      offsets.push_back(static_cast<int64_t>(parts.size()));
    }
  }

  int64_t size() const { return static_cast<int64_t>(whole.size()); }
  const TileSummary &operator[](int64_t t) const { return whole[t]; }
  bool split(int64_t t) const { return offsets[t + 1] > offsets[t]; }

  static TileClass classify(const SummaryTable &rows, int64_t r,
                            const SummaryTable &cols, int64_t c,
                            MaskPolicy policy) {
    if (policy.kind == PolicyKind::Cornstarch ||
        (!rows.split(r) && !cols.split(c)))
      return classifyTile(rows.whole[r], cols.whole[c], policy);
    // Several samples: never Full; Partial if any pair of parts may be.
    auto [qBegin, qEnd] = rows.partsOf(r);
    auto [kBegin, kEnd] = cols.partsOf(c);
    for (const TileSummary *q = qBegin; q != qEnd; ++q)
      for (const TileSummary *k = kBegin; k != kEnd; ++k)
        if (classifyTile(*q, *k, policy) != TileClass::Skip)
          return TileClass::Partial;
    return TileClass::Skip;
  }

private:
  /// The per-sample parts of tile t, or the whole summary when unsplit.
  std::pair<const TileSummary *, const TileSummary *> partsOf(int64_t t) const {
    if (!split(t))
      return {&whole[t], &whole[t] + 1};
    return {parts.data() + offsets[t], parts.data() + offsets[t + 1]};
  }

  int64_t width = 0;
  std::vector<TileSummary> whole, parts;
  std::vector<int64_t> offsets;
};

} // namespace

TileMap mllm::kernels::buildTileMap(const TokenLayout &layout,
                                    MaskPolicy policy, TileShape shape) {
  SummaryTable cols(layout, shape.cols), rows(layout, shape.rows, &cols);
  TileMap map(rows.size(), cols.size(), shape);
  for (int64_t r = 0; r < rows.size(); ++r)
    for (int64_t c = 0; c < cols.size(); ++c)
      map.set(r, c, SummaryTable::classify(rows, r, cols, c, policy));
  return map;
}

namespace {

/// Consecutive non-empty key tiles with one pattern.
struct KeyRun {
  int64_t first, last;
  uint32_t sampleLo, sampleHi;
};

int64_t floorDiv(int64_t a, int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/// Counts the non-skipped tiles of one key run for one query tile. Outside
/// the overlap and window bands every key tile of the run compares the same
/// way with every query position, so one classification stands for all.
int64_t countRun(const SummaryTable &rows, int64_t r, const SummaryTable &cols,
                 const KeyRun &run, MaskPolicy policy, int64_t width) {
  const TileSummary &q = rows[r];
  auto nonSkip = [&](int64_t t) {
    return SummaryTable::classify(rows, r, cols, t, policy) != TileClass::Skip;
  };
  auto constant = [&](int64_t a, int64_t b) -> int64_t {
    return a <= b && nonSkip(a) ? b - a + 1 : 0;
  };
  auto each = [&](int64_t a, int64_t b) {
    int64_t n = 0;
    for (int64_t t = a; t <= b; ++t)
      n += nonSkip(t);
    return n;
  };
  int64_t overlapFirst = q.begin / width;
  int64_t afterFirst = (q.end + width - 1) / width;
  int64_t r0 = run.first, r1 = run.last;
  int64_t beforeLast = std::min(r1, overlapFirst - 1);
  int64_t n = each(std::max(r0, overlapFirst), std::min(r1, afterFirst - 1)) +
              constant(std::max(r0, afterFirst), r1);
  if (policy.window <= 0 || policy.kind == PolicyKind::Cornstarch)
    return n + constant(r0, beforeLast);
  int64_t w = policy.window;
  // Tiles entirely >= w behind every query, then a band, then tiles
  // entirely < w behind every query.
  int64_t outsideLast = floorDiv(q.begin - w - width + 1, width);
  int64_t insideFirst = floorDiv(q.end - 1 - w, width) + 1;
  return n + constant(r0, std::min(beforeLast, outsideLast)) +
         each(std::max(r0, outsideLast + 1),
              std::min(beforeLast, insideFirst - 1)) +
         constant(std::max(r0, insideFirst), beforeLast);
}

} // namespace

std::vector<int64_t> mllm::kernels::blockWorkloads(const TokenLayout &layout,
                                                   MaskPolicy policy,
                                                   TileShape shape) {
  SummaryTable cols(layout, shape.cols), rows(layout, shape.rows, &cols);
  // Padding-only key tiles are skipped under every policy.
  std::vector<KeyRun> runs;
  for (int64_t t = 0; t < cols.size(); ++t) {
    const TileSummary &s = cols[t];
    if (s.count == 0)
      continue;
    if (!runs.empty() && runs.back().last == t - 1 && !cols.split(t) &&
        !cols.split(t - 1) && cols[t - 1].samePattern(s)) {
      runs.back().last = t;
      continue;
    }
    runs.push_back({t, t, s.sample.lo, s.sample.hi});
  }
  // Packed samples laid out in order let each query tile visit only the
  // runs of its own samples.
  bool ordered = policy.kind == PolicyKind::Mllm;
  for (size_t i = 1; i < runs.size() && ordered; ++i)
    ordered = runs[i].sampleLo >= runs[i - 1].sampleLo &&
              runs[i].sampleHi >= runs[i - 1].sampleHi;

  std::vector<int64_t> work(static_cast<size_t>(rows.size()));
  for (int64_t r = 0; r < rows.size(); ++r) {
    const TileSummary &q = rows[r];
    if (q.count == 0)
      continue;
    size_t i = 0;
    if (ordered)
      i = std::partition_point(
              runs.begin(), runs.end(),
              [&](const KeyRun &run) { return run.sampleHi < q.sample.lo; }) -
          runs.begin();
    // Without bidirectional queries nothing after the tile is visible.
    bool forward = policy.kind == PolicyKind::Cornstarch
                       ? q.mod > 0
                       : q.ncPrivText > 0 || q.modCausal < q.mod;
    for (; i < runs.size(); ++i) {
      if ((ordered && runs[i].sampleLo > q.sample.hi) ||
          (!forward && runs[i].first * shape.cols >= q.end))
        break;
      work[r] += countRun(rows, r, cols, runs[i], policy, shape.cols);
    }
  }
  return work;
}
