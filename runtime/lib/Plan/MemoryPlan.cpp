//===- MemoryPlan.cpp - static memory plan of one stage's program ---------===//
#include "mllm/runtime/MemoryPlan.h"
#include "mllm/runtime/SendRelease.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <limits>
#include <map>

using namespace mllm;
using namespace mllm::sched;

const char *sched::bufferKindName(BufferKind kind) {
  switch (kind) {
  case BufferKind::Weights:
    return "weights";
  case BufferKind::Grads:
    return "grads";
  case BufferKind::OptimizerState:
    return "optimizer";
  case BufferKind::RecvAct:
    return "recv_act";
  case BufferKind::RecvGrad:
    return "recv_grad";
  case BufferKind::Saved:
    return "saved";
  case BufferKind::SendAct:
    return "send_act";
  case BufferKind::SendGrad:
    return "send_grad";
  case BufferKind::Workspace:
    return "workspace";
  }
  return "?";
}

std::optional<BufferKind> sched::parseBufferKind(llvm::StringRef name) {
  return llvm::StringSwitch<std::optional<BufferKind>>(name)
      .Case("weights", BufferKind::Weights)
      .Case("grads", BufferKind::Grads)
      .Case("optimizer", BufferKind::OptimizerState)
      .Case("recv_act", BufferKind::RecvAct)
      .Case("recv_grad", BufferKind::RecvGrad)
      .Case("saved", BufferKind::Saved)
      .Case("send_act", BufferKind::SendAct)
      .Case("send_grad", BufferKind::SendGrad)
      .Case("workspace", BufferKind::Workspace)
      .Default(std::nullopt);
}

int64_t MemoryPlan::unsharedBytes() const {
  int64_t sum = 0;
  for (const Buffer &b : buffers)
    sum += b.bytes;
  return sum;
}

int64_t MemoryPlan::peakLiveBytes() const {
  // +bytes at first, -bytes after last, swept in action order.
  std::map<int64_t, int64_t> delta;
  for (const Buffer &b : buffers) {
    delta[b.first] += b.bytes;
    delta[b.last + 1] -= b.bytes;
  }
  int64_t live = 0, peak = 0;
  for (auto [at, d] : delta) {
    live += d;
    peak = std::max(peak, live);
  }
  return peak;
}

namespace {

/// Per microbatch: its forward, and its first and last backward.
struct MicrobatchActions {
  int64_t forward = -1, lastBackward = -1, backwardInput = -1;
};

std::map<int32_t, MicrobatchActions> microbatchActions(const Program &p) {
  std::map<int32_t, MicrobatchActions> result;
  for (size_t i = 0; i < p.actions.size(); ++i) {
    const Action &a = p.actions[i];
    MicrobatchActions &m = result[a.microbatch];
    auto at = static_cast<int64_t>(i);
    if (a.kind == ActionKind::Forward && m.forward < 0)
      m.forward = at;
    if (isBackward(a.kind))
      m.lastBackward = at;
    if (a.kind == ActionKind::BackwardInput && m.backwardInput < 0)
      m.backwardInput = at;
  }
  return result;
}

/// The compute action that produces the tensor send `index` posts: the
/// microbatch's forward (activations) or backward_input (gradients) when it
/// runs before the send, else the send itself (a gradient of zeros).
int64_t producerOf(const Program &p,
                   const std::map<int32_t, MicrobatchActions> &mbs,
                   size_t index) {
  const Action &a = p.actions[index];
  auto it = mbs.find(a.microbatch);
  int64_t at = -1;
  if (it != mbs.end())
    at = a.kind == ActionKind::SendActivation ? it->second.forward
                                              : it->second.backwardInput;
  return at >= 0 && at < static_cast<int64_t>(index)
             ? at
             : static_cast<int64_t>(index);
}

bool overlapInTime(const Buffer &a, const Buffer &b) {
  return a.first <= b.last && b.first <= a.last;
}

bool overlapInSpace(const Buffer &a, const Buffer &b) {
  return a.offset < b.offset + b.bytes && b.offset < a.offset + a.bytes;
}

int64_t alignUp(int64_t v, int64_t alignment) {
  return (v + alignment - 1) / alignment * alignment;
}

/// Buffers by what owns them, for actionOperands.
struct BufferIndex {
  std::map<BufferKind, size_t> persistent;
  std::map<int64_t, size_t> byAction; ///< Messages (workspaces separately).
  std::map<int64_t, size_t> workspace;
  std::map<int32_t, size_t> saved;
  std::map<int32_t, std::vector<size_t>> recvAct, recvGrad, sendAct, sendGrad;

