//===- NCCLComm.h - the communication interface over NCCL -------*- C++ -*-===//
//
// Comm (Comm.h) for the GPU backend. **Every buffer given to it is device
// memory** (NCCL moves GPU memory; a host pointer is refused with an error):
// the groups' collectives, isend and irecv. Host data (plan hashes, message
// lists) goes over the bootstrap Comm NCCL was started from.
//
//  - Bootstrap: rank 0 creates an ncclUniqueId and the bootstrap Comm (the
//    MPI world of initMPI, or any Comm) all-gathers it; Debian's OpenMPI is
//    not CUDA-aware, so MPI never sees device memory.
//  - Non-blocking communicators (config.blocking = 0) everywhere, every
//    wait polled against the timeout: a peer that never joins, dies or
//    stops answering makes the wait fail, all communicators are aborted
//    (ncclCommAbort) and the call returns an error naming the operation
//    and the peer. Nothing here exits.
//  - group(ranks) is **collective over the world** (ncclCommSplit): every
//    rank calls it the same number of times in the same order, passing its
//    own group of that call (the calls of one round partition the ranks;
//    a rank in no group passes {}). The requests are all-gathered over the
//    bootstrap Comm first, so inconsistent calls are an error, not a hang.
//    Each group has its own stream: CP's K/V all-gather, TP's all-reduces
//    and the DP gradient sync can overlap compute and each other.
//  - Point-to-point: NCCL has no tags (PairOrder.h explains why the
//    verified per-pair order makes them unnecessary). connectPeers() makes
//    one two-rank communicator and stream per direction of every pair, so a
//    send never waits behind an unrelated receive (the asynchronous-send
//    semantics the schedule was verified under). Ops posted between
//    beginP2PGroup() and endP2PGroup() are launched as one NCCL group.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_CUDA_NCCLCOMM_H
#define MLLM_RUNTIME_CUDA_NCCLCOMM_H

#include "mllm/runtime/Comm.h"
#include "mllm/runtime/cuda/PairOrder.h"

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <chrono>
#include <memory>
#include <utility>

namespace mllm::runtime::cuda {

struct NCCLOptions {
  /// Bounds initialisation and every wait.
  std::chrono::milliseconds timeout{std::chrono::seconds(120)};
  /// This rank's GPU; -1: the launcher's local rank modulo the devices.
  int device = -1;
};

/// A posted operation; its event completes with it on the operation's
/// stream, so compute streams can wait for it (cudaStreamWaitEvent)
/// without blocking the host.
class NCCLRequest : public Request {
public:
  virtual cudaEvent_t event() const = 0;
};

/// A group's collectives can also be posted without waiting.
class NCCLGroup : public Group {
public:
  virtual cudaStream_t stream() const = 0;
  virtual llvm::Expected<std::unique_ptr<NCCLRequest>>
  allGatherAsync(const float *local, llvm::ArrayRef<int64_t> counts,
                 float *out) = 0;
  virtual llvm::Expected<std::unique_ptr<NCCLRequest>>
  reduceScatterSumAsync(const float *in, llvm::ArrayRef<int64_t> counts,
                        float *local) = 0;
  virtual llvm::Expected<std::unique_ptr<NCCLRequest>>
  allReduceSumAsync(float *data, int64_t count) = 0;
  /// The all-reduces of a tensor-parallel shard's layers: bf16 partial
  /// sums (NCCL's ncclBfloat16), the vocab-parallel loss's sums (double)
  /// and row maxima (float).
  virtual llvm::Expected<std::unique_ptr<NCCLRequest>>
  allReduceSumAsync(__nv_bfloat16 *data, int64_t count) = 0;
  virtual llvm::Expected<std::unique_ptr<NCCLRequest>>
  allReduceSumAsync(double *data, int64_t count) = 0;
  virtual llvm::Expected<std::unique_ptr<NCCLRequest>>
  allReduceMaxAsync(float *data, int64_t count) = 0;
  /// Context parallelism's K/V all-gather and dK/dV reduce-scatter in bf16.
  virtual llvm::Expected<std::unique_ptr<NCCLRequest>>
  allGatherAsync(const __nv_bfloat16 *local, llvm::ArrayRef<int64_t> counts,
                 __nv_bfloat16 *out) = 0;
  virtual llvm::Expected<std::unique_ptr<NCCLRequest>>
  reduceScatterSumAsync(const __nv_bfloat16 *in, llvm::ArrayRef<int64_t> counts,
                        __nv_bfloat16 *local) = 0;
};

class NCCLWorld : public Comm {
public:
  /// Collective over `bootstrap` (which must outlive the world): selects
  /// the GPU, shares the unique id, initialises the world communicator.
  static llvm::Expected<std::unique_ptr<NCCLWorld>>
  create(Comm &bootstrap, const NCCLOptions &options = {});

  /// The GPU this rank uses.
  virtual int device() const = 0;

  /// group() with the NCCL type (its stream and asynchronous collectives);
  /// collective over the world as group().
  virtual llvm::Expected<std::unique_ptr<NCCLGroup>>
  split(llvm::ArrayRef<int64_t> ranks) = 0;

  /// Collective: the same list of directed (sender, receiver) pairs on
  /// every rank (checked); makes a channel for each.
  virtual llvm::Error
  connectPeers(llvm::ArrayRef<std::pair<int, int>> directedPairs) = 0;
  /// From now on every isend/irecv must be the next of `mine` (this rank's
  /// messages in posting order) on its channel, else it is refused: the
  /// run-time half of checkPairOrder.
  virtual void expectMessages(llvm::ArrayRef<P2PMessage> mine) = 0;

  /// Ops posted until endP2PGroup() launch together (ncclGroupStart/End).
  virtual void beginP2PGroup() = 0;
  virtual llvm::Error endP2PGroup() = 0;
};

} // namespace mllm::runtime::cuda

#endif // MLLM_RUNTIME_CUDA_NCCLCOMM_H
