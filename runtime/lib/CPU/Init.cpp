//===- Init.cpp - deterministic parameter initialisation ------------------===//
//
// initParam(): every element is a pure function of (seed, the parameter's
// full name, its flat index), so every rank builds the same weights in any
// order of construction and no generator state is shared. The stream is
// SplitMix64 keyed by the name's FNV-1a hash; two draws per element give a
// normal by Box-Muller. Everything is in double with glibc's log/cos and
// one rounding to T at the end; test/runtime/torch_layers.py reproduces it
// (docs/runtime-layers.md gives the exact recipe). The index is the full
// parameter's, so a tensor-parallel shard gets its slice of the same values.
//
//===----------------------------------------------------------------------===//

#include "mllm/runtime/cpu/LayerParts.h"

#include <cmath>

using namespace mllm::runtime;
using namespace mllm::runtime::cpu;

namespace {

constexpr uint64_t kGamma = 0x9e3779b97f4a7c15ull;
constexpr double kPi = 3.14159265358979323846;
constexpr double kStd = 0.02;

uint64_t splitmix64(uint64_t x) {
  uint64_t z = x + kGamma;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t fnv1a64(llvm::StringRef s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s)
    h = (h ^ c) * 0x100000001b3ull;
  return h;
}

/// Draw j of the stream keyed by `key`.
uint64_t draw(uint64_t key, uint64_t j) { return splitmix64(key + j * kGamma); }

} // namespace

template <typename T>
void mllm::runtime::cpu::initParam(Param<T> &param, llvm::StringRef fullName,
                                   uint64_t seed) {
  std::vector<T> &v = param.value.data;
  switch (param.init) {
  case ParamInit::Fixed:
    return;
  case ParamInit::Ones:
    std::fill(v.begin(), v.end(), T(1));
    return;
  case ParamInit::Zeros:
    std::fill(v.begin(), v.end(), T(0));
    return;
  case ParamInit::Normal:
    break;
  }
  const uint64_t key = splitmix64(seed ^ splitmix64(fnv1a64(fullName)));
  const double ulp = 1.0 / 9007199254740992.0; // 2^-53
  // A TP shard draws at the full parameter's indices: its values are a
  // slice of the unsplit parameter's.
  for (const ShardRun &run : shardRuns(param.shard, param.value.shape)) {
    for (int64_t j = 0; j < run.length; ++j) {
      const uint64_t i = static_cast<uint64_t>(run.full + j);
      // u1 in (0, 1] keeps the log finite; u2 in [0, 1).
      double u1 = static_cast<double>((draw(key, 2 * i) >> 11) + 1) * ulp;
      double u2 = static_cast<double>(draw(key, 2 * i + 1) >> 11) * ulp;
      double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * kPi * u2);
      v[run.local + j] = static_cast<T>(kStd * z);
    }
  }
}

namespace mllm::runtime::cpu {
template void initParam(Param<float> &, llvm::StringRef, uint64_t);
template void initParam(Param<double> &, llvm::StringRef, uint64_t);
} // namespace mllm::runtime::cpu