  explicit BufferIndex(const MemoryPlan &plan) {
    for (size_t i = 0; i < plan.buffers.size(); ++i) {
      const Buffer &b = plan.buffers[i];
      switch (b.kind) {
      case BufferKind::Weights:
      case BufferKind::Grads:
      case BufferKind::OptimizerState:
        persistent[b.kind] = i;
        break;
      case BufferKind::Saved:
        saved[b.microbatch] = i;
        break;
      case BufferKind::Workspace:
        workspace[b.action] = i;
        break;
      case BufferKind::RecvAct:
        recvAct[b.microbatch].push_back(i);
        byAction[b.action] = i;
        break;
      case BufferKind::RecvGrad:
        recvGrad[b.microbatch].push_back(i);
        byAction[b.action] = i;
        break;
      case BufferKind::SendAct:
        sendAct[b.microbatch].push_back(i);
        byAction[b.action] = i;
        break;
      case BufferKind::SendGrad:
        sendGrad[b.microbatch].push_back(i);
        byAction[b.action] = i;
        break;
      }
    }
  }
};

std::vector<size_t> operandsOf(const Program &program,
                               const std::map<int32_t, MicrobatchActions> &mbs,
                               const MemoryPlan &plan, const BufferIndex &index,
                               size_t at) {
  const Action &a = program.actions[at];
  std::vector<size_t> result;
  auto add = [&](std::optional<size_t> i) {
    if (i)
      result.push_back(*i);
  };
  auto find = [](const auto &map, auto key) -> std::optional<size_t> {
    auto it = map.find(key);
    if (it == map.end())
      return std::nullopt;
    return it->second;
  };
  auto all = [&](const std::map<int32_t, std::vector<size_t>> &bufs) {
    auto it = bufs.find(a.microbatch);
    if (it != bufs.end())
      result.insert(result.end(), it->second.begin(), it->second.end());
  };
  // The microbatch's sends whose tensor this action computes.
  auto produced = [&](const std::map<int32_t, std::vector<size_t>> &sends) {
    auto it = sends.find(a.microbatch);
    if (it == sends.end())
      return;
    for (size_t b : it->second) {
      int64_t send = plan.buffers[b].action;
      if (send >= 0 && send < static_cast<int64_t>(program.actions.size()) &&
          producerOf(program, mbs, static_cast<size_t>(send)) ==
              static_cast<int64_t>(at))
        result.push_back(b);
    }
  };
  auto self = static_cast<int64_t>(at);
  switch (a.kind) {
  case ActionKind::Forward:
    add(find(index.persistent, BufferKind::Weights));
    all(index.recvAct);
    add(find(index.saved, a.microbatch));
    produced(index.sendAct);
    add(find(index.workspace, self));
    break;
  case ActionKind::BackwardInput:
  case ActionKind::BackwardWeight:
    add(find(index.persistent, BufferKind::Weights));
    if (a.kind == ActionKind::BackwardWeight)
      add(find(index.persistent, BufferKind::Grads));
    add(find(index.saved, a.microbatch));
    all(index.recvGrad);
    produced(index.sendGrad);
    add(find(index.workspace, self));
    break;
  case ActionKind::SendActivation:
  case ActionKind::RecvActivation:
  case ActionKind::SendGrad:
  case ActionKind::RecvGrad:
    add(find(index.byAction, self));
    break;
  case ActionKind::AllReduceGrads:
    add(find(index.persistent, BufferKind::Grads));
    break;
  case ActionKind::OptimizerStep:
    add(find(index.persistent, BufferKind::Weights));
    add(find(index.persistent, BufferKind::Grads));
    add(find(index.persistent, BufferKind::OptimizerState));
    break;
  }
  return result;
}

} // namespace

