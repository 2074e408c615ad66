//===- Embedding.cpp - Token embedding gather and scatter-add -------------===//
//
// The scatter-add must not race when ids repeat, and must add repeated ids
// in the same order every run. Threads therefore own column slices of the
// table and each walks all tokens in order: no atomics, no per-thread copies
// of the table, and a result independent of the thread count.
//
//===----------------------------------------------------------------------===//

#include "mllm/kernels/cpu/Embedding.h"
#include "mllm/kernels/cpu/Threads.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace mllm {
namespace kernels {
namespace cpu {

// Callers validate ids against the vocabulary (the data loader, the
// synthetic batches); an id out of range here is a bug in them, and would
// read or write outside the table. One compare per row of `dim` values is
// cheap enough to keep in release builds.
static void checkTokenId(int64_t id, int64_t vocab) {
  if (id >= 0 && id < vocab)
    return;
  std::fprintf(stderr,
               "internal error: token id out of range (%lld, vocabulary of "
               "%lld)\n",
               static_cast<long long>(id), static_cast<long long>(vocab));
  std::abort();
}

template <typename T>
void embeddingForward(const int64_t *ids, const T *table, T *out,
                      int64_t tokens, int64_t vocab, int64_t dim) {
#pragma omp parallel for schedule(static) if (tokens * dim >= kParallelGrain)
  for (int64_t t = 0; t < tokens; ++t) {
    checkTokenId(ids[t], vocab);
    std::memcpy(out + t * dim, table + ids[t] * dim, sizeof(T) * dim);
  }
}

template <typename T>
void embeddingBackwardWeight(const int64_t *ids, const T *dout, T *dtable,
                             int64_t tokens, int64_t vocab, int64_t dim) {
  for (int64_t t = 0; t < tokens; ++t)
    checkTokenId(ids[t], vocab);
  constexpr int64_t block = 64;
  int64_t blocks = (dim + block - 1) / block;
#pragma omp parallel for schedule(static) if (tokens * dim >= kParallelGrain)
  for (int64_t bi = 0; bi < blocks; ++bi) {
    int64_t c0 = bi * block, c1 = std::min(dim, c0 + block);
    for (int64_t t = 0; t < tokens; ++t) {
      T *row = dtable + ids[t] * dim;
      const T *g = dout + t * dim;
      for (int64_t c = c0; c < c1; ++c)
        row[c] += g[c];
    }
  }
}

#define MLLM_INSTANTIATE(T)                                                    \
  template void embeddingForward(const int64_t *, const T *, T *, int64_t,     \
                                 int64_t, int64_t);                            \
  template void embeddingBackwardWeight(const int64_t *, const T *, T *,       \
                                        int64_t, int64_t, int64_t);
MLLM_INSTANTIATE(float)
MLLM_INSTANTIATE(double)

} // namespace cpu
} // namespace kernels
} // namespace mllm
