//===- Steps.cpp - the kinds of step a chain is made of -------------------===//
#include "mllm/runtime/exec/Steps.h"

#include "mllm/kernels/cpu/Elementwise.h"

#include "llvm/Support/ErrorHandling.h"

#include <algorithm>

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::exec;

//===----------------------------------------------------------------------===//
// LayerStep
//===----------------------------------------------------------------------===//

cpu::Batch<float> LayerStep::filled(const MicrobatchContext &ctx) const {
  cpu::Batch<float> b = batch;
  const MicrobatchData &data = *ctx.data;
  b.tokenIds = data.tokenIds.empty() ? nullptr : data.tokenIds.data();
  b.targets = data.targets.empty() ? nullptr : data.targets.data();
  b.lossScale = data.lossScale;
  b.eval = ctx.eval;
  b.predict = ctx.predict;
  if (data.layout && followsBatchLayout) {
    if (b.layout)
      b.layout = &data.layout->tokens;
    if (!b.positions.empty())
      b.positions = data.layout->positions;
  }
  if (data.cp && (b.cp || followsBatchLayout)) {
    // The batch's own CP split: this rank's share of its tokens (or
    // generation's new tokens, also without CP: KeyCache.h).
    b.cp = data.cp.get();
    b.tokens =
        static_cast<int64_t>(data.cp->tokens[data.cp->group->rank()].size());
  }
  if (!mediaOf.empty()) {
    auto it = data.media.find(mediaOf);
    if (it == data.media.end())
      llvm::report_fatal_error("mllm runtime: no media for '" +
                               llvm::Twine(mediaOf) + "'");
    b.media = it->second.data();
  }
  return b;
}

std::unique_ptr<cpu::LayerState> LayerStep::forward(MicrobatchContext &ctx,
                                                    const Activation &in,
                                                    Activation &out) {
  cpu::Batch<float> b = filled(ctx);
  std::unique_ptr<cpu::LayerState> state = theLayer->forward(b, in, out);
  if (theLayer->kind() == "lm_head")
    ctx.loss += out.data.empty() ? 0.0 : out.data[0];
  keepCommError(ctx);
  return state;
}

void LayerStep::backwardInput(MicrobatchContext &ctx, cpu::LayerState *state,
                              const Activation &dOut, Activation &dIn) {
  theLayer->backwardInput(filled(ctx), *state, dOut, dIn);
  keepCommError(ctx);
}

void LayerStep::backwardWeight(MicrobatchContext &ctx, cpu::LayerState *state,
                               const Activation &dOut) {
  theLayer->backwardWeight(filled(ctx), *state, dOut);
  keepCommError(ctx);
}

void LayerStep::keepCommError(MicrobatchContext &ctx) {
  if (llvm::Error e = theLayer->takeCommError()) {
    std::string message = stepName + ": " + llvm::toString(std::move(e));
    if (ctx.commError.empty())
      ctx.commError = std::move(message);
  }
}

//===----------------------------------------------------------------------===//
// ProjectorInputStep
//===----------------------------------------------------------------------===//

std::unique_ptr<cpu::LayerState>
ProjectorInputStep::forward(MicrobatchContext &, const Activation &in,
                            Activation &out) {
  int64_t skip = dropFirst ? 1 : 0, kept = tokensPerItem - skip;
  int64_t outTokens = outputTokens();
  if (in.numel() != items * tokensPerItem * width)
    llvm::report_fatal_error("mllm runtime: " + llvm::Twine(stepName) +
                             " expects " + llvm::Twine(items) + " items of " +
                             llvm::Twine(tokensPerItem) + " tokens");
  out.resize({items * outTokens, merge * width});
  for (int64_t i = 0; i < items; ++i)
    kernels::cpu::mergeTokensForward(
        in.ptr() + (i * tokensPerItem + skip) * width,
        out.ptr() + i * outTokens * merge * width, kept, width, merge);
  return nullptr;
}

void ProjectorInputStep::backwardInput(MicrobatchContext &, cpu::LayerState *,
                                       const Activation &dOut,
                                       Activation &dIn) {
  int64_t skip = dropFirst ? 1 : 0, kept = tokensPerItem - skip;
  int64_t outTokens = outputTokens();
  dIn.resize({items * tokensPerItem, width}); // The class token gets zero.
  for (int64_t i = 0; i < items; ++i)
    kernels::cpu::mergeTokensBackward(
        dOut.ptr() + i * outTokens * merge * width,
        dIn.ptr() + (i * tokensPerItem + skip) * width, kept, width, merge);
}

//===----------------------------------------------------------------------===//
// FanInStep
//===----------------------------------------------------------------------===//

bool FanInStep::inputGrad() const {
  return embeddingGrad ||
         std::find(needsGrad.begin(), needsGrad.end(), true) != needsGrad.end();
}

