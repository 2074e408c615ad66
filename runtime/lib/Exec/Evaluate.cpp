//===- Evaluate.cpp - held-out loss and token accuracy --------------------===//
#include "mllm/runtime/exec/Evaluate.h"

#include "mllm/runtime/data/Geometry.h"
#include "mllm/runtime/exec/BatchSplit.h"

#include "mllm/kernels/cpu/Linear.h"

#include "llvm/Support/FormatVariadic.h"

#include <chrono>
#include <cmath>

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::exec;

static llvm::Error fail(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

void exec::forwardToHead(Model &model, const MicrobatchData &batch,
                         Activation &hidden, int64_t id) {
  MicrobatchContext ctx;
  ctx.data = &batch;
  size_t encoders = model.encoders.size();
  Activation none, out;
  for (size_t e = 0; e < encoders; ++e) {
    Chain &chain = *model.chains[e];
    chain.forward(id, ctx, 0, chain.size(), none, out);
    chain.release(id);
    ctx.encoderOut[chain.part()] = std::move(out);
    out = Activation();
  }
  Chain &llm = model.llm();
  llm.forward(id, ctx, 0, llm.size() - 1, none, hidden);
  llm.release(id);
}

const cpu::Param<float> &exec::headWeight(Model &model) {
  if (model.tiedEmbedding)
    return *model.tiedEmbedding;
  Chain &llm = model.llm();
  cpu::Layer<float> *head = llm.step(llm.size() - 1).layer();
  for (cpu::Param<float> *p : head->params())
    if (p->name == "weight")
      return *p;
  llvm::report_fatal_error("mllm runtime: the LM head has no weight");
}

llvm::Error exec::sumCounts(Group &group, cpu::HeadEval &counts) {
  double sums[3] = {counts.lossSum, static_cast<double>(counts.tokens),
                    static_cast<double>(counts.correct)};
  if (llvm::Error e = group.allReduceSum(sums, 3))
    return e;
  counts.lossSum = sums[0];
  counts.tokens = static_cast<int64_t>(sums[1]);
  counts.correct = static_cast<int64_t>(sums[2]);
  return llvm::Error::success();
}

EvalStats exec::evalStats(const cpu::HeadEval &counts, const EvalSet &set,
                          int64_t step,
                          std::chrono::steady_clock::time_point start) {
  EvalStats stats;
  stats.step = step;
  stats.tokens = counts.tokens;
  stats.correct = counts.correct;
  if (stats.tokens) {
    stats.loss = counts.lossSum / static_cast<double>(stats.tokens);
    stats.accuracy =
        static_cast<double>(stats.correct) / static_cast<double>(stats.tokens);
  }
  stats.samples = set.sampleCount();
  stats.batches = set.batchCount();
  stats.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  return stats;
}

llvm::Expected<std::unique_ptr<EvalSet>>
EvalSet::open(const Model &model, llvm::StringRef manifest,
              const data::DataOptions &options) {
  const Plan &plan = model.plan();
  if (plan.llm().cp > 1 && !llmAssignment(plan))
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "the plan's LLM has cp " + llvm::Twine(plan.llm().cp) +
            " but no CP assignment to take the balancer's options from");
  auto set = openDataSet(model, manifest, options);
  if (!set)
    return set.takeError();
  return std::unique_ptr<EvalSet>(new EvalSet(model, std::move(*set)));
}

llvm::Expected<MicrobatchData> EvalSet::batch(int64_t k) {
  if (auto it = cache.find(k); it != cache.end())
    return it->second;
  auto got = set->microbatchAt({0, k});
  if (!got)
    return got.takeError();
  MicrobatchData d =
      toMicrobatchData(model, set->geometry(), std::move(*got), 1.0);
  // Balanced for its own mask, as a training batch is (ManifestData).
  if (llvm::Error e = splitBatchForCP(model.plan(), d))
    return std::move(e);
  // The batches this reader evaluates (a replica: every dp-th), while
  // their media stay under 256 MiB.
  if (cacheable) {
    for (const auto &[name, media] : d.media)
      cachedFloats += media.size();
    if (cachedFloats * sizeof(float) < (size_t(256) << 20))
      cache.emplace(k, d);
    else
      cacheable = false, cache.clear();
  }
  return d;
}

