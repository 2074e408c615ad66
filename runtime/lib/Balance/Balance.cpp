//===- Balance.cpp - Context-parallel token-workload balancing ------------===//

#include "mllm/runtime/Balance.h"

#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <queue>
#include <tuple>

using namespace mllm;
using namespace mllm::runtime;
using llvm::ArrayRef;

/// The policies' names, as the plan and the language spell them.
static const std::pair<BalancePolicy, const char *> policyNames[] = {
    {BalancePolicy::Lpt, "lpt"},
    {BalancePolicy::Ilp, "ilp"},
    {BalancePolicy::Zigzag, "zigzag"},
    {BalancePolicy::Uniform, "uniform"}};

const char *mllm::runtime::policyName(BalancePolicy policy) {
  for (auto [p, name] : policyNames)
    if (p == policy)
      return name;
  return "unknown";
}

std::optional<BalancePolicy>
mllm::runtime::parseBalancePolicy(llvm::StringRef name) {
  for (auto [p, n] : policyNames)
    if (name == n)
      return p;
  return std::nullopt;
}

bool mllm::runtime::ilpAvailable() {
#ifdef MLLM_HAVE_CBC
  return true;
#else
  return false;
#endif
}

int64_t BalanceResult::maxWorkload() const {
  int64_t m = 0;
  for (const RankShard &r : ranks)
    m = std::max(m, r.workload);
  return m;
}

double BalanceResult::maxCost() const {
  double m = 0;
  for (const RankShard &r : ranks)
    m = std::max(m, r.cost);
  return m;
}

double BalanceResult::meanWorkload() const {
  if (ranks.empty())
    return 0;
  double sum = 0;
  for (const RankShard &r : ranks)
    sum += static_cast<double>(r.workload);
  return sum / static_cast<double>(ranks.size());
}

double BalanceResult::imbalance() const {
  double mean = meanWorkload();
  return mean > 0 ? static_cast<double>(maxWorkload()) / mean : 0;
}

namespace {

llvm::Error error(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

/// Contiguous chunks [i*n/parts, (i+1)*n/parts) of n blocks.
int64_t chunkStart(int64_t i, int64_t n, int64_t parts) {
  return i * n / parts;
}

void assignUniform(int64_t n, int64_t cp, std::vector<int32_t> &owner) {
  for (int64_t r = 0; r < cp; ++r)
    for (int64_t b = chunkStart(r, n, cp); b < chunkStart(r + 1, n, cp); ++b)
      owner[b] = static_cast<int32_t>(r);
}

void assignZigzag(int64_t n, int64_t cp, std::vector<int32_t> &owner) {
  int64_t parts = 2 * cp;
  for (int64_t c = 0; c < parts; ++c) {
    int64_t rank = c < cp ? c : parts - 1 - c;
    for (int64_t b = chunkStart(c, n, parts); b < chunkStart(c + 1, n, parts);
         ++b)
      owner[b] = static_cast<int32_t>(rank);
  }
}

/// Algorithm 1: heaviest block first onto the least-loaded rank, a stable
/// sort keeping equal blocks in order. Equal loads go to the rank with fewer
/// blocks, then the lower id: the paper breaks ties by id alone, which piles
/// zero-work (padding) blocks onto rank 0 and can leave ranks empty.
void assignLpt(ArrayRef<int64_t> work, int64_t cp,
               std::vector<int32_t> &owner) {
  std::vector<int32_t> order(work.size());
  std::iota(order.begin(), order.end(), 0);
  // Heaviest first, equal blocks in index order (a stable sort without
  // libstdc++'s deprecated temporary buffer).
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return work[a] != work[b] ? work[a] > work[b] : a < b;
  });
  using Load = std::tuple<int64_t, int64_t, int32_t>; // load, blocks, rank
  std::priority_queue<Load, std::vector<Load>, std::greater<Load>> heap;
  for (int32_t r = 0; r < cp; ++r)
    heap.push({0, 0, r});
  for (int32_t b : order) {
    auto [load, blocks, rank] = heap.top();
    heap.pop();
    owner[b] = rank;
    heap.push({load + work[b], blocks + 1, rank});
  }
}

} // namespace

