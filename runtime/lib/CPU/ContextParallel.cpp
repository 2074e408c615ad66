//===- ContextParallel.cpp - the K/V exchange of CP attention -------------===//
//
// A CP rank computes K and V for its own tokens; attention needs them for
// every token of the sequence. One all-gather per layer forward carries
// [K | V] of all sequences of the microbatch (uneven counts, rank order),
// and one reduce-scatter per backward returns the dK/dV that every rank's
// queries produced to the keys' owners (summed in group-rank order).
//
//===----------------------------------------------------------------------===//

#include "mllm/runtime/cpu/LayerParts.h"
#include "mllm/runtime/cpu/ParallelParts.h"

#include <algorithm>

using namespace mllm::runtime;
using namespace mllm::runtime::cpu;

namespace {

/// Rank r's block of the exchanged buffer is [K | V], each [sequences,
/// counts[r], width]. Calls f(block offset of K rows of sequence i, row of
/// sequence i's keys in the gathered order, rows) for every (r, i), with the
/// V rows at `vOffset` further.
template <typename F>
void forEachBlock(const SequenceContext &seq, int64_t width, F f) {
  int64_t base = 0, first = 0;
  for (int64_t c : seq.cpCounts) {
    const int64_t vOffset = seq.sequences * c * width;
    for (int64_t i = 0; i < seq.sequences; ++i)
      f(base + i * c * width, vOffset, (i * seq.keys + first) * width,
        c * width);
    base += 2 * vOffset;
    first += c;
  }
}

std::vector<int64_t> exchangeCounts(const SequenceContext &seq, int64_t width) {
  std::vector<int64_t> counts;
  for (int64_t c : seq.cpCounts)
    counts.push_back(2 * seq.sequences * c * width);
  return counts;
}

} // namespace

template <typename T>
void mllm::runtime::cpu::gatherKeys(const SequenceContext &seq, LayerComm &comm,
                                    const T *k, const T *v, int64_t width,
                                    Tensor<T> &kAll, Tensor<T> &vAll,
                                    llvm::StringRef layer) {
  const int64_t mine = seq.sequences * seq.tokens * width;
  kAll.resize({seq.sequences * seq.keys, width});
  vAll.resize({seq.sequences * seq.keys, width});
  if (!seq.cpGroup) {
    std::copy_n(k, mine, kAll.ptr());
    std::copy_n(v, mine, vAll.ptr());
    return;
  }
  std::vector<T> local(2 * mine), all(2 * kAll.numel());
  std::copy_n(k, mine, local.begin());
  std::copy_n(v, mine, local.begin() + mine);
  comm.allGather(*seq.cpGroup, local.data(), exchangeCounts(seq, width),
                 all.data(), layer + ": CP all-gather of K and V");
  forEachBlock(seq, width,
               [&](int64_t from, int64_t vOffset, int64_t to, int64_t n) {
                 std::copy_n(all.begin() + from, n, kAll.ptr() + to);
                 std::copy_n(all.begin() + from + vOffset, n, vAll.ptr() + to);
               });
}

template <typename T>
void mllm::runtime::cpu::scatterKeyGrads(const SequenceContext &seq,
                                         LayerComm &comm, const T *dkAll,
                                         const T *dvAll, int64_t width, T *dk,
                                         T *dv, llvm::StringRef layer) {
  const int64_t mine = seq.sequences * seq.tokens * width;
  if (!seq.cpGroup) {
    std::copy_n(dkAll, mine, dk);
    std::copy_n(dvAll, mine, dv);
    return;
  }
  std::vector<T> all(2 * seq.sequences * seq.keys * width), local(2 * mine);
  forEachBlock(seq, width,
               [&](int64_t to, int64_t vOffset, int64_t from, int64_t n) {
                 std::copy_n(dkAll + from, n, all.begin() + to);
                 std::copy_n(dvAll + from, n, all.begin() + to + vOffset);
               });
  comm.reduceScatterSum(*seq.cpGroup, all.data(), exchangeCounts(seq, width),
                        local.data(),
                        layer + ": CP reduce-scatter of dK and dV");
  std::copy_n(local.begin(), mine, dk);
  std::copy_n(local.begin() + mine, mine, dv);
}

namespace mllm::runtime::cpu {
#define MLLM_INSTANTIATE(T)                                                    \
  template void gatherKeys(const SequenceContext &, LayerComm &, const T *,    \
                           const T *, int64_t, Tensor<T> &, Tensor<T> &,       \
                           llvm::StringRef);                                   \
  template void scatterKeyGrads(const SequenceContext &, LayerComm &,          \
                                const T *, const T *, int64_t, T *, T *,       \
                                llvm::StringRef);
MLLM_INSTANTIATE(float)
MLLM_INSTANTIATE(double)
#undef MLLM_INSTANTIATE
} // namespace mllm::runtime::cpu
