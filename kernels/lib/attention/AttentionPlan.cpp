//===- AttentionPlan.cpp - Tile maps over query and key token lists -------===//
//
// prepareAttention(): the mask half of the kernel, done once per batch and
// shared by every head and layer. Tiles are cut from the query and key
// lists as given (under CP the keys come in rank order, so a key tile's
// positions need not follow its neighbour's), summarised like
// buildTileMap() does, classified with classifyTile(), and every Partial
// tile gets one bit word per query row so the kernels never call attend().
//
//===----------------------------------------------------------------------===//

#include "mllm/kernels/OnlineSoftmax.h"
#include "mllm/kernels/cpu/Attention.h"

#include <algorithm>
#include <numeric>
#include <tuple>
#include <utility>

using namespace mllm::kernels;
using namespace mllm::kernels::cpu;

namespace {

/// A token list: word, segment and global position of each entry.
struct TokenList {
  std::vector<uint64_t> words;
  std::vector<uint32_t> segs;
  std::vector<int64_t> pos;

  TokenList(const TokenLayout &layout, const int64_t *given, int64_t len)
      : words(len), segs(len), pos(len) {
    for (int64_t i = 0; i < len; ++i) {
      pos[i] = given ? given[i] : i;
      words[i] = layout.words[pos[i]];
      segs[i] = layout.segment(pos[i]);
    }
  }
  int64_t size() const { return static_cast<int64_t>(pos.size()); }
};

/// Per tile of a token list, the whole summary plus one summary per packed
/// sample the tile touches (as TileMap.cpp does for the plain case, so both
/// classify alike): samples never see each other, so a tile straddling a
/// boundary is classified part by part.
class Summaries {
public:
  Summaries(const TokenList &list, int64_t width) {
    int64_t n = list.size();
    whole.resize(static_cast<size_t>(numTiles(n, width)));
    offsets.push_back(0);
    for (int64_t t = 0; t < static_cast<int64_t>(whole.size()); ++t) {
      TileSummary &w = whole[t];
      w.begin = t * width;
      w.end = std::min(n, w.begin + width);
      // Runs of identical tokens at consecutive positions: O(runs).
      for (int64_t i = w.begin; i < w.end;) {
        int64_t j = i + 1;
        while (j < w.end && list.words[j] == list.words[i] &&
               list.segs[j] == list.segs[i] &&
               list.pos[j] == list.pos[j - 1] + 1)
          ++j;
        w.addRun(list.words[i], list.segs[i], list.pos[i], list.pos[j - 1]);
        i = j;
      }
      if (w.count > 0 && !w.sample.single())
        splitBySample(list, w);
      offsets.push_back(static_cast<int64_t>(parts.size()));
    }
  }

  int64_t size() const { return static_cast<int64_t>(whole.size()); }

