//===- MessageArena.h - a rank's message buffers in one arena ---*- C++ -*-===//
//
// Every buffer a rank sends from or receives into during an iteration lives
// in one allocation, at the offset the static memory plan gives it
// (MemoryPlan.h: the same lifetimes, the same packing), so the rank
// allocates nothing for its messages while it runs. The sizes are the
// runtime's (fp32 on the CPU, a receive from several ranks holds one copy
// per source), known once the iteration's data is: plan() lays the arena
// out at the start of every iteration.
//
// The arena checks the runtime against the plan as it goes: a buffer is
// taken and freed inside its planned lifetime, and never overlaps a buffer
// still in use. The layers' own tensors (weights, saved activations) are
// not in it: the CPU layers keep them in their own caches.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_EXEC_MESSAGEARENA_H
#define MLLM_RUNTIME_EXEC_MESSAGEARENA_H

#include "mllm/runtime/MemoryPlan.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

namespace mllm::runtime::exec {

class MessageArena {
public:
  /// Lays out the message buffers of one iteration of `program`: action i
  /// sends or receives `floats[i]` floats (0: none), sends are freed where
  /// `releases` says (sendReleases(); the end of the iteration where it is
  /// -1). Grows the allocation when it is too small. No buffer may be in use.
  llvm::Error plan(const sched::Program &program,
                   llvm::ArrayRef<int64_t> releases,
                   llvm::ArrayRef<int64_t> floats);

  /// The buffer of message action `action`, in use from action `at` on
  /// for `floats` floats. An error (an internal one: the plan and the
  /// runtime disagree) when it has no planned buffer that large, `at` is
  /// outside its lifetime, or it overlaps a buffer in use.
  llvm::Expected<float *> take(int64_t action, int64_t at, int64_t floats);
  /// Ends the use of `action`'s buffer at the end of action `at`.
  llvm::Error release(int64_t action, int64_t at);

  /// The planned layout of the last plan(): offsets, sizes in bytes, the
  /// planned lifetimes.
  const sched::MemoryPlan &layout() const { return planned; }
  /// The highest byte of the arena in use at any time since plan(), plus
  /// one: the measured peak, which equals layout().arenaBytes once every
  /// buffer was taken.
  int64_t measuredBytes() const { return highWater; }
  /// Per message action taken since plan(): where its use ended (-1 while
  /// in use).
  const std::map<int64_t, int64_t> &freedAt() const { return freed; }

private:
  sched::MemoryPlan planned;
  /// Message action -> index into planned.buffers.
  std::map<int64_t, size_t> bufferOf;
  /// In use: offset -> end.
  std::map<int64_t, int64_t> live;
  std::map<int64_t, int64_t> freed;
  int64_t highWater = 0;
  std::unique_ptr<float[]> storage;
  int64_t capacity = 0;
};

} // namespace mllm::runtime::exec

#endif // MLLM_RUNTIME_EXEC_MESSAGEARENA_H
