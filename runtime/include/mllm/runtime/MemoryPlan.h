//===- MemoryPlan.h - static memory plan of one stage's program -*- C++ -*-===//
//
// Every buffer one GPU of a stage needs during an iteration, with its size,
// its lifetime in the program's action indices and its offset in one arena,
// decided before anything runs. The compiler computes it (the
// sched-memory-plan pass records it on each sched.program), verifies it
// (sched-verify-memory) and lowers the programs with the offsets as
// constants; the runtime reads the same model. Plain C++, free of MLIR.
//
// Lifetimes follow what the runtime does (docs/runtime.md, "Static memory
// plan"): a received tensor lives from its receive to its last use, a
// microbatch's saved activations from its forward to its last backward, a
// sent tensor from the action that computes it to the action at whose end
// the runtime waits for the send (SendRelease.h; the end of the iteration
// where the schedule proves no earlier point), gradients and optimizer
// state for the whole iteration.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_MEMORYPLAN_H
#define MLLM_RUNTIME_MEMORYPLAN_H

#include "mllm/runtime/Schedule.h"

#include "llvm/ADT/ArrayRef.h"

#include <cstdint>
#include <optional>
#include <vector>

namespace mllm::sched {

enum class BufferKind {
  Weights,        ///< The stage's parameters.
  Grads,          ///< Weight gradients, accumulated over the microbatches.
  OptimizerState, ///< The optimizer's moments.
  RecvAct,        ///< Activations received by one receive action.
  RecvGrad,       ///< Output gradients received by one receive action.
  Saved,          ///< A microbatch's activations kept for its backward.
  SendAct,        ///< Activations sent by one send action.
  SendGrad,       ///< Input gradients sent by one send action.
  Workspace,      ///< Temporaries of one compute action.
};

/// "weights", "grads", "optimizer", "recv_act", "recv_grad", "saved",
/// "send_act", "send_grad", "workspace": the IR's and the plan's spelling.
const char *bufferKindName(BufferKind kind);
std::optional<BufferKind> parseBufferKind(llvm::StringRef name);

struct Buffer {
  BufferKind kind = BufferKind::Workspace;
  /// The microbatch of a per-microbatch buffer, else -1.
  int32_t microbatch = -1;
  /// The action that owns a receive, send or workspace buffer, else -1.
  int64_t action = -1;
  int64_t bytes = 0;
  /// Live from action `first` to action `last`, both included.
  int64_t first = 0, last = 0;
  int64_t offset = 0;
  bool operator==(const Buffer &o) const {
    return kind == o.kind && microbatch == o.microbatch && action == o.action &&
           bytes == o.bytes && first == o.first && last == o.last &&
           offset == o.offset;
  }
};

/// The sizes the schedule does not record: from the cost model (the stage's
/// memory estimate), per GPU. Zero-sized buffers are left out.
struct StageSizes {
  int64_t weights = 0, grads = 0, optimizer = 0;
  /// Activations one microbatch keeps for its backward.
  int64_t savedPerMicrobatch = 0;
  /// Temporaries of one compute action.
  int64_t workspace = 0;
};

/// Offsets are multiples of this.
constexpr int64_t kArenaAlignment = 64;

struct MemoryPlan {
  int64_t arenaBytes = 0;
  std::vector<Buffer> buffers;
  /// The sum of all buffers' bytes: what allocating each one separately
  /// for the whole iteration would take.
  int64_t unsharedBytes() const;
  /// The most bytes live at once (a lower bound on any packing's arena).
  int64_t peakLiveBytes() const;
};

/// The buffers of `program` with their lifetimes (offsets 0), in action
/// order (persistent buffers first). Message buffers take the actions'
/// bytes; the others `sizes`. A send's buffer lives to `releases[send]`
/// (sendReleases()) where that is set, else to the end of the iteration.
std::vector<Buffer> programBuffers(const Program &program,
                                   const StageSizes &sizes,
                                   llvm::ArrayRef<int64_t> releases = {});

/// Packs `buffers` into one arena: greedy by size (largest first; ties by
/// first use), each at the lowest aligned offset where it overlaps no
/// buffer already placed whose lifetime overlaps its own (first fit). Sets
/// the offsets; returns the arena size.
int64_t packBuffers(std::vector<Buffer> &buffers,
                    int64_t alignment = kArenaAlignment);

/// programBuffers + packBuffers, for a program on its own: its sends are
/// held to the end of the iteration.
MemoryPlan planMemory(const Program &program, const StageSizes &sizes);
/// With the sends released where `releases` says (sendReleases()).
MemoryPlan planMemory(const Program &program, const StageSizes &sizes,
                      llvm::ArrayRef<int64_t> releases);
/// The memory plan of programs[index] in its schedule, what the compiler
/// records and the runtime keeps: sends freed where sendReleases() says
/// (which looks at every program: callers planning every program compute
/// the releases once and use the overload above).
MemoryPlan planMemory(const PipelineGraph &graph,
                      const std::vector<Program> &programs, size_t index,
                      const StageSizes &sizes);

/// The buffers action `index` of `program` reads or writes (indices into
/// plan.buffers): a forward its microbatch's received activations, saved
/// activations, sent activations and workspace; a backward the saved
/// activations, received gradients, sent gradients (backward_input) and
/// workspace; a send or receive its message; the all-reduce the gradients;
/// the optimizer step weights, gradients and state.
std::vector<size_t> actionOperands(const Program &program,
                                   const MemoryPlan &plan, size_t index);

/// Checks `plan` against `program`: every buffer inside the arena, aligned,
/// with a lifetime inside the program; no two buffers whose lifetimes
/// overlap share a byte; every operand of every action (actionOperands)
/// live at that action, and each message buffer as large as its message.
/// A ScheduleError names the action (or -1) on failure; `stage` is copied
/// into it.
llvm::Error verifyMemoryPlan(const Program &program, const MemoryPlan &plan);

} // namespace mllm::sched

#endif // MLLM_RUNTIME_MEMORYPLAN_H
