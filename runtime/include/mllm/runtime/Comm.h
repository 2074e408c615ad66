//===- Comm.h - what the runtime needs from a communication library -*- C++
//-*-===//
//
// The collectives and point-to-point messages a rank's program uses, over
// groups of global ranks the plan names (a stage's TP group, CP group,
// gradient-sync group, ...). MPI implements it on the CPU backend
// (runtime/lib/MPI), NCCL on the GPU backend; tests use an in-process
// implementation with one thread per rank. Every call returns an error
// instead of hanging or aborting: a wait that passes its deadline, or a
// peer that died, is an error naming the operation and the peer.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_COMM_H
#define MLLM_RUNTIME_COMM_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <memory>
#include <vector>

namespace mllm::runtime {

/// A set of global ranks that communicate together, in the order the plan
/// lists them (a rank's index in it is its group rank).
class Group {
public:
  virtual ~Group() = default;
  virtual int size() const = 0;
  /// This rank's index in the group.
  virtual int rank() const = 0;

  /// Sums `data` over the group, in place; every rank gets the same
  /// result.
  virtual llvm::Error allReduceSum(float *data, int64_t count) = 0;
  virtual llvm::Error allReduceSum(double *data, int64_t count) = 0;
  /// The element-wise maximum over the group, in place.
  virtual llvm::Error allReduceMax(float *data, int64_t count) = 0;
  /// Concatenates every rank's `bytes` bytes in group order into `out`.
  virtual llvm::Error allGatherBytes(const void *local, int64_t bytes,
                                     void *out) = 0;
  /// Concatenates every rank's `local` in group order into `out`; rank i
  /// contributes counts[i] floats.
  virtual llvm::Error allGather(const float *local,
                                llvm::ArrayRef<int64_t> counts, float *out) = 0;
  /// The inverse: sums `in` (concatenated blocks of counts[i] floats)
  /// over the group and leaves block `rank()` in `local`.
  virtual llvm::Error reduceScatterSum(const float *in,
                                       llvm::ArrayRef<int64_t> counts,
                                       float *local) = 0;
};

/// A pending send or receive.
class Request {
public:
  virtual ~Request() = default;
  /// Waits until the operation completed (or fails at the deadline).
  virtual llvm::Error wait() = 0;
};

/// The world: this rank, the world size, point-to-point messages by global
/// rank and tag, and the groups.
class Comm {
public:
  virtual ~Comm() = default;
  virtual int worldRank() const = 0;
  virtual int worldSize() const = 0;
  /// A group of these global ranks (which must include this rank).
  virtual llvm::Expected<std::unique_ptr<Group>>
  group(llvm::ArrayRef<int64_t> ranks) = 0;

  virtual llvm::Expected<std::unique_ptr<Request>>
  isend(const void *data, int64_t bytes, int peer, int64_t tag) = 0;
  virtual llvm::Expected<std::unique_ptr<Request>>
  irecv(void *data, int64_t bytes, int peer, int64_t tag) = 0;
  /// Every rank arrives (with the deadline).
  virtual llvm::Error barrier() = 0;
};

} // namespace mllm::runtime

#endif // MLLM_RUNTIME_COMM_H
