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
  virtual MicrobatchData get(int64_t step, int64_t replica, int64_t mb) = 0;
};

class SyntheticData : public DataSource {
public:
  SyntheticData(const Model &model, uint64_t seed);
  MicrobatchData get(int64_t step, int64_t replica, int64_t mb) override;

private:
  const Model &model;
  uint64_t seed;
  int64_t dp, microbatches;
};

} // namespace mllm::runtime::exec

#endif // MLLM_RUNTIME_EXEC_DATA_H
