//===- SendRelease.cpp - when a posted send's buffer is free --------------===//
#include "mllm/runtime/SendRelease.h"

#include "llvm/ADT/STLExtras.h"

#include <algorithm>
#include <map>

using namespace mllm;
using namespace mllm::sched;

namespace {

/// The compute action that waits for receive `k` of `p`: its microbatch's
/// next forward (activations) or next backward (gradients); -1: none.
int64_t waitPoint(const Program &p, size_t k) {
  const Action &r = p.actions[k];
  for (size_t i = k + 1; i < p.actions.size(); ++i) {
    const Action &a = p.actions[i];
    if (a.microbatch != r.microbatch)
      continue;
    if (r.kind == ActionKind::RecvActivation ? a.kind == ActionKind::Forward
                                             : isBackward(a.kind))
      return static_cast<int64_t>(i);
  }
  return -1;
}

/// Indices of `p`'s actions of kind send (`send`) or receive with peer
/// `peer`, carrying gradients or not, in program order: the k-th send of a
/// link matches its k-th receive (the schedule verifier checks it).
std::vector<size_t> linkActions(const Program &p, int peer, bool send,
                                bool grad) {
  std::vector<size_t> out;
  for (size_t i = 0; i < p.actions.size(); ++i) {
    const Action &a = p.actions[i];
    if (a.peer == peer && (send ? isSend(a.kind) : isRecv(a.kind)) &&
        isGradMessage(a.kind) == grad)
      out.push_back(i);
  }
  return out;
}

} // namespace

std::vector<int64_t> sched::sendReleases(const PipelineGraph &graph,
                                         const std::vector<Program> &programs,
                                         size_t index) {
  const Program &mine = programs[index];
  std::vector<int64_t> release(mine.actions.size(), -1);
  std::map<int, size_t> programOf;
  for (size_t i = 0; i < programs.size(); ++i)
    programOf[programs[i].stage] = i;
  auto validStage = [&](int s) {
    return s >= 0 && static_cast<size_t>(s) < graph.stages.size();
  };
  if (!validStage(mine.stage))
    return release;
  const StageInfo &self = graph.stages[mine.stage];
  std::map<int, bool> peers;
  for (const Action &a : mine.actions)
    if (isComm(a.kind) && a.peer >= 0)
      peers[a.peer] = true;
  for (auto [peer, unused] : peers) {
    (void)unused;
    auto q = programOf.find(peer);
    if (q == programOf.end() || !validStage(peer))
      continue;
    const StageInfo &other = graph.stages[peer];
    // Every rank a send of this stage reaches sends back to it only when
    // the peer has no more TP ranks and the same replicas.
    if (other.tp > self.tp || other.dp != self.dp)
      continue;
    const Program &theirs = programs[q->second];
    // This program's receives from the peer: (wait point, the peer's index
    // of the matching send), by wait point.
    std::vector<std::pair<int64_t, size_t>> receives;
    for (bool grad : {false, true}) {
      std::vector<size_t> ours = linkActions(mine, peer, false, grad);
      std::vector<size_t> sent = linkActions(theirs, mine.stage, true, grad);
      for (size_t k = 0; k < ours.size() && k < sent.size(); ++k) {
        int64_t w = waitPoint(mine, ours[k]);
        if (w >= 0)
          receives.emplace_back(w, sent[k]);
      }
    }
    llvm::sort(receives);
    for (bool grad : {false, true}) {
      std::vector<size_t> ours = linkActions(mine, peer, true, grad);
      std::vector<size_t> got = linkActions(theirs, mine.stage, false, grad);
      for (size_t k = 0; k < ours.size() && k < got.size(); ++k) {
        auto i = static_cast<int64_t>(ours[k]);
        // The peer has this message once its compute action that waits for
        // the receive has run.
        int64_t taken = waitPoint(theirs, got[k]);
        if (taken < 0)
          continue;
        // The first receive waited for after the send was posted whose
        // message the peer sent after taking this one.
        auto it = std::upper_bound(
            receives.begin(), receives.end(), i,
            [](int64_t v, const std::pair<int64_t, size_t> &r) {
              return v < r.first;
            });
        for (; it != receives.end(); ++it)
          if (static_cast<int64_t>(it->second) > taken) {
            release[ours[k]] = it->first;
            break;
          }
      }
    }
  }
  return release;
}
