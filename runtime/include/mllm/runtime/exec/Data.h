//===- Data.h - the batches a training run reads ----------------*- C++ -*-===//
//
// A source of microbatches that follow the plan's data layout exactly. The
// synthetic source makes a learnable task (every sample's text is a
// sequence of the recurrence t' = (5 t + 3) mod vocab from a random start,
// so the next token is a function of the current one) and random media,
// each a pure function of (seed, step, replica, microbatch): any rank, in
// any order, and a resumed run read the same batches. Real data sets come
// through the same interface.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_EXEC_DATA_H
#define MLLM_RUNTIME_EXEC_DATA_H

#include "mllm/runtime/exec/Model.h"

namespace mllm::runtime::exec {

class DataSource {
public:
  virtual ~DataSource() = default;
  /// Microbatch `mb` of data-parallel replica `replica` in step `step`
  /// (0-based), with its loss scale set for a global batch of `dp` replicas.
  /// Fails for data that cannot be read (a strict data set's bad sample).
  virtual llvm::Expected<MicrobatchData> get(int64_t step, int64_t replica,
                                             int64_t mb) = 0;
  /// What the batches are ("synthetic", a data set's fingerprint): a
  /// checkpoint records it, and a resume on other data is refused (the step
  /// is the data position only for the same data).
  virtual std::string identity() const = 0;
  /// Whether a batch may bring its own CP split of the LLM
  /// (BatchLayout::cpTokens, BatchSplit.h) instead of the plan's: an
  /// executor that lays its buffers out once sizes them for any split.
  virtual bool splitsPerBatch() const { return false; }
};

class SyntheticData : public DataSource {
public:
  SyntheticData(const Model &model, uint64_t seed);
  llvm::Expected<MicrobatchData> get(int64_t step, int64_t replica,
                                     int64_t mb) override;
  std::string identity() const override { return "synthetic"; }

private:
  const Model &model;
  uint64_t seed;
  int64_t dp, microbatches;
};

/// Records every microbatch another source hands out, to write them to a
/// safetensors file (`mllm-run --dump-batches`): what an independent
/// reference (the PyTorch test) trains on, and a way to look at the data.
class RecordingData : public DataSource {
public:
  RecordingData(const Model &model, DataSource &inner)
      : model(model), inner(inner) {}
  llvm::Expected<MicrobatchData> get(int64_t step, int64_t replica,
                                     int64_t mb) override;
  std::string identity() const override { return inner.identity(); }
  bool splitsPerBatch() const override { return inner.splitsPerBatch(); }
  /// Tensors `s{step}.d{replica}.m{mb}.{token_ids,targets,loss_scale}` and
  /// `...media.{encoder}` per microbatch, and the sequence's layout:
  /// `layout.{words,segments,positions}` (words bit-cast to I64) and
  /// `fan_in.{encoder}` (per projected token of one sequence, its row).
  llvm::Error write(llvm::StringRef path) const;

private:
  const Model &model;
  DataSource &inner;
  std::vector<std::pair<std::string, MicrobatchData>> recorded;
};

} // namespace mllm::runtime::exec

#endif // MLLM_RUNTIME_EXEC_DATA_H
