//===- ParallelHarness.h - parallel layers vs the whole layer ---*- C++ -*-===//
//
// What the TP and CP tests share: one layer call sequence (forward,
// backwardInput, backwardWeight) with its results by name, copying a whole
// layer's parameter values into a TP shard through the shard runs,
// assembling shards' gradients into whole tensors, picking a CP rank's rows,
// and the error measure. The whole layer of the same values is always the
// reference.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_TEST_RUNTIMEPARALLEL_PARALLELHARNESS_H
#define MLLM_TEST_RUNTIMEPARALLEL_PARALLELHARNESS_H

#include "../RuntimeCPU/LayerCases.h"

#include "mllm/runtime/LocalComm.h"
#include "mllm/runtime/cpu/ParallelParts.h"

#include <map>
#include <string>

namespace mllm::runtime::cpu::test {

/// max |a - b| / max |b| (an absolute error when b is all zero); infinity
/// for different sizes.
template <typename T>
double relError(const std::vector<T> &a, const std::vector<T> &b);

/// What one microbatch through a layer produced: the output, the input
/// gradient and every trainable parameter's gradient by name (a bound tied
/// weight's as "tied.weight").
template <typename T>
struct Results {
  Tensor<T> out, dIn;
  std::map<std::string, Tensor<T>> grads;
};

/// forward, backwardInput, backwardWeight; fails the test on a comm error.
template <typename T>
Results<T> runLayer(Layer<T> &layer, const Batch<T> &batch, const Tensor<T> &in,
                    const Tensor<T> &dOut, Param<T> *tied = nullptr);

/// Sets every parameter of `shard` to its slice of the same-named
/// parameter of `whole`.
template <typename T>
void copyShard(Layer<T> &whole, Layer<T> &shard);

/// A TP shard of a whole tied weight [vocab, hidden]: rows `range`.
template <typename T>
std::unique_ptr<Param<T>> tiedShard(const Param<T> &whole, VocabRange range,
                                    bool split);

/// The whole gradients from the TP ranks' results: split parameters
/// assembled from the shards' runs, replicated ones taken from rank 0
/// (checked to be bitwise equal on every rank). `params` are rank 0's
/// parameters; shardsOf(r) the parameters of rank r.
template <typename T>
std::map<std::string, Tensor<T>>
gatherTensorParallel(const std::vector<std::vector<Param<T> *>> &params,
                     const std::vector<Results<T>> &results);

/// Rows of `t` ([sequences * tokens, width]) at `rows` of each sequence.
template <typename T>
Tensor<T> pickRows(const Tensor<T> &t, int64_t sequences, int64_t tokens,
                   const std::vector<int64_t> &rows);
std::vector<int64_t> pickIds(const std::vector<int64_t> &ids, int64_t sequences,
                             int64_t tokens, const std::vector<int64_t> &rows);

/// Fails the test when any gradient of `got` differs from `want` by more
/// than `tolerance` (relError), or a name is missing.
template <typename T>
void expectGradsNear(const std::map<std::string, Tensor<T>> &got,
                     const std::map<std::string, Tensor<T>> &want,
                     double tolerance, const std::string &what);

/// 0, 1, ..., n - 1.
std::vector<int64_t> iota(int64_t n);

} // namespace mllm::runtime::cpu::test

#endif // MLLM_TEST_RUNTIMEPARALLEL_PARALLELHARNESS_H
