//===- ManifestData.h - training batches from a data set --------*- C++ -*-===//
//
// The DataSource of real data: a JSONL manifest of samples (docs/data.md)
// opened as a data::DataSet with the plan's geometry, read through one
// prefetching queue per data-parallel replica. Each microbatch carries its
// own layout (its samples' text and items packed into the sequence), so
// the LLM's mask, positions and fan-in follow the batch, while the
// encoders see the plan's static item count (absent items are zero
// padding whose tokens go nowhere).
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_EXEC_MANIFESTDATA_H
#define MLLM_RUNTIME_EXEC_MANIFESTDATA_H

#include "mllm/runtime/data/DataSet.h"
#include "mllm/runtime/data/Prefetch.h"
#include "mllm/runtime/exec/Data.h"

namespace mllm::runtime::exec {

/// A data set's microbatch as the executor reads it (the media padded to the
/// plan's item count, the batch's own layout, no CP split yet).
MicrobatchData toMicrobatchData(const Model &model,
                                const data::DataGeometry &geometry,
                                data::Microbatch batch, double lossScale);

/// The layout of a packed sequence as the LLM's layers read it (its mask,
/// positions and the tokens of each encoder's items).
std::shared_ptr<BatchLayout> batchLayoutOf(const Model &model,
                                           const data::PackedSequence &seq);

/// The data geometry of `model`'s plan for reading a data set, or why the
/// runtime does not read one for it (several sequences per microbatch; a
/// data layout the model disagrees with).
llvm::Expected<data::DataGeometry> dataGeometryOf(const Model &model);

/// `manifest` opened as a data set of `model`'s geometry (`options` as
/// given). Refuses what dataGeometryOf() refuses, and a tokenizer whose ids
/// the LLM's vocabulary cannot hold at the LLM (RefusalError).
llvm::Expected<std::unique_ptr<data::DataSet>>
openDataSet(const Model &model, llvm::StringRef manifest,
            const data::DataOptions &options);

class ManifestData : public DataSource {
public:
  /// Opens `manifest` for `model`'s plan. Refuses what dataGeometryOf()
  /// refuses. Under a context-parallel LLM every batch gets its own CP split
  /// (BatchSplit.h).
  static llvm::Expected<std::unique_ptr<ManifestData>>
  open(const Model &model, llvm::StringRef manifest,
       const data::DataOptions &options, int prefetchThreads);

  llvm::Expected<MicrobatchData> get(int64_t step, int64_t replica,
                                     int64_t mb) override;
  /// "data set <fingerprint>" (the manifest's bytes and the options).
  std::string identity() const override;
  /// Under a context-parallel LLM: every batch is split on its own.
  bool splitsPerBatch() const override;

  const data::DataSet &dataSet() const { return *set; }
  /// The prefetch queues' figures, summed over the replicas read.
  data::PrefetchStats stats() const;

private:
  ManifestData(const Model &model, std::unique_ptr<data::DataSet> set,
               int threads)
      : model(model), set(std::move(set)), threads(threads) {}

  const Model &model;
  std::unique_ptr<data::DataSet> set;
  int threads;
  std::map<int64_t, std::unique_ptr<data::Prefetcher>> queues;
};

} // namespace mllm::runtime::exec

#endif // MLLM_RUNTIME_EXEC_MANIFESTDATA_H