llvm::Expected<BalanceResult>
mllm::runtime::balanceBlocks(ArrayRef<int64_t> blockWork, int64_t numTokens,
                             int64_t cp, const BalanceOptions &opts) {
  int64_t bs = opts.tiles.rows;
  if (bs <= 0)
    return error("balancing block size must be positive, got " +
                 llvm::Twine(bs));
  if (cp < 1)
    return error("CP degree must be at least 1, got " + llvm::Twine(cp));
  int64_t numBlocks = (numTokens + bs - 1) / bs;
  if (numTokens < bs * cp)
    return error("CP degree " + llvm::Twine(cp) + " is too large for " +
                 llvm::Twine(numTokens) +
                 " tokens: every rank needs at least " + "one block of " +
                 llvm::Twine(bs) + " tokens (" + llvm::Twine(bs * cp) +
                 " tokens)");
  if (static_cast<int64_t>(blockWork.size()) != numBlocks)
    return error("expected " + llvm::Twine(numBlocks) +
                 " block workloads for " + llvm::Twine(numTokens) +
                 " tokens in blocks of " + llvm::Twine(bs) + ", got " +
                 llvm::Twine(blockWork.size()));
  for (int64_t w : blockWork)
    if (w < 0)
      return error("block workloads must be non-negative");
  if (!(opts.tokenWeight >= 0 && opts.tokenWeight <= kMaxTokenWeight))
    return error(llvm::formatv("the token weight must be in [0, {0}], got {1}",
                               kMaxTokenWeight, opts.tokenWeight)
                     .str());
  // What lpt and ilp balance, as integers: with a token weight, in 1/64
  // of a tile, so that a fraction of a tile per token still counts.
  constexpr int64_t kScale = 64;
  const bool weighted = opts.tokenWeight > 0;
  std::vector<int64_t> cost(blockWork.begin(), blockWork.end());
  if (weighted)
    for (int64_t b = 0; b < numBlocks; ++b) {
      int64_t tokens = std::min(numTokens, b * bs + bs) - b * bs;
      cost[b] =
          blockWork[b] * kScale +
          std::llround(opts.tokenWeight * kScale * static_cast<double>(tokens));
    }

  BalanceResult result;
  result.policy = opts.policy;
  result.blockSize = bs;
  result.blockOwner.assign(numBlocks, 0);
  switch (opts.policy) {
  case BalancePolicy::Uniform:
    assignUniform(numBlocks, cp, result.blockOwner);
    break;
  case BalancePolicy::Zigzag:
    assignZigzag(numBlocks, cp, result.blockOwner);
    break;
  case BalancePolicy::Lpt:
    assignLpt(cost, cp, result.blockOwner);
    break;
  case BalancePolicy::Ilp: {
    if (!ilpAvailable())
      return error("the ilp balancer is not available: mllmc was built "
                   "without CBC (coinor-libcbc-dev)");
    if (numBlocks > opts.ilpMaxBlocks)
      return error("the ilp balancer is limited to " +
                   llvm::Twine(opts.ilpMaxBlocks) + " blocks, got " +
                   llvm::Twine(numBlocks) + "; use lpt");
    assignLpt(cost, cp, result.blockOwner); // starting incumbent
#ifdef MLLM_HAVE_CBC
    {
      // In units of the costs' greatest common divisor: CBC closes the
      // gap by whole units, and 1/64 of a tile is rarely one that counts
      // (a token weight that rounds to nothing leaves 64 x the tiles).
      int64_t unit = 0;
      for (int64_t c : cost)
        unit = std::gcd(unit, c);
      unit = std::max<int64_t>(unit, 1);
      std::vector<int64_t> units(cost.size());
      for (size_t b = 0; b < cost.size(); ++b)
        units[b] = cost[b] / unit;
      detail::IlpOutcome outcome;
      if (llvm::Error err = detail::solveMakespanIlp(
              units, cp, opts.ilpTimeLimitSeconds, result.blockOwner, outcome))
        return std::move(err);
      result.provenOptimal = outcome.optimal;
      result.timedOut = outcome.timedOut;
      result.lowerBound = outcome.lowerBound * unit / (weighted ? kScale : 1);
    }
#endif
    break;
  }
  }

  // Blocks are visited in order, so every rank's tokens come out sorted.
  result.ranks.resize(cp);
  std::vector<int64_t> sizes(cp);
  for (int64_t b = 0; b < numBlocks; ++b)
    sizes[result.blockOwner[b]] += std::min(numTokens, b * bs + bs) - b * bs;
  for (int64_t r = 0; r < cp; ++r)
    result.ranks[r].tokens.reserve(sizes[r]);
  for (int64_t b = 0; b < numBlocks; ++b) {
    RankShard &shard = result.ranks[result.blockOwner[b]];
    shard.workload += blockWork[b];
    shard.cost += weighted ? static_cast<double>(cost[b]) / kScale
                           : static_cast<double>(cost[b]);
    for (int64_t t = b * bs, e = std::min(numTokens, t + bs); t < e; ++t)
      shard.tokens.push_back(t);
  }
  for (int64_t r = 0; r < cp; ++r)
    if (result.ranks[r].tokens.empty())
      return error(llvm::Twine("the ") + policyName(opts.policy) +
                   " policy left rank " + llvm::Twine(r) + " of " +
                   llvm::Twine(cp) + " without tokens (" +
                   llvm::Twine(numBlocks) + " blocks)");
  return std::move(result);
}

