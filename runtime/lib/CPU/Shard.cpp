//===- Shard.cpp - where a TP shard's elements lie in the full parameter --===//
//
// A shard splits one dimension of a parameter, possibly blockwise (a gated
// w_in's [gate | up]): its elements form runs of consecutive elements of
// the full parameter, one per (outer index, block). Checkpoints and
// initParam read and write shards through these runs.
//
//===----------------------------------------------------------------------===//

#include "mllm/runtime/cpu/Layer.h"

#include <functional>
#include <numeric>

using namespace mllm::runtime::cpu;

static int64_t product(std::vector<int64_t>::const_iterator begin,
                       std::vector<int64_t>::const_iterator end) {
  return std::accumulate(begin, end, int64_t(1), std::multiplies<int64_t>());
}

std::vector<ShardRun>
mllm::runtime::cpu::shardRuns(const ShardInfo &shard,
                              const std::vector<int64_t> &shape) {
  if (shard.dim < 0)
    return {{0, 0, product(shape.begin(), shape.end())}};
  const size_t d = static_cast<size_t>(shard.dim);
  const int64_t outer = product(shape.begin(), shape.begin() + d);
  const int64_t inner = product(shape.begin() + d + 1, shape.end());
  const int64_t localBlock = shape[d] / shard.blocks;
  const int64_t fullDim = shard.fullShape[d];
  const int64_t fullBlock = fullDim / shard.blocks;
  std::vector<ShardRun> runs;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t b = 0; b < shard.blocks; ++b)
      runs.push_back({(o * shape[d] + b * localBlock) * inner,
                      (o * fullDim + b * fullBlock + shard.offset) * inner,
                      localBlock * inner});
  return runs;
}
