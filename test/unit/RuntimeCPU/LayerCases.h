//===- LayerCases.h - layer variants the CPU layer tests run ----*- C++ -*-===//
//
// One list of small layer configurations covering every kind and its
// variants (norms, activations, gated or not, MHA/GQA/MQA, RoPE/ALiBi/none,
// biases, class token, position tables, tied head, a packed mask with fully
// masked padding rows), and the random inputs of one case. The gradient
// checks, the determinism tests and the PyTorch driver all run this list.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_TEST_RUNTIMECPU_LAYERCASES_H
#define MLLM_TEST_RUNTIMECPU_LAYERCASES_H

#include "mllm/runtime/cpu/Layer.h"

#include <cmath>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

namespace mllm::runtime::cpu::test {

/// The attention layout of a case's sequences.
enum class Mask {
  None,   ///< no layout: all tokens see each other (encoders)
  Causal, ///< one causal text sample
  /// Two packed samples (text, an image, text; text) and two padding tokens,
  /// positions restarting per sample.
  Packed,
};

struct LayerCase {
  std::string name;
  std::string kind;
  LayerConfig config;
  PartKind part = PartKind::LLM;
  int64_t sequences = 2, tokens = 6;
  Mask mask = Mask::None;
  double lossScale = 1.0;
};

/// gtest prints a case by its name.
inline void PrintTo(const LayerCase &c, std::ostream *os) { *os << c.name; }

/// Every case, names unique.
std::vector<LayerCase> layerCases();

/// A deterministic generator for test data (SplitMix64 + Box-Muller).
class TestRng {
public:
  explicit TestRng(uint64_t seed) : state(seed) {}
  uint64_t next();
  double uniform(); ///< [0, 1)
  double normal();

private:
  uint64_t state;
};

/// The data of one case: the batch (pointing into this object) and the
/// input and upstream gradient tensors.
template <typename T>
struct CaseData {
  Batch<T> batch;
  Tensor<T> in, dOut;
  std::vector<int64_t> tokenIds, targets;
  std::vector<T> media;
  kernels::TokenLayout layout;
  /// The tied head's stand-in for the token embedding's weight.
  std::unique_ptr<Param<T>> tiedWeight;

  CaseData() = default;
  CaseData(const CaseData &) = delete;
  CaseData &operator=(const CaseData &) = delete;
};

/// Fills `data` for `c` from `rng`; binds the tied weight of `layer`.
template <typename T>
void makeCaseData(const LayerCase &c, Layer<T> &layer, TestRng &rng,
                  CaseData<T> &data);

/// Parameter values for tests: well-scaled random numbers instead of the
/// 0.02-scale init (norm weights 1 + noise, biases noise, matrices
/// normal / sqrt(fan-in)); Fixed parameters are left alone.
template <typename T>
void randomizeParams(Layer<T> &layer, TestRng &rng);

/// The parameter counts of compiler/lib/Model/Layers.cpp
/// (model::paramsPerLayer), written out again here because that library
/// needs MLIR. Keep the two in step.
int64_t expectedParams(llvm::StringRef kind, const LayerConfig &c);

} // namespace mllm::runtime::cpu::test

#endif // MLLM_TEST_RUNTIMECPU_LAYERCASES_H