  static TileClass classify(const Summaries &rows, int64_t r,
                            const Summaries &cols, int64_t c,
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
  void splitBySample(const TokenList &list, const TileSummary &w) {
    TileSummary part;
    part.begin = w.begin;
    for (int64_t i = w.begin; i < w.end; ++i) {
      if (!isPadding(list.words[i]) && part.count > 0 &&
          segmentSample(list.segs[i]) != part.sample.lo) {
        part.end = i;
        parts.push_back(part);
        part = TileSummary();
        part.begin = i;
      }
      part.add(list.words[i], list.segs[i], list.pos[i]);
    }
    part.end = w.end;
    parts.push_back(part);
  }
  bool split(int64_t t) const { return offsets[t + 1] > offsets[t]; }
  /// The per-sample parts of tile t, or the whole summary when unsplit.
  std::pair<const TileSummary *, const TileSummary *> partsOf(int64_t t) const {
    if (!split(t))
      return {&whole[t], &whole[t] + 1};
    return {parts.data() + offsets[t], parts.data() + offsets[t + 1]};
  }

  std::vector<TileSummary> whole, parts;
  std::vector<int64_t> offsets;
};

} // namespace

std::string cpu::checkAttentionTokens(const AttentionTokens &t) {
  if (!t.layout)
    return "no token layout";
  const TokenLayout &l = *t.layout;
  if (!l.segments.empty() && l.segments.size() != l.words.size())
    return "the layout has " + std::to_string(l.segments.size()) +
           " segments for " + std::to_string(l.words.size()) + " words";
  if (t.tiles.rows < 1 || t.tiles.cols < 1 || t.tiles.cols > 64)
    return "tiles must have at least 1 row and 1 to 64 key columns, not " +
           std::to_string(t.tiles.rows) + " x " + std::to_string(t.tiles.cols);
  if (t.qLen < 0 || t.kLen < 0)
    return "negative query or key count";
  for (auto [pos, len, what] : {std::make_tuple(t.qPos, t.qLen, "query"),
                                std::make_tuple(t.kPos, t.kLen, "key")}) {
    if (!pos && len > l.size())
      return std::string(what) + " count " + std::to_string(len) +
             " exceeds the layout's " + std::to_string(l.size()) + " tokens";
    for (int64_t i = 0; pos && i < len; ++i)
      if (pos[i] < 0 || pos[i] >= l.size())
        return std::string(what) + " " + std::to_string(i) + " has position " +
               std::to_string(pos[i]) + " outside the layout's " +
               std::to_string(l.size()) + " tokens";
  }
  return "";
}

std::string cpu::checkAttentionHeads(const AttentionHeads &h) {
  if (h.heads < 1 || h.kvHeads < 1 || h.headDim < 1)
    return "heads, kv heads and head dim must be positive";
  if (h.heads % h.kvHeads != 0)
    return std::to_string(h.kvHeads) + " kv heads do not divide " +
           std::to_string(h.heads) + " heads";
  return "";
}

TileClass AttentionPlan::tileClass(int64_t row, int64_t col) const {
  int32_t r = ref(row, col);
  return r == kSkipTile   ? TileClass::Skip
         : r == kFullTile ? TileClass::Full
                          : TileClass::Partial;
}

int64_t AttentionPlan::nonSkippedTiles() const {
  return std::accumulate(rowWork.begin(), rowWork.end(), int64_t(0));
}

double AttentionPlan::skippedFraction() const {
  return numTiles() == 0 ? 0.0
                         : 1.0 - static_cast<double>(nonSkippedTiles()) /
                                     static_cast<double>(numTiles());
}

int64_t AttentionPlan::visiblePairs() const {
  int64_t pairs = 0;
  for (int64_t r = 0; r < rowTiles; ++r)
    for (int64_t c = 0; c < colTiles; ++c) {
      int32_t t = ref(r, c);
      int64_t m = tileExtent(qLen, shape.rows, r);
      if (t == kFullTile)
        pairs += m * tileExtent(kLen, shape.cols, c);
      for (int64_t i = 0; t >= 0 && i < m; ++i)
        pairs += __builtin_popcountll(bits(t)[i]);
    }
  return pairs;
}

/// Runs of consecutive non-skipped key tiles per query tile (at most
/// `spanTiles` each), and per key block the query tiles that reach it.
static void buildWorkLists(AttentionPlan &p, const AttentionPlanOptions &o) {
  int64_t spanTiles = std::max<int64_t>(1, o.spanKeys / p.shape.cols);
  p.spanStart.assign(1, 0);
  for (int64_t r = 0; r < p.rowTiles; ++r) {
    for (int64_t c = 0; c < p.colTiles; ++c) {
      if (p.ref(r, c) == kSkipTile)
        continue;
      AttentionPlan::Span *back = p.spans.empty() ? nullptr : &p.spans.back();
      if (back && static_cast<int64_t>(p.spans.size()) > p.spanStart.back() &&
          back->last == c - 1 && c - back->first < spanTiles)
        back->last = c;
      else
        p.spans.push_back({c, c});
    }
    p.spanStart.push_back(static_cast<int64_t>(p.spans.size()));
  }
  for (const AttentionPlan::Span &s : p.spans)
    p.maxSpanKeys =
        std::max(p.maxSpanKeys, (s.last - s.first + 1) * p.shape.cols);

  p.blockTiles = std::max<int64_t>(1, o.keyBlockKeys / p.shape.cols);
  int64_t blocks = numTiles(p.colTiles, p.blockTiles);
  p.blockStart.assign(1, 0);
  p.blockWork.assign(static_cast<size_t>(blocks), 0);
  for (int64_t b = 0; b < blocks; ++b) {
    int64_t c0 = b * p.blockTiles,
            c1 = std::min(p.colTiles, c0 + p.blockTiles) - 1;
    for (int64_t r = 0; r < p.rowTiles; ++r) {
      int64_t first = -1, last = -1;
      for (int64_t c = c0; c <= c1; ++c)
        if (p.ref(r, c) != kSkipTile) {
          first = first < 0 ? c : first;
          last = c;
          ++p.blockWork[b];
        }
      if (first >= 0)
        p.blockRows.push_back({r, first, last});
    }
    p.blockStart.push_back(static_cast<int64_t>(p.blockRows.size()));
  }
  p.maxBlockKeys = std::min(p.kLen, p.blockTiles * p.shape.cols);

  // Heaviest first (the balancer's LPT rule), ties by index. The order only
  // shapes the schedule; results never depend on it.
  auto heaviestFirst = [](const std::vector<int64_t> &work) {
    std::vector<int64_t> order(work.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      return work[a] != work[b] ? work[a] > work[b] : a < b;
    });
    return order;
  };
  p.rowOrder = heaviestFirst(p.rowWork);
  p.blockOrder = heaviestFirst(p.blockWork);
}