llvm::Expected<BalanceResult>
mllm::runtime::balanceTokens(const kernels::TokenLayout &layout,
                             kernels::MaskPolicy mask, int64_t cp,
                             const BalanceOptions &opts) {
  if (!layout.segments.empty() && layout.segments.size() != layout.words.size())
    return error("token layout has " + llvm::Twine(layout.words.size()) +
                 " words but " + llvm::Twine(layout.segments.size()) +
                 " segments");
  if (opts.tiles.rows <= 0 || opts.tiles.cols <= 0)
    return error("tile shape must be positive");
  if (cp < 1)
    return error("CP degree must be at least 1, got " + llvm::Twine(cp));
  if (layout.size() < opts.tiles.rows * cp)
    return balanceBlocks({}, layout.size(), cp, opts); // reports the error
  std::vector<int64_t> work = kernels::blockWorkloads(layout, mask, opts.tiles);
  return balanceBlocks(work, layout.size(), cp, opts);
}

llvm::Expected<std::vector<int64_t>>
mllm::runtime::shiftLabels(ArrayRef<int64_t> labels,
                           ArrayRef<uint32_t> segments, int64_t ignoreIndex) {
  if (!segments.empty() && segments.size() != labels.size())
    return error("got " + llvm::Twine(labels.size()) + " labels but " +
                 llvm::Twine(segments.size()) + " segments");
  std::vector<int64_t> shifted(labels.size(), ignoreIndex);
  for (size_t i = 0; i + 1 < labels.size(); ++i) {
    bool sameSample =
        segments.empty() || kernels::segmentSample(segments[i]) ==
                                kernels::segmentSample(segments[i + 1]);
    if (sameSample)
      shifted[i] = labels[i + 1];
  }
  return std::move(shifted);
}

llvm::Expected<std::vector<std::vector<int64_t>>>
mllm::runtime::shiftAndSplitLabels(ArrayRef<int64_t> labels,
                                   const BalanceResult &balance,
                                   ArrayRef<uint32_t> segments,
                                   int64_t ignoreIndex) {
  auto shifted = shiftLabels(labels, segments, ignoreIndex);
  if (!shifted)
    return shifted.takeError();
  std::vector<std::vector<int64_t>> perRank(balance.ranks.size());
  for (size_t r = 0; r < balance.ranks.size(); ++r) {
    for (int64_t t : balance.ranks[r].tokens) {
      if (t < 0 || t >= static_cast<int64_t>(shifted->size()))
        return error("rank " + llvm::Twine(r) + " owns token " +
                     llvm::Twine(t) + " but there are only " +
                     llvm::Twine(shifted->size()) + " labels");
      perRank[r].push_back((*shifted)[t]);
    }
  }
  return std::move(perRank);
}
