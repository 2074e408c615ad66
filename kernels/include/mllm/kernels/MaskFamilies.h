//===- MaskFamilies.h - Synthetic attention-mask families -------*- C++ -*-===//
//
// Deterministic (seeded) generators of the mask families the paper and DCP
// evaluate CP balancing on (brief §C.1, §E.5), expressed as bitfield token
// layouts so that tests and benchmarks go through the real predicate.
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_KERNELS_MASKFAMILIES_H
#define MLLM_KERNELS_MASKFAMILIES_H

#include "mllm/kernels/TileMap.h"

#include <cstdint>
#include <vector>

namespace mllm {
namespace kernels {

enum class MaskFamily {
  Causal,           // one causal text sample
  MllmEmbedded,     // causal text with bidirectional image/audio items
  PrefixLm,         // bidirectional prefix (>= 10%), causal rest
  CausalBlockwise,  // causal documents; the last block sees everything
  Lambda,           // causal with sink tokens + sliding window
  SharedQuestion,   // one question, several answers that see only it
  MultimodalPacked, // 4 packed samples of blockwise / prefix / embedded
};

const char *familyName(MaskFamily family);
std::vector<MaskFamily> allFamilies();

/// A generated layout plus the policy it is meant to be read with.
struct GeneratedMask {
  TokenLayout layout;
  MaskPolicy policy;
};

/// Same (family, numTokens, seed) gives the same layout on every platform.
GeneratedMask generateMask(MaskFamily family, int64_t numTokens, uint64_t seed);

} // namespace kernels
} // namespace mllm

#endif // MLLM_KERNELS_MASKFAMILIES_H
