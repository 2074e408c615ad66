//===- SendRelease.h - when a posted send's buffer is free ------*- C++ -*-===//
//
// A rank posts its sends and goes on; their buffers must live until the
// message has left. Waiting for every send at the end of the iteration
// keeps each buffer for the whole iteration (a stage that sends activations
// every microbatch then holds them all). Two rules free them earlier:
//
// - Proven arrival: at a later point where this rank has taken a message
//   from the same peer stage that the peer sent only after its receive of
//   this one. Where the rank pairing (docs/runtime.md) makes every rank this
//   send goes to one of the ranks that later message comes from, or a TP
//   peer of one that ran a forward between taking this message and sending
//   that one (the forward's TP all-reduce cannot finish before its peers
//   have taken theirs), the wait finds the send complete.
// - A window, for sends nothing comes back after (a frozen encoder's): at
//   the end of the action that posts the second later send on the same
//   link, so at most three of a link's messages are in flight. Such a wait
//   blocks until the receiver has posted its receive; it is used only when
//   every program still runs to its end with those waits
//   (runsToCompletion), else those sends stay to the end of the iteration.
//
// The memory plan (MemoryPlan.h) and the runtime both follow this function,
// so the planned lifetimes are the ones the runtime keeps.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_SENDRELEASE_H
#define MLLM_RUNTIME_SENDRELEASE_H

#include "mllm/runtime/Schedule.h"

#include <cstdint>
#include <vector>

namespace mllm::sched {

/// For each program, for each of its actions: for a send, the action at
/// whose end the runtime waits for it and frees its buffer, or -1: at the
/// end of the iteration. -1 for every other action. A receive counts from
/// the action that waits for it: an activation's at its microbatch's next
/// forward, a gradient's at its microbatch's next backward. Proven arrival
/// needs a peer stage of the same data-parallel degree; a peer with more TP
/// ranks than this one's, a forward (computeCollectives: a TP all-reduce)
/// from the action that takes the message to the later send, or not every
/// rank a send reaches is known to have it.
std::vector<std::vector<int64_t>>
sendReleases(const PipelineGraph &graph, const std::vector<Program> &programs);
/// The releases of programs[index] by proven arrival alone (the first
/// rule); -1 where it proves nothing.
std::vector<int64_t> provenSendReleases(const PipelineGraph &graph,
                                        const std::vector<Program> &programs,
                                        size_t index);
/// sendReleases(graph, programs)[index].
std::vector<int64_t> sendReleases(const PipelineGraph &graph,
                                  const std::vector<Program> &programs,
                                  size_t index);

/// The releases of one program's sends on one link (to stage `peer`,
/// gradients or activations), by message.
struct LinkSendReleases {
  int peer = 0;
  bool grad = false;
  /// release[k]: sendReleases' entry for the link's k-th send.
  std::vector<int64_t> release;
};
/// sendReleases by link: for each program, its links that carry sends, by
/// peer, activations first. Without an entry per action it is the smaller
/// form for a schedule of millions of actions (the simulator's).
std::vector<std::vector<LinkSendReleases>>
sendReleasesByLink(const PipelineGraph &graph,
                   const std::vector<Program> &programs);

/// Whether every program runs to its end when a receive's message must have
/// been sent before the action that waits for it, and a send released at
/// an action (`release`, as sendReleases gives it) must have been posted as
/// a receive before the program goes past that action.
bool runsToCompletion(const std::vector<Program> &programs,
                      const std::vector<std::vector<int64_t>> &release);

} // namespace mllm::sched

#endif // MLLM_RUNTIME_SENDRELEASE_H
