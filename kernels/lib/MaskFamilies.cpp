//===- MaskFamilies.cpp - Synthetic attention-mask families ---------------===//

#include "mllm/kernels/MaskFamilies.h"

#include <algorithm>

using namespace mllm::kernels;

namespace {

constexpr int kNumModalities = 2; // image, audio

/// splitmix64: our own generator so layouts do not depend on the standard
/// library's distributions.
class Rng {
public:
  explicit Rng(uint64_t seed) : state(seed) {}
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  /// Uniform in [lo, hi] (hi < lo gives lo).
  int64_t uniform(int64_t lo, int64_t hi) {
    if (hi <= lo)
      return lo;
    return lo +
           static_cast<int64_t>(next() % static_cast<uint64_t>(hi - lo + 1));
  }

private:
  uint64_t state;
};

/// `total` split into `parts` random sizes, each at least `minPart`.
std::vector<int64_t> randomSplit(Rng &rng, int64_t total, int64_t parts,
                                 int64_t minPart) {
  minPart = std::min(minPart, total / parts);
  std::vector<int64_t> weights(parts), sizes(parts, minPart);
  int64_t sum = 0;
  for (int64_t &w : weights)
    sum += (w = rng.uniform(1, 1000));
  int64_t rest = total - minPart * parts, given = 0;
  for (int64_t i = 0; i < parts; ++i) {
    int64_t extra = rest * weights[i] / sum;
    sizes[i] += extra;
    given += extra;
  }
  sizes.back() += rest - given;
  return sizes;
}

class Builder {
public:
  Builder(TokenLayout &out, Rng &rng) : out(out), rng(rng) {}

  void text(int64_t n, uint32_t sample, uint32_t item, bool causal = true,
            bool sink = false) {
    uint64_t word = textWord(kNumModalities) & (causal ? ~0ull : ~kCausalBit);
    append(n, word, makeSegment(sample, item, sink));
  }
  void append(int64_t n, uint64_t word, uint32_t segment) {
    out.words.insert(out.words.end(), n, word);
    out.segments.insert(out.segments.end(), n, segment);
  }

  void causalBlockwise(int64_t n, uint32_t sample) {
    int64_t lo = std::max<int64_t>(1, n / 64),
            hi = std::max<int64_t>(1, n / 16);
    uint32_t item = 1;
    while (n > 0) {
      int64_t len = std::min(n, rng.uniform(lo, hi));
      n -= len;
      // The final block is shared context: it sees every earlier block.
      text(len, sample, n == 0 ? 0 : item++);
    }
  }
  void prefixLm(int64_t n, uint32_t sample) {
    int64_t prefix = rng.uniform(std::max<int64_t>(1, n / 10), n / 2);
    text(prefix, sample, 1, /*causal=*/false);
    text(n - prefix, sample, 0);
  }
  void embedded(int64_t n, uint32_t sample) {
    int64_t blocks = std::min<int64_t>(rng.uniform(2, 6), n / 2);
    std::vector<int64_t> lens(blocks);
    int64_t media = 0;
    for (int64_t &len : lens)
      media += (len = rng.uniform(std::max<int64_t>(1, n / 16),
                                  std::max<int64_t>(1, n / 8)));
    std::vector<int64_t> gaps = randomSplit(rng, n - media, blocks + 1,
                                            std::min<int64_t>(1, n - media));
    for (int64_t b = 0; b < blocks; ++b) {
      text(gaps[b], sample, 0);
      int modality = static_cast<int>(rng.uniform(0, kNumModalities - 1));
      append(lens[b], modalityWord(modality),
             makeSegment(sample, static_cast<uint32_t>(b + 1)));
    }
    text(gaps.back(), sample, 0);
  }
  void sharedQuestion(int64_t n, uint32_t sample) {
    int64_t question = rng.uniform(std::max<int64_t>(1, n / 10), n / 4);
    text(question, sample, 0);
    int64_t answers = std::min<int64_t>(rng.uniform(2, 8), n - question);
    if (answers <= 0)
      return;
    std::vector<int64_t> lens = randomSplit(rng, n - question, answers, 1);
    for (int64_t a = 0; a < answers; ++a)
      text(lens[a], sample, static_cast<uint32_t>(a + 1));
  }

private:
  TokenLayout &out;
  Rng &rng;
};

} // namespace

const char *mllm::kernels::familyName(MaskFamily family) {
  switch (family) {
  case MaskFamily::Causal:
    return "causal";
  case MaskFamily::MllmEmbedded:
    return "mllm_embedded";
  case MaskFamily::PrefixLm:
    return "prefix_lm";
  case MaskFamily::CausalBlockwise:
    return "causal_blockwise";
  case MaskFamily::Lambda:
    return "lambda";
  case MaskFamily::SharedQuestion:
    return "shared_question";
  case MaskFamily::MultimodalPacked:
    return "multimodal_packed";
  }
  return "unknown";
}

std::vector<MaskFamily> mllm::kernels::allFamilies() {
  return {MaskFamily::Causal,          MaskFamily::MllmEmbedded,
          MaskFamily::PrefixLm,        MaskFamily::CausalBlockwise,
          MaskFamily::Lambda,          MaskFamily::SharedQuestion,
          MaskFamily::MultimodalPacked};
}

GeneratedMask mllm::kernels::generateMask(MaskFamily family, int64_t numTokens,
                                          uint64_t seed) {
  GeneratedMask result;
  Rng rng(seed ^ (static_cast<uint64_t>(family) << 56));
  Builder b(result.layout, rng);
  int64_t n = std::max<int64_t>(numTokens, 0);
  if (n == 0)
    return result;
  switch (family) {
  case MaskFamily::Causal:
    b.text(n, 0, 0);
    break;
  case MaskFamily::MllmEmbedded:
    b.embedded(n, 0);
    break;
  case MaskFamily::PrefixLm:
    b.prefixLm(n, 0);
    break;
  case MaskFamily::CausalBlockwise:
    b.causalBlockwise(n, 0);
    break;
  case MaskFamily::Lambda: {
    int64_t sink = std::max<int64_t>(1, n / 32);
    b.text(sink, 0, 0, /*causal=*/true, /*sink=*/true);
    b.text(n - sink, 0, 0);
    result.policy.window = std::max<int64_t>(1, n / 8);
    break;
  }
  case MaskFamily::SharedQuestion:
    b.sharedQuestion(n, 0);
    break;
  case MaskFamily::MultimodalPacked: {
    int64_t packs = std::min<int64_t>(4, n);
    std::vector<int64_t> sizes = randomSplit(rng, n, packs, n / 16);
    for (int64_t p = 0; p < packs; ++p) {
      auto sample = static_cast<uint32_t>(p);
      switch (rng.uniform(0, 2)) {
      case 0:
        b.causalBlockwise(sizes[p], sample);
        break;
      case 1:
        b.prefixLm(sizes[p], sample);
        break;
      default:
        b.embedded(sizes[p], sample);
        break;
      }
    }
    break;
  }
  }
  return result;
}
