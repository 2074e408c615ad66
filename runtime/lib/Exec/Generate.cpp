//===- Generate.cpp - greedy decoding after a sample's media --------------===//
#include "mllm/runtime/exec/Generate.h"

#include "mllm/runtime/exec/Evaluate.h"

#include "mllm/kernels/cpu/Linear.h"

#include <algorithm>
#include <cmath>
#include <map>

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::exec;

llvm::Expected<std::unique_ptr<Generator>>
Generator::open(const Model &model, llvm::StringRef manifest,
                data::DataOptions options) {
  options.tokenizer.addEos = false; // A prompt goes on.
  options.pack.maxSamples = 1;      // One sample per sequence.
  auto set = openDataSet(model, manifest, options);
  if (!set)
    return set.takeError();
  return std::unique_ptr<Generator>(new Generator(model, std::move(*set)));
}

NextToken::~NextToken() = default;

llvm::Error NextToken::startSample(int64_t, const MicrobatchData &) {
  return llvm::Error::success();
}

CPUNextToken::CPUNextToken(Model &model, bool cacheKeys)
    : model(model), cacheKeys(cacheKeys && canCacheKeys(model, false)),
      policy(llmMaskPolicy(model)) {}

llvm::Error CPUNextToken::startSample(int64_t, const MicrobatchData &batch) {
  // The encoders' tokens do not change while the text grows: run them
  // once, then only the LLM per token.
  keys.restart();
  ctx = MicrobatchContext();
  ctx.data = &batch;
  Activation none, out;
  for (size_t e = 0; e < model.encoders.size(); ++e) {
    Chain &chain = *model.chains[e];
    chain.forward(-1, ctx, 0, chain.size(), none, out);
    ++done.encoderRuns;
    chain.release(-1);
    ctx.encoderOut[chain.part()] = std::move(out);
    out = Activation();
  }
  return llvm::Error::success();
}

llvm::Error CPUNextToken::choose(llvm::ArrayRef<TokenQuery> queries,
                                 int64_t choices,
                                 llvm::MutableArrayRef<int64_t> ids) {
  const cpu::Param<float> &weight = headWeight(model);
  const int64_t vocab = weight.value.shape[0], width = weight.value.shape[1];
  auto internal = [](const llvm::Twine &why) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "generation: " + why + " (internal error)");
  };
  for (size_t q = 0; q < queries.size(); ++q) {
    const TokenQuery &query = queries[q];
    if (query.slot != 0 || !query.batch || query.row < 0 ||
        query.row >= static_cast<int64_t>(query.batch->tokenIds.size()) ||
        choices > vocab)
      return internal("the query does not fit the model");
    // Rows [first, row] of the sequence run: the new tokens, or all.
    int64_t first = 0;
    const bool cached = cacheKeys && query.batch->layout;
    if (cached) {
      round = keys.newTokens(*query.batch, query.row + 1, policy);
      first = keys.kept();
      ctx.data = &round;
    } else {
      ctx.data = query.batch;
    }
    ctx.commError.clear();
    Activation none;
    Chain &llm = model.llm();
    llm.forward(-1, ctx, 0, llm.size() - 1, none, hidden);
    llm.release(-1);
    if (!ctx.commError.empty()) {
      keys.restart();
      return internal(ctx.commError);
    }
    if (cached)
      if (llvm::Error e = keys.endRound())
        return e;
    const int64_t row = query.row - first;
    ++done.rounds;
    done.rows += hidden.rows();
    if (hidden.cols() != width || row >= hidden.rows())
      return internal("the LLM's hidden states do not fit the LM head");
    logits.resize(static_cast<size_t>(vocab));
    kernels::cpu::linearForward(hidden.ptr() + row * width, weight.value.ptr(),
                                static_cast<const float *>(nullptr),
                                logits.data(), 1, width, vocab);
    // The first largest, NaN skipped; -1 when there is none.
    int64_t best = -1;
    for (int64_t v = 0; v < choices; ++v)
      if (!std::isnan(logits[v]) && (best < 0 || logits[v] > logits[best]))
        best = v;
    ids[q] = best;
  }
  return llvm::Error::success();
}

namespace {
/// A sample being continued: what is printed, its layout so far and, where
/// this process runs it, its batch.
struct Continued {
  Generation g;
  data::SampleLayout layout;
  MicrobatchData batch;
  bool done = false;
};

/// The sample's batch with its text so far (the media stay): its layout,
/// its token ids, every target ignored.
void layOut(const Model &model, const data::DataGeometry &geometry,
            Continued &c) {
  data::PackedSequence seq =
      data::buildSequence({&c.layout}, geometry, geometry.seqLen);
  c.batch.tokenIds = seq.tokenIds;
  c.batch.targets.assign(seq.tokenIds.size(), data::kIgnoreTarget);
  c.batch.layout = batchLayoutOf(model, seq);
}
} // namespace

