//===- LayerComm.cpp - a layer's collectives, failures kept ---------------===//
//
// The Group has float collectives (and a double sum); the double versions a
// gradient check needs go through allReduceSum(double) and allGatherBytes
// (padded to the largest count). Once a call failed, later calls do
// nothing: their buffers keep what they held.
//
//===----------------------------------------------------------------------===//

#include "mllm/runtime/cpu/ParallelParts.h"

#include <algorithm>
#include <numeric>
#include <type_traits>

using namespace mllm::runtime;
using namespace mllm::runtime::cpu;

bool LayerComm::ok(llvm::Error e, const llvm::Twine &what) {
  if (!e)
    return failure.empty();
  if (failure.empty())
    failure = what.str() + ": " + llvm::toString(std::move(e));
  else
    llvm::consumeError(std::move(e));
  return false;
}

llvm::Error LayerComm::take() {
  if (failure.empty())
    return llvm::Error::success();
  std::string f = std::move(failure);
  failure.clear();
  return llvm::createStringError(f);
}

template <typename T>
void LayerComm::allReduceSum(Group &g, T *data, int64_t n,
                             const llvm::Twine &what) {
  if (failed())
    return;
  ok(g.allReduceSum(data, n), what);
}

template <typename T>
void LayerComm::allReduceMax(Group &g, T *data, int64_t n,
                             const llvm::Twine &what) {
  if (failed())
    return;
  if constexpr (std::is_same_v<T, float>) {
    ok(g.allReduceMax(data, n), what);
  } else {
    std::vector<T> all(static_cast<size_t>(g.size() * n));
    if (!ok(g.allGatherBytes(data, n * int64_t(sizeof(T)), all.data()), what))
      return;
    for (int r = 0; r < g.size(); ++r)
      for (int64_t i = 0; i < n; ++i)
        data[i] = r ? std::max(data[i], all[r * n + i]) : all[i];
  }
}

template <typename T>
void LayerComm::allGather(Group &g, const T *local,
                          llvm::ArrayRef<int64_t> counts, T *out,
                          const llvm::Twine &what) {
  if (failed())
    return;
  if constexpr (std::is_same_v<T, float>) {
    ok(g.allGather(local, counts, out), what);
  } else {
    const int64_t most = *std::max_element(counts.begin(), counts.end());
    std::vector<T> mine(most), all(static_cast<size_t>(most * g.size()));
    std::copy_n(local, counts[g.rank()], mine.begin());
    if (!ok(g.allGatherBytes(mine.data(), most * int64_t(sizeof(T)),
                             all.data()),
            what))
      return;
    for (size_t r = 0; r < counts.size(); ++r)
      out = std::copy_n(all.begin() + r * most, counts[r], out);
  }
}

template <typename T>
void LayerComm::reduceScatterSum(Group &g, const T *in,
                                 llvm::ArrayRef<int64_t> counts, T *local,
                                 const llvm::Twine &what) {
  if (failed())
    return;
  if constexpr (std::is_same_v<T, float>) {
    ok(g.reduceScatterSum(in, counts, local), what);
  } else {
    const int64_t total =
        std::accumulate(counts.begin(), counts.end(), int64_t(0));
    const int64_t offset =
        std::accumulate(counts.begin(), counts.begin() + g.rank(), int64_t(0));
    std::vector<T> sum(in, in + total);
    if (ok(g.allReduceSum(sum.data(), total), what))
      std::copy_n(sum.begin() + offset, counts[g.rank()], local);
  }
}

namespace mllm::runtime::cpu {
#define MLLM_INSTANTIATE(T)                                                    \
  template void LayerComm::allReduceSum(Group &, T *, int64_t,                 \
                                        const llvm::Twine &);                  \
  template void LayerComm::allReduceMax(Group &, T *, int64_t,                 \
                                        const llvm::Twine &);                  \
  template void LayerComm::allGather(                                          \
      Group &, const T *, llvm::ArrayRef<int64_t>, T *, const llvm::Twine &);  \
  template void LayerComm::reduceScatterSum(                                   \
      Group &, const T *, llvm::ArrayRef<int64_t>, T *, const llvm::Twine &);
MLLM_INSTANTIATE(float)
MLLM_INSTANTIATE(double)
#undef MLLM_INSTANTIATE
} // namespace mllm::runtime::cpu
