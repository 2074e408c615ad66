//===- SendRelease.h - when a posted send's buffer is free ------*- C++ -*-===//
//
// A rank posts its sends and goes on; their buffers must live until the
// message has left. Waiting for every send at the end of the iteration
// keeps each buffer for the whole iteration (a stage that sends activations
// every microbatch then holds them all). A send can be waited for earlier,
// and without risk of blocking, where the schedule proves it was received:
// at a later point where this rank has taken a message from the same peer
// stage that the peer sent only after its receive of this one. Where the
// rank pairing (docs/runtime.md) makes every rank this send goes to one of
// the ranks that later message comes from, the wait finds the send
// complete. The memory plan (MemoryPlan.h) and the runtime both follow this
// function, so the planned lifetimes are the ones the runtime keeps.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_SENDRELEASE_H
#define MLLM_RUNTIME_SENDRELEASE_H

#include "mllm/runtime/Schedule.h"

#include <cstdint>
#include <vector>

namespace mllm::sched {

/// For each action of programs[index]: for a send, the compute action at
/// whose end the runtime waits for it and frees its buffer (it waits there
/// for a receive from the send's peer stage whose message the peer sent
/// after the action that waited for this one), or -1: at the end of the
/// iteration. -1 for
/// every other action. A receive counts from the action that waits for it:
/// an activation's at its microbatch's next forward, a gradient's at its
/// microbatch's next backward. Sends to a stage with more TP ranks, or
/// another data-parallel degree, than this one's stay to the end (not
/// every rank they reach sends back to this one).
std::vector<int64_t> sendReleases(const PipelineGraph &graph,
                                  const std::vector<Program> &programs,
                                  size_t index);

} // namespace mllm::sched

#endif // MLLM_RUNTIME_SENDRELEASE_H