llvm::Error Generator::run(int64_t maxTokens, NextToken &next,
                           llvm::function_ref<void(const Generation &)> emit) {
  const data::DataGeometry &geometry = set->geometry();
  const data::Tokenizer &tokenizer = set->tokenizer();
  // The model may only say what the tokenizer can decode.
  const int64_t choices = std::min(model.vocab, tokenizer.size());
  std::optional<int64_t> eos = tokenizer.eos();

  // Epoch 0 holds every sample alone in a sequence; visit them by line.
  std::map<int64_t, std::pair<int64_t, int64_t>> byLine; // line -> (batch, i)
  int64_t batches = set->batches().batchesInEpoch(0);
  for (int64_t k = 0; k < batches; ++k)
    for (const std::vector<int64_t> &seq : set->batches().sequences({0, k}))
      for (int64_t i : seq)
        byLine[set->sample(i).line] = {k, i};
  std::vector<std::pair<int64_t, int64_t>> order;
  for (const auto &[line, where] : byLine)
    order.push_back(where);

  const size_t width = static_cast<size_t>(std::max<int64_t>(1, next.width()));
  for (size_t begin = 0; begin < order.size(); begin += width) {
    std::vector<Continued> slots(std::min(width, order.size() - begin));
    for (size_t s = 0; s < slots.size(); ++s) {
      const auto &[k, index] = order[begin + s];
      const data::ManifestSample &sample = set->sample(index);
      Continued &c = slots[s];
      c.g.line = sample.line;
      c.g.prompt = sample.text;
      c.g.stop = "max-tokens";
      for (size_t e = 0; e < geometry.encoders.size(); ++e)
        for (const std::string &path : sample.media[e])
          c.g.media.push_back({geometry.encoders[e].name, path});
      auto layout = data::layoutSample(sample, geometry, tokenizer,
                                       /*addEos=*/false);
      if (!layout)
        return layout.takeError();
      c.layout = std::move(*layout);
      if (!next.runs(static_cast<int64_t>(s)))
        continue;
      auto decoded = set->microbatchAt({0, k});
      if (!decoded)
        return decoded.takeError();
      // Training masks such a sample and goes on; a caption of zeros would
      // say nothing.
      if (decoded->failedSamples > 0)
        return llvm::createStringError(
            llvm::inconvertibleErrorCode(),
            set->problems().fileName() + ":" + llvm::Twine(sample.line) +
                ": undecodable media: the file's header reads but its data "
                "does not decode (truncated, or changed on disk); fix the "
                "file or remove the line");
      c.batch = toMicrobatchData(model, geometry, std::move(*decoded), 1.0);
      if (llvm::Error e = next.startSample(static_cast<int64_t>(s), c.batch))
        return e;
    }

    std::vector<TokenQuery> queries;
    std::vector<int64_t> ids;
    while (true) {
      queries.clear();
      for (size_t s = 0; s < slots.size(); ++s) {
        Continued &c = slots[s];
        if (c.done)
          continue;
        if (static_cast<int64_t>(c.g.tokens.size()) >= maxTokens) {
          c.done = true;
          continue;
        }
        if (c.layout.tokens >= geometry.seqLen) {
          c.g.stop = "sequence full";
          c.done = true;
          continue;
        }
        TokenQuery q;
        q.slot = static_cast<int64_t>(s);
        // The sample starts the sequence: its last token is the one whose
        // logits choose the next.
        q.row = c.layout.tokens - 1;
        if (next.runs(q.slot)) {
          layOut(model, geometry, c);
          q.batch = &c.batch;
        }
        queries.push_back(q);
      }
      if (queries.empty())
        break;
      ids.assign(queries.size(), -1);
      if (llvm::Error e = next.choose(queries, choices, ids))
        return e;
      for (size_t q = 0; q < queries.size(); ++q) {
        Continued &c = slots[static_cast<size_t>(queries[q].slot)];
        if (ids[q] < 0 || (eos && ids[q] == *eos)) {
          c.g.stop = ids[q] < 0 ? "nan" : "end";
          c.done = true;
          continue;
        }
        c.g.tokens.push_back(ids[q]);
        c.layout.text.push_back(ids[q]);
        ++c.layout.tokens;
      }
    }
    for (Continued &c : slots) {
      // The layout's text is the prompt's tokens, then the continuation.
      llvm::ArrayRef<int64_t> text(c.layout.text);
      c.g.text = tokenizer.decodeAfter(
          text.drop_back(std::min(text.size(), c.g.tokens.size())), c.g.tokens);
      emit(c.g);
    }
  }
  return llvm::Error::success();
}
