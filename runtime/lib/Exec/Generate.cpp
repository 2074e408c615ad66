//===- Generate.cpp - greedy decoding after a sample's media --------------===//
#include "mllm/runtime/exec/Generate.h"

#include "mllm/runtime/exec/Evaluate.h"

#include "mllm/kernels/cpu/Linear.h"

#include <algorithm>
#include <map>

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::exec;

llvm::Expected<std::unique_ptr<Generator>>
Generator::open(Model &model, llvm::StringRef manifest,
                data::DataOptions options) {
  auto geometry = dataGeometryOf(model);
  if (!geometry)
    return geometry.takeError();
  options.tokenizer.addEos = false; // A prompt goes on.
  options.pack.maxSamples = 1;      // One sample per sequence.
  auto set = data::DataSet::open(manifest, *geometry, options);
  if (!set)
    return set.takeError();
  return std::unique_ptr<Generator>(new Generator(model, std::move(*set)));
}

NextToken::~NextToken() = default;

llvm::Error CPUNextToken::startSample(const MicrobatchData &batch) {
  // The encoders' tokens do not change while the text grows: run them
  // once, then only the LLM per token.
  ctx = MicrobatchContext();
  ctx.data = &batch;
  Activation none, out;
  for (size_t e = 0; e < model.encoders.size(); ++e) {
    Chain &chain = *model.chains[e];
    chain.forward(-1, ctx, 0, chain.size(), none, out);
    chain.release(-1);
    ctx.encoderOut[chain.part()] = std::move(out);
    out = Activation();
  }
  return llvm::Error::success();
}

llvm::Expected<int64_t> CPUNextToken::choose(const MicrobatchData &batch,
                                             int64_t row, int64_t choices) {
  const cpu::Param<float> &weight = headWeight(model);
  const int64_t vocab = weight.value.shape[0], width = weight.value.shape[1];
  ctx.data = &batch;
  Activation none;
  Chain &llm = model.llm();
  llm.forward(-1, ctx, 0, llm.size() - 1, none, hidden);
  llm.release(-1);
  if (row < 0 || hidden.cols() != width || row >= hidden.rows() ||
      choices > vocab)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "generation: the LLM's hidden states do not fit the LM head "
        "(internal error)");
  logits.resize(static_cast<size_t>(vocab));
  kernels::cpu::linearForward(hidden.ptr() + row * width, weight.value.ptr(),
                              static_cast<const float *>(nullptr),
                              logits.data(), 1, width, vocab);
  int64_t best = 0;
  for (int64_t v = 1; v < choices; ++v)
    if (logits[v] > logits[best])
      best = v;
  return best;
}

llvm::Error Generator::run(int64_t maxTokens,
                           llvm::function_ref<void(const Generation &)> emit,
                           NextToken *next) {
  const data::DataGeometry &geometry = set->geometry();
  const data::Tokenizer &tokenizer = set->tokenizer();
  CPUNextToken cpu(model);
  if (!next)
    next = &cpu;
  // The model may only say what the tokenizer can decode.
  const int64_t choices =
      std::min(headWeight(model).value.shape[0], tokenizer.size());
  std::optional<int64_t> eos = tokenizer.eos();

  // Epoch 0 holds every sample alone in a sequence; visit them by line.
  std::map<int64_t, std::pair<int64_t, int64_t>> byLine; // line -> (batch, i)
  int64_t batches = set->batches().batchesInEpoch(0);
  for (int64_t k = 0; k < batches; ++k)
    for (const std::vector<int64_t> &seq : set->batches().sequences({0, k}))
      for (int64_t i : seq)
        byLine[set->sample(i).line] = {k, i};

  for (const auto &[line, where] : byLine) {
    const auto &[k, index] = where;
    const data::ManifestSample &sample = set->sample(index);
    auto decoded = set->microbatchAt({0, k});
    if (!decoded)
      return decoded.takeError();
    MicrobatchData d =
        toMicrobatchData(model, geometry, std::move(*decoded), 1.0);
    auto layout = data::layoutSample(sample, geometry, tokenizer,
                                     /*addEos=*/false);
    if (!layout)
      return layout.takeError();

    Generation g;
    g.line = line;
    g.prompt = sample.text;
    for (size_t e = 0; e < geometry.encoders.size(); ++e)
      for (const std::string &path : sample.media[e])
        g.media.push_back({geometry.encoders[e].name, path});

    if (llvm::Error e = next->startSample(d))
      return e;
    g.stop = "max-tokens";
    while (static_cast<int64_t>(g.tokens.size()) < maxTokens) {
      if (layout->tokens >= geometry.seqLen) {
        g.stop = "sequence full";
        break;
      }
      data::PackedSequence seq =
          data::buildSequence({&*layout}, geometry, geometry.seqLen);
      d.tokenIds = seq.tokenIds;
      d.targets.assign(seq.tokenIds.size(), data::kIgnoreTarget);
      auto batchLayout = std::make_shared<BatchLayout>();
      batchLayout->tokens = seq.layout;
      batchLayout->positions = seq.positions;
      batchLayout->items.resize(model.encoders.size());
      for (size_t e = 0; e < seq.items.size() && e < batchLayout->items.size();
           ++e)
        for (size_t j = 0; j < seq.items[e].size(); ++j)
          batchLayout->items[e].push_back(
              {seq.items[e][j].start, static_cast<int64_t>(j)});
      d.layout = std::move(batchLayout);

      // The sample starts the sequence: its last token is the one whose
      // logits choose the next.
      auto best = next->choose(d, layout->tokens - 1, choices);
      if (!best)
        return best.takeError();
      if (eos && *best == *eos) {
        g.stop = "end";
        break;
      }
      g.tokens.push_back(*best);
      layout->text.push_back(*best);
      ++layout->tokens;
    }
    g.text = tokenizer.decode(g.tokens);
    emit(g);
  }
  return llvm::Error::success();
}