std::vector<Buffer> sched::programBuffers(const Program &program,
                                          const StageSizes &sizes,
                                          llvm::ArrayRef<int64_t> releases) {
  std::vector<Buffer> buffers;
  auto n = static_cast<int64_t>(program.actions.size());
  if (n == 0)
    return buffers;
  auto persistent = [&](BufferKind kind, int64_t bytes) {
    if (bytes <= 0)
      return;
    Buffer b;
    b.kind = kind;
    b.bytes = bytes;
    b.first = 0;
    b.last = n - 1;
    buffers.push_back(b);
  };
  bool weightGrads = false, optimizer = false;
  int64_t allReduce = 0;
  for (const Action &a : program.actions) {
    weightGrads |= a.kind == ActionKind::BackwardWeight ||
                   a.kind == ActionKind::AllReduceGrads;
    optimizer |= a.kind == ActionKind::OptimizerStep;
    if (a.kind == ActionKind::AllReduceGrads)
      allReduce = std::max(allReduce, a.bytes);
  }
  persistent(BufferKind::Weights, sizes.weights);
  if (weightGrads)
    persistent(BufferKind::Grads, std::max(sizes.grads, allReduce));
  if (optimizer)
    persistent(BufferKind::OptimizerState, sizes.optimizer);

  std::map<int32_t, MicrobatchActions> mbs = microbatchActions(program);
  for (int64_t i = 0; i < n; ++i) {
    const Action &a = program.actions[i];
    auto it = mbs.find(a.microbatch);
    const MicrobatchActions m =
        it == mbs.end() ? MicrobatchActions() : it->second;
    Buffer b;
    b.microbatch = a.microbatch;
    b.first = i;
    switch (a.kind) {
    case ActionKind::RecvActivation:
      b.kind = BufferKind::RecvAct;
      b.action = i;
      b.bytes = a.bytes;
      b.last = std::max(i, m.forward);
      break;
    case ActionKind::RecvGrad:
      b.kind = BufferKind::RecvGrad;
      b.action = i;
      b.bytes = a.bytes;
      b.last = std::max(i, m.lastBackward);
      break;
    case ActionKind::SendActivation:
    case ActionKind::SendGrad:
      b.kind = a.kind == ActionKind::SendActivation ? BufferKind::SendAct
                                                    : BufferKind::SendGrad;
      b.action = i;
      b.bytes = a.bytes;
      b.first = producerOf(program, mbs, static_cast<size_t>(i));
      // Waited for where the schedule proves it was received, else at the
      // end of the iteration.
      b.last = static_cast<size_t>(i) < releases.size() && releases[i] > i
                   ? releases[i]
                   : n - 1;
      break;
    case ActionKind::Forward:
      if (sizes.savedPerMicrobatch > 0 && m.lastBackward > i) {
        Buffer saved;
        saved.kind = BufferKind::Saved;
        saved.microbatch = a.microbatch;
        saved.bytes = sizes.savedPerMicrobatch;
        saved.first = i;
        saved.last = m.lastBackward;
        buffers.push_back(saved);
      }
      [[fallthrough]];
    case ActionKind::BackwardInput:
    case ActionKind::BackwardWeight:
      b.kind = BufferKind::Workspace;
      b.action = i;
      b.bytes = sizes.workspace;
      b.last = i;
      break;
    case ActionKind::AllReduceGrads:
    case ActionKind::OptimizerStep:
      continue;
    }
    if (b.bytes > 0)
      buffers.push_back(b);
  }
  return buffers;
}

namespace {

/// The buffers whose lifetimes overlap a given one, found without walking
/// all of them: the buffers sorted by first action, over which a segment
/// tree keeps the latest last action of each range.
class LifetimeIndex {
public:
  explicit LifetimeIndex(const std::vector<Buffer> &buffers)
      : buffers(buffers) {
    byFirst.resize(buffers.size());
    for (size_t i = 0; i < byFirst.size(); ++i)
      byFirst[i] = i;
    llvm::sort(byFirst, [&](size_t a, size_t b) {
      if (buffers[a].first != buffers[b].first)
        return buffers[a].first < buffers[b].first;
      return a < b;
    });
    while (leaves < byFirst.size())
      leaves *= 2;
    maxLast.assign(2 * leaves, std::numeric_limits<int64_t>::min());
    for (size_t i = 0; i < byFirst.size(); ++i)
      maxLast[leaves + i] = buffers[byFirst[i]].last;
    for (size_t i = leaves; i-- > 1;)
      maxLast[i] = std::max(maxLast[2 * i], maxLast[2 * i + 1]);
  }

