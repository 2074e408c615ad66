//===- SequenceContext.cpp - positions and attention plan of a batch ------===//
//
// What every layer with positions or attention derives from the batch once
// per forward: the row count check, the positions of its tokens, and the
// attention plan of the shared layout. Under context parallelism the
// batch's CP share is checked here (every token of the sequence held by one
// rank, ascending lists), and the plan's queries are this rank's tokens
// while its keys are the whole sequence in the CP ranks' order, the order
// in which the attention gathers K and V.
//
//===----------------------------------------------------------------------===//

#include "mllm/runtime/cpu/LayerParts.h"

#include <map>
#include <numeric>

using namespace mllm::runtime;
using namespace mllm::runtime::cpu;
using namespace mllm::kernels;
namespace k = mllm::kernels::cpu;

/// The kernel's ALiBi distance is the difference of token indices; the
/// layer's is that of positions. They agree when positions step by exactly
/// 1 between consecutive non-padding tokens of a sample (pairs of different
/// samples never attend under the MLLM policy; under Cornstarch's every
/// token is one group).
std::string mllm::runtime::cpu::alibiPositionsProblem(
    const TokenLayout &layout, MaskPolicy policy,
    const std::vector<int64_t> &positions) {
  std::map<uint32_t, int64_t> last; // sample -> last token index
  for (int64_t i = 0; i < layout.size(); ++i) {
    if (isPadding(layout.words[i]))
      continue;
    uint32_t sample = policy.kind == PolicyKind::Cornstarch
                          ? 0
                          : segmentSample(layout.segment(i));
    auto [it, fresh] = last.try_emplace(sample, i);
    if (!fresh) {
      int64_t j = it->second;
      if (positions[i] - positions[j] != i - j)
        return ("ALiBi needs positions that step by 1 within a sample, but "
                "token " +
                llvm::Twine(j) + " has position " + llvm::Twine(positions[j]) +
                " and token " + llvm::Twine(i) + " position " +
                llvm::Twine(positions[i]))
            .str();
      it->second = i;
    }
  }
  return "";
}

/// Checks the batch's CP share and fills the context's CP fields; returns
/// this rank's tokens (global indices into the sequence).
template <typename T>
static const std::vector<int64_t> &
cpShare(const Batch<T> &batch, SequenceContext &c, llvm::StringRef layer) {
  const ContextParallel &cp = *batch.cp;
  auto fail = [&](const llvm::Twine &why) {
    layerFatal(llvm::Twine(layer) + ": context parallelism: " + why);
  };
  if (!cp.group || cp.group->size() != static_cast<int>(cp.tokens.size()))
    fail("the batch has " + llvm::Twine(cp.tokens.size()) +
         " ranks' tokens but " +
         (cp.group ? "a group of " + std::to_string(cp.group->size())
                   : std::string("no group")));
  int64_t total = 0;
  for (const auto &r : cp.tokens) {
    c.cpCounts.push_back(static_cast<int64_t>(r.size()));
    total += static_cast<int64_t>(r.size());
  }
  std::vector<char> seen(total, 0);
  for (size_t r = 0; r < cp.tokens.size(); ++r)
    for (size_t i = 0; i < cp.tokens[r].size(); ++i) {
      int64_t t = cp.tokens[r][i];
      if (t < 0 || t >= total || seen[t] || (i && t <= cp.tokens[r][i - 1]))
        fail("the ranks' token lists must be ascending and hold each of the "
             "sequence's " +
             llvm::Twine(total) + " tokens once (rank " + llvm::Twine(r) +
             ", token " + llvm::Twine(t) + ")");
      seen[t] = 1;
    }
  const auto &mine = cp.tokens[cp.group->rank()];
  if (static_cast<int64_t>(mine.size()) != c.tokens)
    fail("the batch has " + llvm::Twine(c.tokens) +
         " tokens per sequence, "
         "CP rank " +
         llvm::Twine(cp.group->rank()) + " holds " + llvm::Twine(mine.size()));
  c.cpGroup = cp.group;
  c.keys = total;
  return mine;
}

template <typename T>
SequenceContext
mllm::runtime::cpu::makeSequenceContext(const Batch<T> &batch, int64_t rows,
                                        bool attention, bool alibi,
                                        llvm::StringRef layer) {
  SequenceContext c;
  c.sequences = batch.sequences;
  c.tokens = c.keys = batch.tokens;
  if (c.sequences < 1 || c.tokens < 1 || rows != c.sequences * c.tokens)
    layerFatal(llvm::Twine(layer) + ": the input has " + llvm::Twine(rows) +
               " rows but the batch says " + llvm::Twine(c.sequences) +
               " sequences x " + llvm::Twine(c.tokens) + " tokens");
  const std::vector<int64_t> *mine =
      batch.cp ? &cpShare(batch, c, layer) : nullptr;
  // The whole sequence's positions when the batch has them.
  if (batch.positions.empty()) {
    if (mine) {
      c.positions = *mine;
    } else {
      c.positions.resize(c.tokens);
      std::iota(c.positions.begin(), c.positions.end(), int64_t(0));
    }
  } else {
    if (static_cast<int64_t>(batch.positions.size()) != c.keys)
      layerFatal(llvm::Twine(layer) + ": " +
                 llvm::Twine(batch.positions.size()) + " positions for " +
                 llvm::Twine(c.keys) + " tokens");
    if (mine)
      for (int64_t t : *mine)
        c.positions.push_back(batch.positions[t]);
    else
      c.positions = batch.positions;
  }
  if (!attention)
    return c;
  TokenLayout all;
  const TokenLayout *layout = batch.layout;
  if (!layout) {
    // No layout: every token sees every token of its sequence.
    all.words.assign(c.keys, modalityWord(0));
    layout = &all;
  } else if (layout->size() != c.keys) {
    layerFatal(llvm::Twine(layer) + ": the layout has " +
               llvm::Twine(layout->size()) + " tokens, the sequence " +
               llvm::Twine(c.keys));
  }
  auto tokens = k::AttentionTokens::whole(*layout, batch.policy);
  std::vector<int64_t> keys;
  if (mine) {
    for (const auto &r : batch.cp->tokens)
      keys.insert(keys.end(), r.begin(), r.end());
    tokens.qPos = mine->data();
    tokens.qLen = c.tokens;
    tokens.kPos = keys.data();
    tokens.kLen = c.keys;
  }
  std::string why = k::checkAttentionTokens(tokens);
  if (!why.empty())
    layerFatal(llvm::Twine(layer) + ": " + why);
  c.plan =
      std::make_shared<const k::AttentionPlan>(k::prepareAttention(tokens));
  // Empty positions are token indices, which step by 1 by construction.
  if (alibi && !batch.positions.empty())
    if (std::string why =
            alibiPositionsProblem(*layout, batch.policy, batch.positions);
        !why.empty())
      layerFatal(llvm::Twine(layer) + ": " + why);
  return c;
}

namespace mllm::runtime::cpu {
template SequenceContext makeSequenceContext(const Batch<float> &, int64_t,
                                             bool, bool, llvm::StringRef);
template SequenceContext makeSequenceContext(const Batch<double> &, int64_t,
                                             bool, bool, llvm::StringRef);
} // namespace mllm::runtime::cpu
