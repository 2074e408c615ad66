//===- PairOrder.h - Tagless point-to-point: the per-pair order -*- C++ -*-===//
//
// NCCL has no message tags: between two ranks, the k-th send is received by
// the k-th receive, in posting order. The plan's schedule is verified
// (verifySchedule) so that between every pair of stages the sends and the
// receives come in the same order with the same tags and shapes; a runtime
// that posts them in program order therefore pairs every message exactly
// as MPI would by tag, and the tags are unnecessary. These checks make that
// argument hold at run time for the ranks' actual posting order: at load,
// over every rank's list (checkPairOrder), and message by message in
// NCCLWorld::expectMessages. No CUDA here (tested on the CPU).
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_CUDA_PAIRORDER_H
#define MLLM_RUNTIME_CUDA_PAIRORDER_H

#include "mllm/runtime/Comm.h"

#include <cstdint>
#include <vector>

namespace mllm::runtime::cuda {

/// One message as a rank posts it (a send when `from` is the rank, a
/// receive when `to` is).
struct P2PMessage {
  int32_t from = 0, to = 0;
  int64_t tag = 0, bytes = 0;
  bool operator==(const P2PMessage &o) const {
    return from == o.from && to == o.to && tag == o.tag && bytes == o.bytes;
  }
};

/// Per rank, its messages in posting order. Succeeds when, for every
/// ordered pair of ranks (a, b), a's sends to b and b's receives from a
/// have the same tags and sizes in the same order; otherwise names the
/// first message that a tagless transport would pair wrongly.
llvm::Error checkPairOrder(llvm::ArrayRef<std::vector<P2PMessage>> perRank);

/// The same check at load time, collectively: every rank passes its own
/// list; the lists are all-gathered over `world` (host memory, e.g. the
/// MPI Comm NCCL was bootstrapped from) and every rank gets the same
/// answer.
llvm::Error exchangeAndCheckPairOrder(Comm &world,
                                      llvm::ArrayRef<P2PMessage> mine);

} // namespace mllm::runtime::cuda

#endif // MLLM_RUNTIME_CUDA_PAIRORDER_H
