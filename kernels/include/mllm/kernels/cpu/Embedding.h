//===- Embedding.h - Token embedding gather and scatter-add -----*- C++ -*-===//
//
// out[t] = table[ids[t]] over table[vocab, dim] (nn.Embedding). Ids are
// int64 as in PyTorch; an id outside [0, vocab) is the caller's bug and
// asserts. The ids are data, so there is no input gradient; the weight
// gradient scatter-adds dout rows into dtable (+=).
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_KERNELS_CPU_EMBEDDING_H
#define MLLM_KERNELS_CPU_EMBEDDING_H

#include <cstdint>

namespace mllm {
namespace kernels {
namespace cpu {

/// out[tokens, dim] = table[ids[t], :].
template <typename T>
void embeddingForward(const int64_t *ids, const T *table, T *out,
                      int64_t tokens, int64_t vocab, int64_t dim);

/// dtable[ids[t], :] += dout[t, :], tokens in order (repeated ids add up in
/// token order, whatever the thread count).
template <typename T>
void embeddingBackwardWeight(const int64_t *ids, const T *dout, T *dtable,
                             int64_t tokens, int64_t vocab, int64_t dim);

} // namespace cpu
} // namespace kernels
} // namespace mllm

#endif // MLLM_KERNELS_CPU_EMBEDDING_H