int64_t EvalSet::batchCount() const { return set->batches().batchesInEpoch(0); }

int64_t EvalSet::samplesIn(int64_t k) const {
  int64_t samples = 0;
  for (const std::vector<int64_t> &seq : set->batches().sequences({0, k}))
    samples += static_cast<int64_t>(seq.size());
  return samples;
}

int64_t EvalSet::sampleCount() const {
  int64_t samples = 0;
  for (int64_t k = 0; k < batchCount(); ++k)
    samples += samplesIn(k);
  return samples;
}

llvm::Expected<std::unique_ptr<Evaluator>>
Evaluator::open(Model &model, llvm::StringRef manifest,
                const data::DataOptions &options) {
  auto set = EvalSet::open(model, manifest, options);
  if (!set)
    return set.takeError();
  return std::unique_ptr<Evaluator>(new Evaluator(model, std::move(*set)));
}

llvm::Expected<EvalStats> Evaluator::run() {
  auto start = std::chrono::steady_clock::now();
  const cpu::Param<float> &weight = headWeight(model);
  const int64_t vocab = weight.value.shape[0], width = weight.value.shape[1];
  EvalSet &data = *batches;
  const int64_t count = data.batchCount();
  EvalStats stats;
  double lossSum = 0;
  Activation hidden;
  std::vector<float> rows, logits;
  for (int64_t k = 0; k < count; ++k) {
    auto d = data.batch(k);
    if (!d)
      return d.takeError();
    stats.samples += data.samplesIn(k);
    forwardToHead(model, *d, hidden);
    if (hidden.cols() != width ||
        hidden.rows() != static_cast<int64_t>(d->targets.size()))
      return fail("evaluation: the LLM's last hidden states are [" +
                  llvm::Twine(hidden.rows()) + ", " +
                  llvm::Twine(hidden.cols()) + "], the LM head reads " +
                  llvm::Twine(width) + " wide rows of " +
                  llvm::Twine(d->targets.size()) + " tokens (internal error)");
    // Only the rows with a target need logits.
    std::vector<int64_t> targets;
    rows.clear();
    for (size_t r = 0; r < d->targets.size(); ++r)
      if (d->targets[r] != data::kIgnoreTarget) {
        targets.push_back(d->targets[r]);
        rows.insert(rows.end(), hidden.ptr() + r * width,
                    hidden.ptr() + (r + 1) * width);
      }
    ++stats.batches;
    int64_t n = static_cast<int64_t>(targets.size());
    if (n == 0)
      continue;
    logits.assign(static_cast<size_t>(n * vocab), 0.0f);
    kernels::cpu::linearForward(rows.data(), weight.value.ptr(),
                                static_cast<const float *>(nullptr),
                                logits.data(), n, width, vocab);
    for (int64_t i = 0; i < n; ++i) {
      const float *z = logits.data() + i * vocab;
      // The first largest logit, NaN skipped (as the LM head's
      // evaluation and the device's pick it).
      int64_t best = 0;
      for (int64_t v = 1; v < vocab; ++v)
        if (!(z[v] <= z[best]) && !std::isnan(z[v]))
          best = v;
      double sum = 0;
      for (int64_t v = 0; v < vocab; ++v)
        sum += std::exp(static_cast<double>(z[v]) - z[best]);
      double lse = z[best] + std::log(sum);
      if (targets[i] < 0 || targets[i] >= vocab)
        return fail("evaluation: target " + llvm::Twine(targets[i]) +
                    " outside the vocabulary of " + llvm::Twine(vocab));
      lossSum += lse - z[targets[i]];
      stats.correct += best == targets[i] ? 1 : 0;
    }
    stats.tokens += n;
  }
  stats.loss = stats.tokens ? lossSum / static_cast<double>(stats.tokens) : 0;
  stats.accuracy = stats.tokens ? static_cast<double>(stats.correct) /
                                      static_cast<double>(stats.tokens)
                                : 0;
  stats.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  return stats;
}