template <typename F>
void FanInStep::forEachItem(F fn) const {
  // Items of modality m per sequence, to number an encoder's items across
  // the microbatch's sequences.
  std::vector<int64_t> perSequence(encoders.size(), 0);
  for (const kernels::LayoutSpan &s : spans)
    if (s.kind == kernels::LayoutSpan::Item)
      ++perSequence[s.modality];
  for (int64_t b = 0; b < sequences; ++b)
    for (const kernels::LayoutSpan &s : spans) {
      if (s.kind != kernels::LayoutSpan::Item)
        continue;
      int64_t m = s.modality;
      int64_t item =
          b * perSequence[m] + s.sample * itemsPerSample[m] + s.itemIndex;
      fn(m, b * seqLen + s.start, item * s.length, s.length);
    }
}

void FanInStep::setLocalTokens(const std::vector<int64_t> &tokens) {
  localOf.assign(seqLen, -1);
  for (size_t j = 0; j < tokens.size(); ++j)
    localOf[tokens[j]] = static_cast<int64_t>(j);
  localCount = static_cast<int64_t>(tokens.size());
}

template <typename F>
void FanInStep::forEachRun(const MicrobatchContext &ctx, F fn) const {
  if (const BatchLayout *layout = ctx.data ? ctx.data->layout.get() : nullptr) {
    // A microbatch with its own layout lists its items (one sequence: real
    // data has microbatch_size 1). Under its own CP split, this rank's rows
    // are its tokens of the sequence.
    std::vector<int64_t> own;
    if (const cpu::ContextParallel *cp = ctx.data->cp.get()) {
      own.assign(seqLen, -1);
      const std::vector<int64_t> &mine = cp->tokens[cp->group->rank()];
      for (size_t j = 0; j < mine.size(); ++j)
        own[mine[j]] = static_cast<int64_t>(j);
    }
    const std::vector<int64_t> &local = ctx.data->cp ? own : localOf;
    for (size_t m = 0; m < encoders.size() && m < layout->items.size(); ++m)
      for (const BatchLayout::Item &item : layout->items[m]) {
        int64_t src = item.media * tokensPerItem[m];
        if (local.empty()) {
          fn(static_cast<int64_t>(m), item.row, src, tokensPerItem[m]);
          continue;
        }
        for (int64_t k = 0; k < tokensPerItem[m]; ++k)
          if (int64_t j = local[item.row + k]; j >= 0)
            fn(static_cast<int64_t>(m), j, src + k, 1);
      }
    return;
  }
  forEachItem([&](int64_t m, int64_t row, int64_t src, int64_t length) {
    if (localOf.empty()) {
      fn(m, row, src, length);
      return;
    }
    // Under CP this rank holds some of the item's tokens, at its own rows.
    int64_t b = row / seqLen, start = row % seqLen;
    for (int64_t k = 0; k < length; ++k)
      if (int64_t j = localOf[start + k]; j >= 0)
        fn(m, b * localCount + j, src + k, 1);
  });
}

std::vector<FanInStep::Run> FanInStep::runs(const MicrobatchData *data) const {
  MicrobatchContext ctx;
  ctx.data = data;
  std::vector<Run> all;
  forEachRun(ctx, [&](int64_t m, int64_t row, int64_t src, int64_t length) {
    all.push_back({m, row, src, length});
  });
  return all;
}

std::unique_ptr<cpu::LayerState> FanInStep::forward(MicrobatchContext &ctx,
                                                    const Activation &in,
                                                    Activation &out) {
  out = in;
  int64_t width = in.cols();
  forEachRun(ctx, [&](int64_t m, int64_t row, int64_t src, int64_t length) {
    auto it = ctx.encoderOut.find(encoders[m]);
    if (it == ctx.encoderOut.end() ||
        (src + length) * width > it->second.numel())
      llvm::report_fatal_error("mllm runtime: the tokens of '" +
                               llvm::Twine(encoders[m]) +
                               "' are missing at the LLM's fan-in");
    std::copy_n(it->second.ptr() + src * width, length * width,
                out.ptr() + row * width);
  });
  return nullptr;
}

void FanInStep::backwardInput(MicrobatchContext &ctx, cpu::LayerState *,
                              const Activation &dOut, Activation &dIn) {
  int64_t width = dOut.cols();
  for (size_t m = 0; m < encoders.size(); ++m)
    if (needsGrad[m])
      ctx.encoderGrad[encoders[m]] =
          Activation(ctx.encoderOut[encoders[m]].shape);
  dIn = dOut;
  forEachRun(ctx, [&](int64_t m, int64_t row, int64_t src, int64_t length) {
    if (needsGrad[m])
      std::copy_n(dOut.ptr() + row * width, length * width,
                  ctx.encoderGrad[encoders[m]].ptr() + src * width);
    // The embedding's rows there were replaced: they get no gradient.
    std::fill_n(dIn.ptr() + row * width, length * width, 0.0f);
  });
}
