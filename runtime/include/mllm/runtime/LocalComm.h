//===- LocalComm.h - the ranks of a job as threads of one process -*- C++
//-*-===//
//
// An in-process implementation of Comm (Comm.h) for tests and for running
// several ranks as threads: collectives and messages meet in state the
// ranks share, guarded by one mutex and condition variable. It keeps the
// contract an MPI or NCCL implementation has to keep, so a rank's program
// tested on it behaves the same there:
//   - every wait has a deadline and fails with an error that names the
//     operation, the group and the peers it still waited for;
//   - a rank that exits (its Comm destroyed) makes every wait on it fail at
//     once, as a dead MPI peer does;
//   - the k-th collective call of every member of a group meet; ranks that
//     call different collectives or counts there get an error, not garbage;
//   - sums run in group-rank order, once, so every rank gets the same bits;
//   - messages between two ranks with one tag arrive in send order.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_LOCALCOMM_H
#define MLLM_RUNTIME_LOCALCOMM_H

#include "mllm/runtime/Comm.h"

#include <chrono>
#include <functional>
#include <memory>
#include <vector>

namespace mllm::runtime {

/// One Comm per rank of a world of `ranks` ranks (index = world rank), each
/// to be used from one thread at a time. Every wait fails after `timeout`.
std::vector<std::unique_ptr<Comm>>
makeLocalWorld(int ranks, std::chrono::milliseconds timeout);

/// Runs `body` for every rank of a fresh local world on its own thread and
/// joins them. A rank's Comm is destroyed as soon as its body returns, so
/// peers still waiting on it fail at once instead of at the deadline.
/// Returns the errors of all ranks, each prefixed with "rank N: ".
llvm::Error runLocalWorld(int ranks, std::chrono::milliseconds timeout,
                          const std::function<llvm::Error(Comm &)> &body);

} // namespace mllm::runtime

#endif // MLLM_RUNTIME_LOCALCOMM_H
