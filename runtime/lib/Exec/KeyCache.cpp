//===- KeyCache.cpp - generation's keys and values, kept per layer --------===//
#include "mllm/runtime/exec/KeyCache.h"

#include "mllm/runtime/data/Sequence.h"

#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <memory>
#include <type_traits>

using namespace mllm::runtime;
using namespace mllm::runtime::exec;

llvm::Error KeyStore::internal(const llvm::Twine &why) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 "generation's key cache: " + why +
                                     " (internal error)");
}

llvm::Error KeyStore::unused() {
  return internal("a collective other than the K/V all-gather");
}

llvm::Error KeyStore::fail(const llvm::Twine &why) {
  failed = true;
  return internal(why);
}

void KeyStore::clear() {
  widths.clear();
  next = 0;
  kept = added = 0;
  failed = false;
}

void KeyStore::beginRound(int64_t tokens) {
  next = 0;
  added = tokens;
}

llvm::Error KeyStore::endRound() {
  // The first round meets every all-gather; later ones must meet as many.
  if (failed || next != widths.size()) {
    const size_t served = next, all = widths.size();
    clear();
    return internal(
        llvm::formatv("{0} of {1} all-gathers were served", served, all));
  }
  kept += added;
  added = 0;
  next = 0;
  return llvm::Error::success();
}

llvm::Expected<size_t> KeyStore::serve(llvm::ArrayRef<int64_t> counts) {
  const bool first = kept == 0 && next == widths.size();
  if (counts.size() != 2 || added < 1 || counts[1] % added != 0 ||
      (!first && next >= widths.size()))
    return fail("an all-gather that no layer's keys fit");
  const int64_t width = counts[1] / added;
  if (first)
    widths.push_back(width);
  const size_t at = next++;
  if (widths[at] != width || counts[0] != kept * width)
    return fail(llvm::formatv("all-gather {0} asks for {1} values of {2} "
                              "kept tokens of {3} values each",
                              at, counts[0], kept, widths[at]));
  return at;
}

void KeyCache::clear() {
  KeyStore::clear();
  layers.clear();
}

llvm::Error KeyCache::allGather(const float *local,
                                llvm::ArrayRef<int64_t> counts, float *out) {
  // One sequence: each rank's block is [K | V] of its tokens.
  auto at = serve(counts);
  if (!at)
    return at.takeError();
  if ((counts[1] / newTokens()) % 2 != 0)
    return fail("an all-gather of K and V of different widths");
  if (*at == layers.size())
    layers.emplace_back();
  Layer &l = layers[*at];
  const int64_t n = counts[1] / 2;
  out = std::copy(l.k.begin(), l.k.end(), out);
  out = std::copy(l.v.begin(), l.v.end(), out);
  std::copy_n(local, 2 * n, out);
  l.k.insert(l.k.end(), local, local + n);
  l.v.insert(l.v.end(), local + n, local + 2 * n);
  return llvm::Error::success();
}

SampleKeys::SampleKeys() : own(std::make_unique<KeyCache>()), cache(*own) {}

SampleKeys::SampleKeys(KeyStore &store) : cache(store) { cache.clear(); }

void SampleKeys::restart() {
  cache.clear();
  keptIds.clear();
  keptLayout.reset();
}

MicrobatchData SampleKeys::newTokens(const MicrobatchData &full, int64_t tokens,
                                     kernels::MaskPolicy policy) {
  const BatchLayout &layout = *full.layout;
  const kernels::TokenLayout &all = layout.tokens;
  auto prefix = [&](const auto &v) {
    using V = std::decay_t<decltype(v)>;
    return v.empty() ? V() : V(v.begin(), v.begin() + tokens);
  };
  // The kept keys hold while the kept tokens are the same, laid out as
  // before, and none of them sees a new one.
  int64_t kept = cache.tokens();
  auto samePrefix = [&](const auto &before, const auto &now) {
    return std::equal(before.begin(), before.end(), now.begin());
  };
  bool keep = kept > 0 && kept < tokens && keptLayout &&
              keptLayout->tokens.size() == kept &&
              samePrefix(keptIds, full.tokenIds) &&
              keptLayout->items == layout.items &&
              samePrefix(keptLayout->tokens.words, all.words) &&
              samePrefix(keptLayout->tokens.segments, all.segments) &&
              samePrefix(keptLayout->positions, layout.positions);
  for (int64_t i = 0; keep && i < kept; ++i)
    for (int64_t t = kept; keep && t < tokens; ++t)
      keep = !all.attend(policy, i, t);
  if (!keep) {
    drops += kept > 0 ? 1 : 0;
    cache.clear();
    kept = 0;
  }
  auto trimmed = std::make_shared<BatchLayout>();
  trimmed->tokens.words = prefix(all.words);
  trimmed->tokens.segments = prefix(all.segments);
  trimmed->positions = prefix(layout.positions);
  trimmed->items = layout.items;
  keptLayout = trimmed;
  keptIds.assign(full.tokenIds.begin(), full.tokenIds.begin() + tokens);
  cache.beginRound(tokens - kept);
  // Rank 0 of the share: the kept tokens; rank 1 (this one): the new.
  auto share = std::make_shared<cpu::ContextParallel>();
  share->group = &cache;
  share->tokens.resize(2);
  for (int64_t t = 0; t < tokens; ++t)
    share->tokens[t < kept ? 0 : 1].push_back(t);
  MicrobatchData d;
  d.tokenIds.assign(full.tokenIds.begin() + kept,
                    full.tokenIds.begin() + tokens);
  d.targets.assign(d.tokenIds.size(), data::kIgnoreTarget);
  d.layout = std::move(trimmed);
  d.cp = std::move(share);
  // Only a round that keeps no keys runs the media's rows (the kept ones
  // hold every item as before): the encoders need them then only.
  if (kept == 0)
    d.media = full.media;
  return d;
}

bool mllm::runtime::exec::canCacheKeys(Model &model, bool rank) {
  // On ranks the plan decides, so that every rank agrees (an encoder stage
  // beside a CP LLM holds no CP group): the round's share would be a
  // second CP split of the LLM's.
  if (rank && model.plan().llm().cp > 1)
    return false;
  Chain &llm = model.llm();
  // A conformer block runs its convolution over whole sequences.
  for (size_t i = 0; i < llm.size(); ++i)
    if (cpu::Layer<float> *layer = llm.step(i).layer();
        layer && layer->kind() == "conformer_block")
      return false;
  return true;
}

mllm::kernels::MaskPolicy mllm::runtime::exec::llmMaskPolicy(Model &model) {
  Chain &llm = model.llm();
  for (size_t i = 0; i < llm.size(); ++i)
    if (const cpu::Batch<float> *g = llm.step(i).layerGeometry();
        g && g->layout)
      return g->policy;
  return kernels::MaskPolicy();
}
