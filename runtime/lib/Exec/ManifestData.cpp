//===- ManifestData.cpp - training batches from a data set ----------------===//
#include "mllm/runtime/exec/ManifestData.h"
#include "mllm/runtime/exec/BatchSplit.h"

#include "mllm/runtime/data/Geometry.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::exec;

static llvm::Error fail(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

MicrobatchData exec::toMicrobatchData(const Model &model,
                                      const data::DataGeometry &geometry,
                                      data::Microbatch batch,
                                      double lossScale) {
  data::padToCapacity(batch, geometry);
  MicrobatchData d;
  d.tokenIds = std::move(batch.tokenIds);
  d.targets = std::move(batch.targets);
  d.media = std::move(batch.media);
  d.lossScale = lossScale;
  d.layout = batchLayoutOf(model, batch.sequences.front());
  return d;
}

std::shared_ptr<BatchLayout>
exec::batchLayoutOf(const Model &model, const data::PackedSequence &seq) {
  auto layout = std::make_shared<BatchLayout>();
  layout->tokens = seq.layout;
  layout->positions = seq.positions;
  layout->items.resize(model.encoders.size());
  for (size_t e = 0; e < seq.items.size() && e < layout->items.size(); ++e)
    for (size_t k = 0; k < seq.items[e].size(); ++k)
      layout->items[e].push_back(
          {seq.items[e][k].start, static_cast<int64_t>(k)});
  return layout;
}

llvm::Expected<data::DataGeometry> exec::dataGeometryOf(const Model &model) {
  if (model.sequences != 1)
    return llvm::make_error<RefusalError>(
        RefusalError::kDataBlock,
        llvm::formatv("reading a data set needs microbatch_size = 1 (the "
                      "plan has {0}): each sequence of real data has its own "
                      "mask, and the CPU layers share one mask per "
                      "microbatch; pack more samples per sequence (packing) "
                      "instead",
                      model.sequences)
            .str());
  auto geometry = data::dataGeometry(model.plan());
  if (!geometry)
    return geometry.takeError();
  if (geometry->encoders.size() != model.encoders.size())
    return fail(llvm::formatv("the data layout has {0} encoders with items, "
                              "the model {1}",
                              geometry->encoders.size(), model.encoders.size())
                    .str());
  for (size_t e = 0; e < model.encoders.size(); ++e) {
    const data::EncoderInput &in = geometry->encoders[e];
    const EncoderGeometry &g = model.encoders[e];
    int64_t items = geometry->sequences * geometry->itemCapacity(e);
    if (in.name != g.name || items != g.items ||
        in.floatsPerItem() != g.windows * g.mediaPerSequence)
      return fail(
          llvm::formatv("encoder '{0}': the data set reads {1} items of {2} "
                        "floats per microbatch, the model {3} of {4} (internal "
                        "error)",
                        g.name, items, in.floatsPerItem(), g.items,
                        g.windows * g.mediaPerSequence)
              .str());
  }
  return geometry;
}

llvm::Expected<std::unique_ptr<data::DataSet>>
exec::openDataSet(const Model &model, llvm::StringRef manifest,
                  const data::DataOptions &options) {
  auto geometry = dataGeometryOf(model);
  if (!geometry)
    return geometry.takeError();
  auto set = data::DataSet::open(manifest, *geometry, options);
  if (!set)
    return llvm::handleErrors(
        set.takeError(), [&](const data::VocabularyError &e) -> llvm::Error {
          return llvm::make_error<RefusalError>(model.plan().llm().name,
                                                e.message);
        });
  return set;
}

llvm::Expected<std::unique_ptr<ManifestData>>
ManifestData::open(const Model &model, llvm::StringRef manifest,
                   const data::DataOptions &options, int prefetchThreads) {
  const Plan &plan = model.plan();
  if (plan.llm().cp > 1 && !llmAssignment(plan))
    return fail("the plan's LLM has cp " + llvm::Twine(plan.llm().cp) +
                " but no CP assignment to take the balancer's options from");
  auto set = openDataSet(model, manifest, options);
  if (!set)
    return set.takeError();
  return std::unique_ptr<ManifestData>(
      new ManifestData(model, std::move(*set), prefetchThreads));
}

llvm::Expected<MicrobatchData> ManifestData::get(int64_t step, int64_t replica,
                                                 int64_t mb) {
  std::unique_ptr<data::Prefetcher> &queue = queues[replica];
  if (!queue)
    queue = std::make_unique<data::Prefetcher>(
        *set, replica, data::DataPosition{step, mb}, threads, /*depth=*/4);
  auto batch = queue->get(step, mb);
  if (!batch)
    return batch.takeError();
  int64_t counted = set->countedTokens(step);
  MicrobatchData d = toMicrobatchData(
      model, set->geometry(), std::move(*batch),
      1.0 / static_cast<double>(std::max<int64_t>(counted, 1)));
  // Every rank balances the batch's own CP split (the same answer on all),
  // also those outside the LLM, so that rank 0 can report it.
  if (llvm::Error e = splitBatchForCP(model.plan(), d))
    return std::move(e);
  return std::move(d);
}

data::PrefetchStats ManifestData::stats() const {
  data::PrefetchStats total;
  for (const auto &[replica, queue] : queues) {
    data::PrefetchStats s = queue->stats();
    total.batches += s.batches;
    total.samples += s.samples;
    total.decodeSeconds += s.decodeSeconds;
    total.waitSeconds += s.waitSeconds;
    total.wallSeconds = std::max(total.wallSeconds, s.wallSeconds);
    total.threads += s.threads;
  }
  return total;
}

bool ManifestData::splitsPerBatch() const {
  return llmAssignment(model.plan()) != nullptr;
}

std::string ManifestData::identity() const {
  return "data set " + llvm::utohexstr(set->fingerprint(), /*LowerCase=*/true);
}