AttentionPlan cpu::prepareAttention(const AttentionTokens &tokens,
                                    const AttentionPlanOptions &options) {
  AttentionPlan p;
  p.shape = tokens.tiles;
  p.policy = tokens.policy;
  p.qLen = tokens.qLen;
  p.kLen = tokens.kLen;
  TokenList qs(*tokens.layout, tokens.qPos, tokens.qLen),
      ks(*tokens.layout, tokens.kPos, tokens.kLen);
  p.qPos = qs.pos;
  p.kPos = ks.pos;
  Summaries rows(qs, p.shape.rows), cols(ks, p.shape.cols);
  p.rowTiles = rows.size();
  p.colTiles = cols.size();
  p.map = TileMap(p.rowTiles, p.colTiles, p.shape);
  p.tileRefs.assign(static_cast<size_t>(p.numTiles()), kSkipTile);
  p.rowWork.assign(static_cast<size_t>(p.rowTiles), 0);

  // Per query tile (in parallel): classify, then replace each Partial tile by
  // its exact bits; kept bit rows are numbered per tile row, then globally.
  const int64_t nr = p.shape.rows, nc = p.shape.cols;
  std::vector<std::vector<uint64_t>> rowBits(static_cast<size_t>(p.rowTiles));
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t r = 0; r < p.rowTiles; ++r) {
    int64_t m = tileExtent(p.qLen, nr, r);
    std::vector<uint64_t> bits(static_cast<size_t>(nr));
    for (int64_t c = 0; c < p.colTiles; ++c) {
      TileClass cls = Summaries::classify(rows, r, cols, c, p.policy);
      p.map.set(r, c, cls);
      int32_t &ref = p.tileRefs[static_cast<size_t>(r * p.colTiles + c)];
      if (cls == TileClass::Skip)
        continue;
      ++p.rowWork[r];
      ref = kFullTile;
      if (cls == TileClass::Full)
        continue;
      int64_t k0 = c * nc, w = tileExtent(p.kLen, nc, c);
      for (int64_t i = 0; i < m; ++i) {
        int64_t qi = r * nr + i;
        bits[i] = tileRowBits(p.policy, qs.words[qi], qs.segs[qi], qs.pos[qi],
                              &ks.words[k0], &ks.segs[k0], &ks.pos[k0], w);
      }
      TileClass exact = refineTile(bits.data(), m, w);
      if (exact == TileClass::Skip) {
        ref = kSkipTile;
        --p.rowWork[r];
      } else if (exact == TileClass::Partial) {
        ref = static_cast<int32_t>(rowBits[r].size() / nr);
        rowBits[r].insert(rowBits[r].end(), bits.begin(), bits.end());
      }
    }
  }
  int64_t base = 0;
  for (int64_t r = 0; r < p.rowTiles; ++r) {
    for (int64_t c = 0; c < p.colTiles; ++c) {
      int32_t &ref = p.tileRefs[static_cast<size_t>(r * p.colTiles + c)];
      if (ref >= 0)
        ref += static_cast<int32_t>(base);
    }
    base += static_cast<int64_t>(rowBits[r].size()) / nr;
    p.partialBits.insert(p.partialBits.end(), rowBits[r].begin(),
                         rowBits[r].end());
  }
  buildWorkLists(p, options);
  return p;
}