  /// Calls `f(j)` for every buffer j whose lifetime overlaps b's.
  template <typename F>
  void overlapping(const Buffer &b, F f) const {
    // Buffers that start no later than b ends...
    size_t limit = static_cast<size_t>(
        std::upper_bound(
            byFirst.begin(), byFirst.end(), b.last,
            [&](int64_t v, size_t j) { return v < buffers[j].first; }) -
        byFirst.begin());
    // ...and end no earlier than b starts.
    visit(1, 0, leaves, limit, b.first, f);
  }

private:
  template <typename F>
  void visit(size_t node, size_t lo, size_t hi, size_t limit, int64_t from,
             F &f) const {
    if (lo >= limit || maxLast[node] < from)
      return;
    if (hi - lo == 1) {
      f(byFirst[lo]);
      return;
    }
    size_t mid = (lo + hi) / 2;
    visit(2 * node, lo, mid, limit, from, f);
    visit(2 * node + 1, mid, hi, limit, from, f);
  }

  const std::vector<Buffer> &buffers;
  std::vector<size_t> byFirst;
  size_t leaves = 1;
  std::vector<int64_t> maxLast;
};

} // namespace

int64_t sched::packBuffers(std::vector<Buffer> &buffers, int64_t alignment) {
  std::vector<size_t> order(buffers.size());
  for (size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  llvm::sort(order, [&](size_t a, size_t b) {
    if (buffers[a].bytes != buffers[b].bytes)
      return buffers[a].bytes > buffers[b].bytes;
    if (buffers[a].first != buffers[b].first)
      return buffers[a].first < buffers[b].first;
    return a < b;
  });
  // Each new buffer looks only at the placed buffers whose lifetimes
  // overlap its own (a packing of thousands of buffers walked them all),
  // in offset order (then placement order), and takes the first gap.
  LifetimeIndex index(buffers);
  constexpr int64_t kUnplaced = -1;
  std::vector<int64_t> placedAs(buffers.size(), kUnplaced);
  std::vector<size_t> live;
  int64_t arena = 0, placedCount = 0;
  for (size_t i : order) {
    Buffer &b = buffers[i];
    live.clear();
    index.overlapping(b, [&](size_t j) {
      if (placedAs[j] != kUnplaced)
        live.push_back(j);
    });
    llvm::sort(live, [&](size_t x, size_t y) {
      if (buffers[x].offset != buffers[y].offset)
        return buffers[x].offset < buffers[y].offset;
      return placedAs[x] < placedAs[y];
    });
    int64_t at = 0;
    for (size_t j : live) {
      const Buffer &p = buffers[j];
      if (p.offset >= at + b.bytes)
        break;
      at = std::max(at, alignUp(p.offset + p.bytes, alignment));
    }
    b.offset = at;
    arena = std::max(arena, at + b.bytes);
    placedAs[i] = placedCount++;
  }
  return alignUp(arena, alignment);
}

MemoryPlan sched::planMemory(const Program &program, const StageSizes &sizes) {
  MemoryPlan plan;
  plan.buffers = programBuffers(program, sizes);
  plan.arenaBytes = packBuffers(plan.buffers);
  return plan;
}

MemoryPlan sched::planMemory(const Program &program, const StageSizes &sizes,
                             llvm::ArrayRef<int64_t> releases) {
  MemoryPlan plan;
  plan.buffers = programBuffers(program, sizes, releases);
  plan.arenaBytes = packBuffers(plan.buffers);
  return plan;
}

MemoryPlan sched::planMemory(const PipelineGraph &graph,
                             const std::vector<Program> &programs, size_t index,
                             const StageSizes &sizes) {
  MemoryPlan plan;
  plan.buffers = programBuffers(programs[index], sizes,
                                sendReleases(graph, programs, index));
  plan.arenaBytes = packBuffers(plan.buffers);
  return plan;
}

std::vector<size_t> sched::actionOperands(const Program &program,
                                          const MemoryPlan &plan,
                                          size_t index) {
  return operandsOf(program, microbatchActions(program), plan,
                    BufferIndex(plan), index);
}

llvm::Error sched::verifyMemoryPlan(const Program &program,
                                    const MemoryPlan &plan) {
  auto fail = [&](const llvm::Twine &message, int64_t action = -1) {
    return llvm::make_error<ScheduleError>(message.str(), program.stage,
                                           action);
  };
  auto describe = [](const Buffer &b) {
    std::string s = bufferKindName(b.kind);
    if (b.microbatch >= 0)
      s += " of microbatch " + std::to_string(b.microbatch);
    if (b.action >= 0)
      s += " (action " + std::to_string(b.action) + ")";
    return s;
  };
  auto n = static_cast<int64_t>(program.actions.size());
  for (const Buffer &b : plan.buffers) {
    if (b.bytes < 0 || b.offset < 0 || b.offset + b.bytes > plan.arenaBytes)
      return fail(llvm::formatv("buffer {0} at [{1}, {2}) lies outside the "
                                "arena of {3} bytes",
                                describe(b), b.offset, b.offset + b.bytes,
                                plan.arenaBytes));
    if (b.offset % kArenaAlignment != 0)
      return fail(llvm::formatv("buffer {0} at offset {1} is not aligned to "
                                "{2} bytes",
                                describe(b), b.offset, kArenaAlignment));
    if (b.first < 0 || b.first > b.last || b.last >= n)
      return fail(llvm::formatv("buffer {0} lives from action {1} to {2}, "
                                "outside the program's {3} actions",
                                describe(b), b.first, b.last, n));
    if (b.action >= n)
      return fail(llvm::formatv("buffer {0} names no action of the program",
                                describe(b)));
  }
  // Overlaps: sorted by offset, each buffer against the ones that start
  // inside it.
  std::vector<size_t> byOffset(plan.buffers.size());
  for (size_t i = 0; i < byOffset.size(); ++i)
    byOffset[i] = i;
  llvm::sort(byOffset, [&](size_t a, size_t b) {
    return plan.buffers[a].offset < plan.buffers[b].offset;
  });
  for (size_t i = 0; i < byOffset.size(); ++i) {
    const Buffer &a = plan.buffers[byOffset[i]];
    for (size_t j = i + 1; j < byOffset.size(); ++j) {
      const Buffer &b = plan.buffers[byOffset[j]];
      if (b.offset >= a.offset + a.bytes)
        break;
      if (overlapInSpace(a, b) && overlapInTime(a, b) && a.bytes > 0 &&
          b.bytes > 0)
        return fail(llvm::formatv("buffers {0} and {1} share bytes of the "
                                  "arena while both are live (actions {2} to "
                                  "{3})",
                                  describe(a), describe(b),
                                  std::max(a.first, b.first),
                                  std::min(a.last, b.last)),
                    std::max(a.first, b.first));
    }
  }
  // Operands live where they are used; messages fit their buffers.
  std::map<int32_t, MicrobatchActions> mbs = microbatchActions(program);
  BufferIndex index(plan);
  for (int64_t i = 0; i < n; ++i) {
    const Action &a = program.actions[i];
    if (isComm(a.kind)) {
      auto it = index.byAction.find(i);
      if (a.bytes > 0 && it == index.byAction.end())
        return fail(llvm::formatv("action {0} has no buffer for its message",
                                  actionMnemonic(a.kind)),
                    i);
      if (it != index.byAction.end() &&
          plan.buffers[it->second].bytes < a.bytes)
        return fail(llvm::formatv("the buffer of action {0} holds {1} bytes "
                                  "but its message has {2}",
                                  actionMnemonic(a.kind),
                                  plan.buffers[it->second].bytes, a.bytes),
                    i);
    }
    for (size_t o :
         operandsOf(program, mbs, plan, index, static_cast<size_t>(i))) {
      const Buffer &b = plan.buffers[o];
      if (b.first > i || b.last < i)
        return fail(llvm::formatv("action {0} uses buffer {1}, which lives "
                                  "only from action {2} to {3}",
                                  actionMnemonic(a.kind), describe(b), b.first,
                                  b.last),
                    i);
    }
  }
  return llvm::Error::success();
}
